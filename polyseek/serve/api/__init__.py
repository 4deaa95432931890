"""The HTTP API: `create_app(ServeConfig(...))` builds a FastAPI app over one index."""

from .app import create_app
from .config import ServeConfig

__all__ = ["create_app", "ServeConfig"]
