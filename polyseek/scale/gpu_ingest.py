"""The GPU image path: JPEG files → vectors in the store with decoding, resizing and encoding on the GPU.

Bytes are read (and hashed) by threads, decoded in batches by nvJPEG (`torchvision.io.decode_jpeg(...,
device="cuda")`), resized and normalised on the GPU as CLIP's processor does (shortest side to the model's size,
bicubic with antialiasing, centre crop, CLIP mean/std), encoded by a vision tower in fp16, and committed to the
store by a writer thread in large batches. 16 host cores decode only ~2,100 JPEGs/s with Pillow (MEASURED.md), a
ViT-B/32 encodes ~28,600 images/s in fp16 on an H200: the decoder has to move to the GPU.

torchvision cannot be installed beside the CPU torch of the development machines; without it (or on the CPU) the
same path decodes with Pillow, so tests run the same code on the CPU.
"""

from __future__ import annotations

import hashlib
import io
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
COMMIT_ROWS = 8192  # rows per store commit: a LanceDB append costs ~0.2 s whatever its size


def gpu_decoder_available(device: str) -> tuple[bool, str]:
    """(True, "") when nvJPEG decoding can run on `device`, else (False, why and what to install)."""
    if not str(device).startswith("cuda"):
        return False, "device is the CPU: JPEGs are decoded with Pillow"
    try:
        import torchvision.io  # noqa: F401
    except ImportError:
        return False, ("torchvision is not importable: JPEGs are decoded on the CPU with Pillow; install the "
                       "torchvision build matching your torch for nvJPEG decoding on the GPU")
    return True, ""


@dataclass
class Decoded:
    tensors: list  # CHW uint8 tensors (on the device with nvJPEG, else on the CPU)
    ok: list[int]  # positions in the batch that decoded
    failed: list[tuple[int, str]] = field(default_factory=list)  # (position, reason)


def decode_jpegs(datas: Sequence[bytes], device: str) -> Decoded:
    """Decode a batch of JPEG byte strings: nvJPEG on a CUDA device when torchvision is importable (falling
    back to one-by-one for a batch holding a broken file), else Pillow. Broken files come back with a reason."""
    import torch

    gpu, _ = gpu_decoder_available(device)
    if gpu:
        from torchvision.io import ImageReadMode, decode_jpeg

        ins = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
        try:
            return Decoded(decode_jpeg(ins, mode=ImageReadMode.RGB, device=device), list(range(len(datas))))
        except RuntimeError:
            out = Decoded([], [])
            for i, t in enumerate(ins):
                try:
                    out.tensors.append(decode_jpeg(t, mode=ImageReadMode.RGB, device=device))
                    out.ok.append(i)
                except RuntimeError as e:
                    out.failed.append((i, f"broken JPEG: {e}"))
            return out
    from PIL import Image, UnidentifiedImageError

    out = Decoded([], [])
    for i, d in enumerate(datas):
        try:
            with Image.open(io.BytesIO(d)) as im:
                arr = np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError) as e:
            out.failed.append((i, f"broken JPEG: {e}"))
            continue
        out.tensors.append(torch.from_numpy(arr.copy()).permute(2, 0, 1))
        out.ok.append(i)
    return out


def preprocess(images: list, size: int, device: str, dtype) -> Any:
    """CLIP's preprocessing on the device: shortest side → `size` (bicubic, antialiased), centre crop, scale to
    [0, 1], normalise. Images of one shape are resized together (one kernel for the group)."""
    import torch
    import torch.nn.functional as F

    mean = torch.tensor(CLIP_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=device).view(1, 3, 1, 1)
    out = torch.empty((len(images), 3, size, size), device=device, dtype=dtype)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, im in enumerate(images):
        groups.setdefault(tuple(im.shape[1:]), []).append(i)
    for (h, w), idx in groups.items():
        x = torch.stack([images[i] for i in idx]).to(device=device, non_blocking=True).float()
        s = size / min(h, w)
        nh, nw = max(size, round(h * s)), max(size, round(w * s))
        x = F.interpolate(x, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False)
        top, left = (nh - size) // 2, (nw - size) // 2
        x = x[:, :, top:top + size, left:left + size].clamp_(0, 255) / 255.0
        out[idx] = ((x - mean) / std).to(dtype)
    return out


class VisionTower:
    """A CLIP vision tower with its projection (transformers `CLIPVisionModelWithProjection`), fp16 on a GPU:
    pixel batch → L2-normalised image vectors."""

    def __init__(self, model: Any, device: str, fp16: bool | None = None):
        import torch

        self.device = device
        self.dtype = torch.float16 if (fp16 if fp16 is not None else str(device).startswith("cuda")) else torch.float32
        self.net = model.to(device=device, dtype=self.dtype).eval()
        self.size = int(model.config.image_size)
        self.dim = int(model.config.projection_dim)

    @classmethod
    def random(cls, device: str, *, config: dict | None = None, fp16: bool | None = None) -> "VisionTower":
        """The real architecture with random weights (ViT-B/32 by default: throughput does not depend on the
        weights, and no weights can be downloaded here)."""
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        cfg = CLIPVisionConfig(**({"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                                   "num_attention_heads": 12, "image_size": 224, "patch_size": 32,
                                   "projection_dim": 512} | (config or {})))
        return cls(CLIPVisionModelWithProjection(cfg), device, fp16)

    def encode(self, pixels) -> Any:
        import torch

        with torch.inference_mode():
            v = self.net(pixel_values=pixels).image_embeds
            return torch.nn.functional.normalize(v.float(), dim=-1)


@dataclass
class GpuIngestReport:
    indexed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    decoder: str = ""


def ingest_jpegs(store, paths: Sequence[Path], tower: VisionTower, *, batch: int = 512, readers: int = 16,
                 commit_rows: int = COMMIT_ROWS, field_name: str = "vec_visual") -> GpuIngestReport:
    """JPEG files → image assets with `field_name` vectors in `store`, committed in batches of `commit_rows`
    by a writer thread (each commit is one atomic store write of whole files, as in an index run)."""
    from ..store.base import EncodedAsset
    from ..types import Asset, Unit

    gpu, why = gpu_decoder_available(tower.device)
    report = GpuIngestReport(decoder="nvjpeg" if gpu else "pillow")
    if not gpu and str(tower.device).startswith("cuda"):
        log.warning(why)
    dims = dict(store.dims)
    if dims.get(field_name) != tower.dim:
        raise ConfigError(f"the store's {field_name} has dim {dims.get(field_name)}, the vision tower {tower.dim}")
    other = {f: d for f, d in dims.items() if f != field_name}

    def read(p: Path):
        try:
            data = p.read_bytes()
            st = p.stat()
        except OSError as e:
            return p, None, f"cannot read file: {e.strerror or e}", None
        return p, data, hashlib.sha256(data).hexdigest(), st

    q: queue.Queue = queue.Queue(maxsize=4)
    errors: list[BaseException] = []

    def writer():
        pending: list = []
        while True:
            item = q.get()
            if item is not None:
                pending.extend(item)
            if pending and (item is None or len(pending) >= commit_rows):
                try:
                    store.write(pending)
                except BaseException as e:  # re-raised in the caller's thread
                    errors.append(e)
                    return
                pending = []
            if item is None:
                return

    wt = threading.Thread(target=writer, name="gpu-ingest-writer", daemon=True)
    wt.start()
    try:
        with ThreadPoolExecutor(readers) as pool:
            chunks = [paths[i:i + batch] for i in range(0, len(paths), batch)]
            ahead = [pool.map(read, c) for c in chunks[:2]]
            for ci in range(len(chunks)):
                if ci + 2 < len(chunks):
                    ahead.append(pool.map(read, chunks[ci + 2]))
                rows = []
                for r in ahead[ci]:
                    if r[1] is None:
                        report.failed.append((str(r[0]), r[2]))
                    else:
                        rows.append(r)
                ahead[ci] = None
                dec = decode_jpegs([r[1] for r in rows], tower.device)
                for i, reason in dec.failed:
                    report.failed.append((str(rows[i][0]), reason))
                if not dec.ok:
                    continue
                vecs = tower.encode(preprocess(dec.tensors, tower.size, tower.device, tower.dtype)).cpu().numpy()
                out = []
                for j, i in enumerate(dec.ok):
                    p, _, h, st = rows[i]
                    aid = p.stem
                    asset = Asset(id=aid, path=str(p), type="image", hash=h, size=st.st_size, mtime=st.st_mtime,
                                  source=str(p))
                    unit = Unit(id=f"{aid}#image", kind="image")
                    v = {field_name: vecs[j:j + 1]} | {f: np.zeros((1, d), np.float32) for f, d in other.items()}
                    out.append(EncodedAsset(asset, [unit], v, []))
                if errors:
                    raise errors[0]
                q.put(out)
                report.indexed += len(out)
    finally:
        q.put(None)
        wt.join()
    if errors:
        raise errors[0]
    return report
