"""encode stage: encoders by name, loaded from spec strings."""

from .base import Encoder, Modality, Role, encoders, format_spec, parse_spec
from .clip import ClipEncoder
from .loader import clear_encoder_cache, describe, load_encoder
from .onnx import OnnxTextEncoder
from .text import MiniLMEncoder, SentenceTransformerEncoder

__all__ = [
    "ClipEncoder",
    "Encoder",
    "MiniLMEncoder",
    "OnnxTextEncoder",
    "Modality",
    "Role",
    "SentenceTransformerEncoder",
    "clear_encoder_cache",
    "describe",
    "encoders",
    "format_spec",
    "load_encoder",
    "parse_spec",
]
