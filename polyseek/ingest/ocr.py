"""OCR backends behind one small interface: `OcrEngine.read(image) -> list[OcrLine]`.

`rapidocr` (ONNX PaddleOCR models bundled with rapidocr-onnxruntime) is the default; `tesseract` shells out to the
Debian `tesseract` binary. Engines are created once per process and reused: model loading costs seconds.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import IngestError, MissingDependencyError
from ..registry import Registry

ocr_engines: Registry[type["OcrEngine"]] = Registry("OCR engine")

MIN_SIDE = 32  # images smaller than this on either side carry no readable text
MAX_SIDE = 1600  # larger images are downscaled before OCR; boxes are mapped back


@dataclass
class OcrLine:
    """One line of recognised text; `bbox` is [x, y, w, h] in pixels of the image given to `read`."""

    text: str
    bbox: tuple[float, float, float, float]
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "bbox": [round(v, 1) for v in self.bbox], "score": round(self.score, 4)}


class OcrEngine:
    """Reads text lines from a PIL image. Subclasses implement `_read` on an image already sized for OCR."""

    name: ClassVar[str] = ""

    def read(self, image, *, upright: bool = False) -> list[OcrLine]:
        """Recognise text in `image` (any PIL mode); tiny images are skipped, huge ones downscaled. `upright`: the
        text is known not to be upside down (video frames), so engines may skip their orientation check."""
        w, h = image.size
        if min(w, h) < MIN_SIDE:
            return []
        scale = 1.0
        if max(w, h) > MAX_SIDE:
            scale = MAX_SIDE / max(w, h)
            image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))))
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        lines = self._read(image, upright)
        if scale != 1.0:
            lines = [OcrLine(l.text, tuple(v / scale for v in l.bbox), l.score) for l in lines]
        return lines

    def _read(self, image, upright: bool) -> list[OcrLine]:
        raise NotImplementedError


@ocr_engines.register("rapidocr")
class RapidOcrEngine(OcrEngine):
    """PaddleOCR det+cls+rec models run by onnxruntime (rapidocr-onnxruntime). `threads`: onnxruntime threads per
    call (0: onnxruntime's default, one per core)."""

    name = "rapidocr"

    def __init__(self, threads: int = 0) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise MissingDependencyError("OCR needs rapidocr-onnxruntime: pip install rapidocr-onnxruntime==1.4.4") from exc
        # The default detector resizes so the SHORT side is 736 px, blowing a 360x120 label up to 2208x736;
        # capping the LONG side at 960 px is several times faster and reads large text just as well.
        # One thread per call costs less than half the CPU time of the default pool on a busy 2-core machine
        # (its idle threads spin), so callers that run OCR beside other work ask for threads=1. On one thread, lines
        # are recognised one at a time: a batch pads every line to the widest one, which cost a fifth more CPU time
        # and read slightly fewer words on media-dev keyframes.
        opts = {"intra_op_num_threads": threads} if threads > 0 else {}
        if threads == 1:
            opts["rec_batch_num"] = 1
        self._engine = RapidOCR(det_limit_side_len=960, det_limit_type="max", **opts)
        self._lock = threading.Lock()  # the onnxruntime sessions are shared; one call at a time keeps memory flat

    def _read(self, image, upright: bool) -> list[OcrLine]:
        import numpy as np

        arr = np.asarray(image.convert("RGB"))[:, :, ::-1]  # rapidocr expects BGR like OpenCV
        with self._lock:  # the angle classifier turns lines upside down; upright text does not need it
            result, _ = self._engine(np.ascontiguousarray(arr), use_cls=not upright)
        lines = []
        for box, text, score in result or []:
            xs = [p[0] for p in box]
            ys = [p[1] for p in box]
            x0, y0 = float(min(xs)), float(min(ys))
            lines.append(OcrLine(str(text).strip(), (x0, y0, float(max(xs)) - x0, float(max(ys)) - y0), float(score)))
        return [l for l in lines if l.text]


@ocr_engines.register("tesseract")
class TesseractEngine(OcrEngine):
    """The `tesseract` command-line program (Debian package tesseract-ocr), TSV output grouped into lines."""

    name = "tesseract"

    def __init__(self, threads: int = 0) -> None:
        self._threads = threads
        self._binary = shutil.which("tesseract")
        if self._binary is None:
            raise MissingDependencyError(
                "OCR engine 'tesseract' needs the tesseract binary: apt-get install tesseract-ocr "
                "(or set ingest.ocr_engine='rapidocr')"
            )

    def _read(self, image, upright: bool) -> list[OcrLine]:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        try:
            proc = subprocess.run(
                [self._binary, "stdin", "stdout", "tsv"], input=buf.getvalue(), capture_output=True, timeout=120,
                env={**os.environ, "OMP_THREAD_LIMIT": str(self._threads)} if self._threads > 0 else None,
            )
        except subprocess.TimeoutExpired as exc:
            raise IngestError("OCR timed out (tesseract, 120 s)") from exc
        if proc.returncode != 0:
            raise IngestError(f"tesseract failed: {proc.stderr.decode('utf-8', 'replace').strip()[:200]}")
        return _parse_tesseract_tsv(proc.stdout.decode("utf-8", "replace"))


def _parse_tesseract_tsv(tsv: str) -> list[OcrLine]:
    """Group tesseract's word rows (level 5) into lines keyed by (block, paragraph, line)."""
    groups: dict[tuple[str, str, str, str], list[dict[str, str]]] = {}
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") != "5" or not (row.get("text") or "").strip():
            continue
        groups.setdefault((row["page_num"], row["block_num"], row["par_num"], row["line_num"]), []).append(row)
    lines = []
    for words in groups.values():
        x0 = min(int(w["left"]) for w in words)
        y0 = min(int(w["top"]) for w in words)
        x1 = max(int(w["left"]) + int(w["width"]) for w in words)
        y1 = max(int(w["top"]) + int(w["height"]) for w in words)
        confs = [float(w["conf"]) for w in words if float(w["conf"]) >= 0]
        text = " ".join(w["text"].strip() for w in words)
        lines.append(OcrLine(text, (x0, y0, x1 - x0, y1 - y0), (sum(confs) / len(confs) / 100) if confs else 0.0))
    return lines


_engines: dict[tuple[str, int], OcrEngine] = {}
_engines_lock = threading.Lock()


def get_engine(name: str = "rapidocr", *, threads: int = 0) -> OcrEngine:
    """The shared engine called `name` with `threads` threads a call (0: the engine's default), created on first
    use; unknown names list the known ones."""
    cls = ocr_engines.get(name)
    with _engines_lock:
        engine = _engines.get((name, threads))
        if engine is None:
            engine = _engines[name, threads] = cls(threads=threads)
    return engine


def ocr_lines(image, engine: str = "rapidocr") -> list[OcrLine]:
    """Shortcut: OCR `image` with the shared engine called `engine`."""
    return get_engine(engine).read(image)
