"""Where models come from: a local folder (never touches the network) or a Hugging Face id (cache first)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, TypeVar

from ..errors import ConfigError
from .base import looks_like_path

T = TypeVar("T")

_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in _OFFLINE_VARS)


def canonical_model(model: str) -> str:
    """An absolute folder for local models (so the spec is valid from any working directory), else the Hub id."""
    if looks_like_path(model):
        return str(Path(model).expanduser().resolve())
    return model


def load_pretrained(loader: Callable[..., T], model: str, *, encoder: str, **kwargs) -> T:
    """Call `loader(model, ..., **kwargs)` the offline-safe way; failures become a ConfigError saying what to do.

    A folder loads with `local_files_only=True`. A Hub id is tried in the local cache first and only then online
    (unless HF_HUB_OFFLINE is set), so a cached model never waits on the network.
    """
    howto = (
        f"download it where there is network (`huggingface-cli download {model} --local-dir DIR`, "
        f"or `save_pretrained(DIR)`), then use '{encoder}:DIR'"
    )
    if looks_like_path(model):
        if not Path(model).expanduser().is_dir():
            raise ConfigError(f"model folder {model!r} does not exist; give '{encoder}:' a folder that holds a saved model")
        try:
            return loader(model, local_files_only=True, **kwargs)
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot load the model in folder {model!r} for encoder {encoder!r}: {e}") from e
    try:
        return loader(model, local_files_only=True, **kwargs)
    except (OSError, ValueError) as cached_error:
        if offline():
            raise ConfigError(
                f"model {model!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; {howto}"
            ) from cached_error
    try:
        return loader(model, **kwargs)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot load model {model!r} for encoder {encoder!r} ({e.__class__.__name__}); {howto}") from e
