"""CLIP-family dual encoders (CLIP, SigLIP, ...) through `transformers` AutoModel + AutoProcessor.

Text and images land in one space, so a text query can find images and an image can find images.
Works without torchvision: the image processors fall back to their PIL implementations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from ..errors import ConfigError
from .base import Encoder, Modality, Role, encoders, format_spec, pick_device, use_all_cores
from .hub import canonical_model, load_pretrained


@encoders.register("clip")
class ClipEncoder(Encoder):
    """A CLIP/SigLIP model by Hub id or local folder; fp16 on CUDA, fp32 on CPU; unit-norm float32 out."""

    name: ClassVar[str] = "clip"
    modalities: ClassVar[frozenset[str]] = frozenset({"text", "image"})

    def __init__(self, model: str, device: str | None = None, batch_size: int = 32):
        import torch
        from transformers import AutoModel, AutoProcessor

        if not model:
            raise ConfigError("the 'clip' encoder needs a model, e.g. 'clip:openai/clip-vit-base-patch32' or 'clip:/path/to/folder'")
        self.model = canonical_model(model)
        self.spec = format_spec(self.name, self.model)
        self.device = pick_device(device)
        if self.device == "cpu":
            use_all_cores()
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self._dtype = torch.float16 if self.device.startswith("cuda") else torch.float32

        net = load_pretrained(AutoModel.from_pretrained, self.model, encoder=self.name)
        if not (hasattr(net, "get_text_features") and hasattr(net, "get_image_features")):
            raise ConfigError(
                f"model {model!r} ({type(net).__name__}) has no text and image towers; "
                "the 'clip' encoder takes CLIP-family models such as openai/clip-vit-base-patch32 or google/siglip-base-patch16-224"
            )
        processor = load_pretrained(AutoProcessor.from_pretrained, self.model, encoder=self.name)
        self._tokenizer = getattr(processor, "tokenizer", None)
        self._image_processor = getattr(processor, "image_processor", None)
        if self._tokenizer is None or self._image_processor is None:
            raise ConfigError(f"model {model!r} has no tokenizer and image processor saved with it (AutoProcessor found {type(processor).__name__})")
        self._net = net.to(device=self.device, dtype=self._dtype).eval()

        config = net.config
        text_config = getattr(config, "text_config", config)
        self.model_type = str(getattr(config, "model_type", ""))
        # SigLIP was trained on text padded to the full length and pools the last token: pad the same way.
        self._text_padding: bool | str = "max_length" if "siglip" in self.model_type else True
        self._max_length = int(getattr(text_config, "max_position_embeddings", 0) or 77)
        self.dim = int(getattr(config, "projection_dim", 0) or text_config.hidden_size)

    def embed_batch(self, items: Sequence[Any], *, role: Role, modality: Modality) -> np.ndarray:
        """Text queries and documents share the text tower (CLIP is symmetric); `role` does not change vectors."""
        self._check(role, modality)
        items = list(items)
        if not items:
            return self._empty()
        if modality == "text":
            bad = next((t for t in items if not isinstance(t, str)), None)
            if bad is not None:
                raise TypeError(f"encoder {self.spec!r} takes str items for modality 'text', got {type(bad).__name__}")
            # Batches of similar lengths waste less compute on padding; the order is restored at the end.
            order = sorted(range(len(items)), key=lambda i: len(items[i]))
            out = np.empty((len(items), self.dim), dtype=np.float32)
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                out[idx] = self._text([items[i] for i in idx])
            return out
        parts = [self._images([_rgb(x) for x in items[s : s + self.batch_size]]) for s in range(0, len(items), self.batch_size)]
        return np.concatenate(parts)

    def _text(self, texts: list[str]) -> np.ndarray:
        inputs = self._tokenizer(
            texts,
            padding=self._text_padding,
            truncation=True,
            max_length=self._max_length,
            return_tensors="pt",
        )
        return self._run(self._net.get_text_features, inputs)

    def _images(self, images: list[Any]) -> np.ndarray:
        return self._run(self._net.get_image_features, self._image_processor(images=images, return_tensors="pt"))

    def _run(self, fn, inputs) -> np.ndarray:
        import torch

        batch = {
            k: v.to(self.device, dtype=self._dtype) if v.is_floating_point() else v.to(self.device)
            for k, v in inputs.items()
            if isinstance(v, torch.Tensor)
        }
        with torch.inference_mode():
            out = fn(**batch)
            # transformers 5 returns an output object whose pooler_output is the projected embedding.
            emb = out if isinstance(out, torch.Tensor) else out.pooler_output
            emb = torch.nn.functional.normalize(emb.float(), dim=-1)
        return emb.cpu().numpy()


def _rgb(image: Any):
    """A PIL image in RGB; a path is opened. Anything else is a caller's mistake."""
    from PIL import Image

    if isinstance(image, (str, Path)):
        with Image.open(image) as im:
            return im.convert("RGB")
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    raise TypeError(f"image items must be PIL images or paths, got {type(image).__name__}")
