"""Text encoders run by ONNX Runtime: a sentence-transformers model (BERT family, mean pooling) exported once to
ONNX and cached, tokenized with `tokenizers`. No torch or transformers import once the export is cached.

The packaged all-MiniLM-L6-v2 served this way keeps the spec "minilm": the vectors are the torch path's
(cosine > 0.999, tests/encode/test_onnx.py), so an index built through either runtime is served by both.
`quantize=int8` (ONNX Runtime dynamic quantization, weights int8 per channel, activations quantized at run time;
Jacob et al. 2018) gives other vectors, so it is another spec: "minilm?quantize=int8".
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from ..config import cache_root
from ..errors import ConfigError, MissingDependencyError
from .base import Encoder, Modality, Role, encoders, format_spec
from .hub import canonical_model

EXPORT_VERSION = 1  # bump when the exported graph changes: cached exports are keyed by it
QUANTIZE = ("int8",)
RUNTIME_ENV = "POLYSEEK_TEXT_RUNTIME"  # "torch" keeps sentence-transformers for "minilm" on CPU


def serves(name: str, options: dict[str, str], device: str) -> bool:
    """True when a spec named `name` is run by ONNX Runtime here: "minilm" on CPU (unless POLYSEEK_TEXT_RUNTIME=torch
    and no quantization is asked for). A quantized spec is ONNX-only, whatever the device."""
    if name != "minilm" or not set(options) <= {"quantize"}:
        return False
    if options.get("quantize"):
        return True
    return device == "cpu" and os.environ.get(RUNTIME_ENV, "").strip().lower() != "torch"


def _fingerprint(folder: Path) -> str:
    """A key for one model folder's contents: its config files and the sizes of its weight files."""
    h = hashlib.sha1(f"export-v{EXPORT_VERSION}".encode())
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json", "tokenizer.json"):
        f = folder / name
        if f.is_file():
            h.update(name.encode() + f.read_bytes())
    for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()[:16]


def _check_pooling(folder: Path) -> int:
    """The model's max sequence length; refuses models whose pooling the exported graph would not reproduce."""
    pool = folder / "1_Pooling" / "config.json"
    if pool.is_file():
        cfg = json.loads(pool.read_text())
        if not cfg.get("pooling_mode_mean_tokens") or any(
                cfg.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_lasttoken")):
            raise ConfigError(f"the 'onnx' encoder runs mean-pooling models; {folder} pools otherwise: "
                              f"use 'sentence-transformers:{folder}'")
    modules = folder / "modules.json"
    if modules.is_file():
        kinds = [m.get("type", "") for m in json.loads(modules.read_text())]
        extra = [k for k in kinds if not k.endswith(("Transformer", "Pooling", "Normalize"))]
        if extra:
            raise ConfigError(f"the 'onnx' encoder runs Transformer+Pooling(+Normalize) models; {folder} also has "
                              f"{', '.join(extra)}: use 'sentence-transformers:{folder}'")
    sbert = folder / "sentence_bert_config.json"
    if sbert.is_file():
        return int(json.loads(sbert.read_text()).get("max_seq_length") or 512)
    return 512


@contextmanager
def _locked(folder: Path):
    """One exporter per cache folder across processes (an flock, released by the OS if the process dies)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def export_onnx(folder: Path, out: Path) -> None:
    """Export the transformer + mean pooling + L2 normalisation of a sentence-transformers folder to `out`.

    Needs torch and transformers (once per model); the graph takes input_ids, attention_mask, token_type_ids and
    returns normalised sentence vectors, with batch and sequence axes dynamic."""
    try:
        import torch
        from transformers import AutoModel
    except ImportError:
        raise MissingDependencyError("exporting a model to ONNX needs torch and transformers once; "
                                     "install polyseek[torch] or copy an exported model into the cache") from None

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a weights-loading bar in the middle of an index run's output
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager", local_files_only=True).eval()

    class Pooled(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(h.dtype)
            v = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(v, p=2.0, dim=-1)

    # Trace with padding in the batch so no mask-dependent shortcut is frozen into the graph.
    ids = torch.ones(2, 16, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
            "token_type_ids": {0: "batch", 1: "seq"}, "embedding": {0: "batch"}}
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks
        torch.onnx.export(Pooled(model), (ids, mask, torch.zeros_like(ids)), str(tmp),
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["embedding"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    os.replace(tmp, out)


def quantize_int8(src: Path, out: Path) -> None:
    """Dynamic int8 quantization of the MatMul weights, per output channel (ONNX Runtime's quantize_dynamic)."""
    import logging

    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise MissingDependencyError("int8 quantization needs the onnx package: install polyseek[quantize]") from None
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" advice, printed on every call
    try:
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         op_types_to_quantize=["MatMul"])
    finally:
        logging.getLogger().setLevel(level)
    os.replace(tmp, out)


def exported_model(folder: Path, quantize: str | None = None, slug: str | None = None) -> Path:
    """The cached ONNX file for this model folder (and quantization), exported on first use."""
    cache = cache_root() / "onnx" / f"{slug or folder.name}-{_fingerprint(folder)}"
    fp32 = cache / "model.onnx"
    want = cache / "model.int8.onnx" if quantize == "int8" else fp32
    if want.is_file():
        return want
    with _locked(cache):
        if not fp32.is_file():
            print(f"polyseek: exporting {folder.name} to ONNX once (cached in {cache})", file=sys.stderr, flush=True)
            export_onnx(folder, fp32)
        if quantize == "int8" and not want.is_file():
            quantize_int8(fp32, want)
    return want


def cpu_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@encoders.register("onnx")
class OnnxTextEncoder(Encoder):
    """A mean-pooling sentence-transformers model through ONNX Runtime (CPU): the packaged MiniLM by default.

    Texts are sorted by token length and run in batches of at most `batch_size` texts and `batch_tokens` tokens
    (padding included), so padding costs little and long passages go in small batches (8 passages of 256 tokens
    used about 4-12% less CPU than 32 on two cores; docs/benchmarks.md, first contact)."""

    name: ClassVar[str] = "onnx"
    modalities: ClassVar[frozenset[str]] = frozenset({"text"})
    spec_options: ClassVar[tuple[str, ...]] = ("quantize",)

    def __init__(self, model: str | None = None, device: str | None = None, batch_size: int = 32, *,
                 quantize: str | None = None, batch_tokens: int = 2048):
        from .text import MINILM_ID, _MINILM_ALIASES, packaged_minilm_path

        if device not in (None, "cpu"):
            raise ConfigError(f"the ONNX text runtime runs on cpu, not {device!r}; use 'sentence-transformers:MODEL' "
                              f"for {device}")
        if quantize not in (None, "", *QUANTIZE):
            raise ConfigError(f"unknown quantize {quantize!r}; choose from: {', '.join(QUANTIZE)}")
        quantize = quantize or None
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_tokens = int(batch_tokens)
        packaged = canonical_model(packaged_minilm_path()) if not model or model in _MINILM_ALIASES else None
        folder = Path(packaged or canonical_model(model))
        if not folder.is_dir():
            raise ConfigError(f"the 'onnx' encoder takes a local sentence-transformers folder; {model!r} is not one")
        self.device = "cpu"
        self.quantize = quantize
        self.max_length = _check_pooling(folder)
        self.onnx_path = exported_model(folder, quantize, MINILM_ID.rsplit("/", 1)[-1] if packaged else None)
        self._tok = self._tokenizer(folder)
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = cpu_threads()
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        # Idle intra-op threads sleep instead of spinning: an index run does other work (local features, OCR) on the
        # same cores right after each encoder call.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(self.onnx_path), so, providers=["CPUExecutionProvider"])
        self.dim = int(self._session.get_outputs()[0].shape[-1] or self.embed_batch(["x"], role="document",
                                                                                   modality="text").shape[1])
        options = {"quantize": quantize}
        if packaged:
            self.model = MINILM_ID
            self.spec = format_spec("minilm", None, options)  # the vectors of "minilm": same spec, either runtime
        else:
            self.model = str(folder)
            self.spec = format_spec(self.name, str(folder), options)

    def _tokenizer(self, folder: Path):
        from tokenizers import Tokenizer

        f = folder / "tokenizer.json"
        if not f.is_file():
            raise ConfigError(f"{folder} has no tokenizer.json; the 'onnx' encoder needs a fast tokenizer file")
        tok = Tokenizer.from_file(str(f))
        cfg = folder / "tokenizer_config.json"
        limit = self.max_length
        if cfg.is_file():
            limit = min(limit, int(json.loads(cfg.read_text()).get("model_max_length") or limit))
        tok.enable_truncation(limit)
        tok.no_padding()
        self.max_length = limit
        return tok

    def embed_batch(self, items: Sequence[Any], *, role: Role, modality: Modality) -> np.ndarray:
        self._check(role, modality)
        texts = list(items)
        if not texts:
            return self._empty() if self.dim else np.zeros((0, 0), np.float32)
        bad = next((t for t in texts if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"text encoder {self.spec!r} takes str items, got {type(bad).__name__}")
        enc = self._tok.encode_batch(texts)
        lens = np.fromiter((len(e.ids) for e in enc), dtype=np.int64, count=len(enc))
        order = np.argsort(-lens, kind="stable")
        out: np.ndarray | None = None
        i = 0
        while i < len(order):
            width = int(lens[order[i]])  # the longest text left: they go longest first
            n = max(1, min(self.batch_size, self.batch_tokens // max(width, 1)))
            rows = order[i:i + n]
            i += n
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            for r, j in enumerate(rows):
                e = enc[j]
                m = len(e.ids)
                ids[r, :m] = e.ids
                types[r, :m] = e.type_ids
                mask[r, :m] = 1
            vec = self._session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
            if out is None:
                out = np.empty((len(texts), vec.shape[1]), dtype=np.float32)
            out[rows] = vec
        return np.ascontiguousarray(out, dtype=np.float32)
