"""Encode interface: one required method, `embed_batch`; query/document/image helpers derive from it."""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal, Sequence
from urllib.parse import parse_qsl, urlencode

import numpy as np

from ..errors import ConfigError
from ..registry import Registry

encoders: Registry[type["Encoder"]] = Registry("encoder")

Role = Literal["query", "document"]
Modality = Literal["text", "image"]


class Encoder:
    """Maps texts (and, for visual encoders, images) to L2-normalised float32 vectors of size `dim`.

    Capabilities are attributes: `modalities` says what `embed_batch` accepts, `dim` the vector size,
    `batch_size` the preferred batch. `spec` is the string that recreates the encoder (stored in the index).
    """

    name: ClassVar[str] = ""
    modalities: ClassVar[frozenset[str]] = frozenset({"text"})
    dim: int = 0
    batch_size: int = 64
    spec: str = ""
    spec_options: ClassVar[tuple[str, ...]] = ()  # keyword options a spec may carry ("name:model?option=value")
    model: str = ""  # the model id or absolute folder it was loaded from

    def embed_batch(self, items: Sequence[Any], *, role: Role, modality: Modality) -> np.ndarray:
        raise NotImplementedError

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_batch(list(texts), role="query", modality="text")

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_batch(list(texts), role="document", modality="text")

    def encode_images(self, images: Sequence[Any]) -> np.ndarray:
        """Images (PIL) as documents, or as queries: image towers are symmetric."""
        return self.embed_batch(list(images), role="document", modality="image")

    # Helpers for backends.

    def _check(self, role: str, modality: str) -> None:
        if modality not in self.modalities:
            raise ConfigError(
                f"encoder {self.spec or self.name!r} does not embed {modality}; "
                f"it embeds: {', '.join(sorted(self.modalities))}"
            )
        if role not in ("query", "document"):
            raise ConfigError(f"unknown role {role!r}; choose from: document, query")

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.dim), dtype=np.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r}, dim={self.dim})"


def format_spec(name: str, model: str | None = None, options: dict[str, Any] | None = None) -> str:
    """The stable string for an encoder: "name", "name:model" or "name:model?key=value&..." (options sorted)."""
    spec = name if not model else f"{name}:{model}"
    opts = {k: str(v) for k, v in sorted((options or {}).items()) if v is not None}
    return f"{spec}?{urlencode(opts)}" if opts else spec


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, str]]:
    """Split "name[:model][?key=value&...]" into (name, model or None, options); the inverse of `format_spec`."""
    head, _, query = spec.partition("?")  # not stripped: a prompt may end in a space
    name, _, model = head.strip().partition(":")
    if not name:
        raise ConfigError(f"bad encoder spec {spec!r}; write 'name' or 'name:model', e.g. 'minilm' or 'clip:/path/to/folder'")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise ConfigError(f"bad options in encoder spec {spec!r}; write 'name:model?key=value&key=value'") from None
    return name.strip(), (model.strip() or None), options


def looks_like_path(model: str) -> bool:
    """True for strings that can only be a folder (a Hub id is "org/name", never absolute or dotted)."""
    return os.path.isabs(model) or model.startswith((".", "~")) or os.path.exists(model)


def pick_device(device: str | None) -> str:
    """`device` as given, or "cuda" when a GPU is present, else "cpu".

    Without an NVIDIA device node torch is not imported at all: a CPU-only search must not pay for it."""
    if device:
        return device
    if not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/proc/driver/nvidia")):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def use_all_cores() -> None:
    """Keep torch's intra-op threads at the cores this process may use (some libraries lower it)."""
    import torch

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    if torch.get_num_threads() < cores:
        torch.set_num_threads(cores)
