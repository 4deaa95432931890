"""Build encoders from spec strings ("minilm", "clip:/path", "sentence-transformers:id?query_prompt=..."), cached."""

from __future__ import annotations

import threading
from typing import Any

from ..errors import ConfigError
from .base import Encoder, encoders, format_spec, parse_spec, pick_device
from .hub import canonical_model

_cache: dict[tuple[str, str | None], Encoder] = {}
_lock = threading.Lock()


def load_encoder(spec: str, device: str | None = None) -> Encoder:
    """The encoder a spec names, loaded once per (spec, device) in this process.

    `spec` is "name", "name:model" (a Hub id or a local folder) or "name:model?option=value&...";
    the returned encoder's `.spec` is the canonical form to store in an index and compare later.
    """
    device = pick_device(device)  # None and "cpu" on a CPU machine are one encoder
    key = (spec, device)
    with _lock:  # one load at a time: loading twice in parallel would double the memory for nothing
        if key in _cache:
            return _cache[key]
        name, model, options = parse_spec(spec)
        cls = encoders.get(name)
        from .onnx import OnnxTextEncoder, serves

        if serves(name, options, device):
            cls = OnnxTextEncoder  # same model, same vectors, same spec: "minilm" through ONNX Runtime
        # Different spellings of one folder ("clip:./m", "clip:/abs/m") share one loaded model.
        canonical = (format_spec(name, canonical_model(model) if model else None, options), device)
        if canonical in _cache:
            _cache[key] = _cache[canonical]
            return _cache[key]
        unknown = sorted(set(options) - set(cls.spec_options))
        if unknown:
            raise ConfigError(
                f"unknown option {', '.join(map(repr, unknown))} for encoder {name!r}; "
                f"choose from: {', '.join(cls.spec_options) or '(none)'}"
            )
        encoder = cls(model, device=device, **options) if model else cls(device=device, **options)
        for k in {key, canonical, (encoder.spec, device)}:
            _cache[k] = encoder
        return encoder


def clear_encoder_cache() -> None:
    """Forget loaded encoders (frees their memory once no one else holds them)."""
    with _lock:
        _cache.clear()


def describe(encoder: Encoder) -> dict[str, Any]:
    """What an index manifest stores about an encoder: {spec, name, dim, modalities, model}."""
    return {
        "spec": encoder.spec,
        "name": encoder.name,
        "dim": int(encoder.dim),
        "modalities": sorted(encoder.modalities),
        "model": encoder.model,
    }
