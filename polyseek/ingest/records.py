"""Records files (JSONL, CSV, Parquet): one asset and one "record" unit per row, read in a streaming way.

Bad rows never stop the file: they are yielded as `(f"{path}:{line_no}", reason)` and iteration goes on.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..config import IngestConfig
from ..errors import IngestError, UnsupportedFileError
from ..types import Asset, Extraction, Unit
from .base import ExtractContext

PARQUET_BATCH = 8192


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line/row number, row dict or None, error or None) for each row of a JSONL, CSV or Parquet file."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        loads = json.loads
        with open(path, "rb") as fh:
            for no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = loads(line)
                except ValueError as exc:
                    yield no, None, f"invalid JSON: {exc}"
                    continue
                if not isinstance(row, dict):
                    yield no, None, f"expected a JSON object, got {type(row).__name__}"
                    continue
                yield no, row, None
    elif suffix in (".csv", ".tsv"):
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
            for row in reader:
                # data starts on line 2 (after the header); a quoted field may span lines, line_num is where it ended
                yield reader.line_num, row, None
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except (OSError, ValueError) as exc:  # pyarrow.ArrowInvalid is a ValueError
            raise IngestError(f"broken Parquet file: {exc}", path=str(path)) from exc
        no = 0
        for batch in pf.iter_batches(batch_size=PARQUET_BATCH):
            for row in batch.to_pylist():
                no += 1
                yield no, row, None
    else:
        raise UnsupportedFileError(f"unsupported records file {suffix!r}; use .jsonl, .csv, .tsv or .parquet",
                                   path=str(path))


def iter_records(path: str | Path, *, id_field: str = "id", text_fields: Iterable[str] = ("text",),
                 image_field: str | None = None, meta_fields: Iterable[str] = (),
                 config: IngestConfig | None = None, want_pixels: bool = False) -> Iterator[Extraction | tuple[str, str]]:
    """Yield one Extraction per row of a JSONL/CSV/Parquet file, or `(f"{path}:{line_no}", reason)` for bad rows.

    Unit text joins `text_fields` (a "title" field goes first) with newlines; `image_field` holds an image path
    relative to the records file, loaded like an image file (OCR, pixels); `meta_fields` are copied to asset.meta.
    """
    path = Path(path)
    config = config or IngestConfig()
    text_fields = tuple(text_fields)
    if "title" in text_fields:
        text_fields = ("title",) + tuple(f for f in text_fields if f != "title")
    meta_fields = tuple(meta_fields)
    source = str(path.absolute())
    base = path.absolute().parent
    dumps = json.dumps
    for no, row, error in _rows(path):
        where = f"{path}:{no}"
        if error:
            yield where, error
            continue
        rid = row.get(id_field)
        if rid is None or (isinstance(rid, str) and not rid.strip()):
            yield where, f"missing id field {id_field!r}"
            continue
        rid = str(rid)
        canonical = dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
        asset = Asset(id=rid, path=source, type="record", hash=hashlib.sha256(canonical.encode()).hexdigest(),
                      source=source)
        parts = []
        for f in text_fields:
            v = row.get(f)
            if v is not None and v != "":
                parts.append(str(v).strip())
        title = row.get("title")
        asset.title = str(title) if title else rid  # the title field, else the id: what names one record
        for f in meta_fields:
            if f in row:
                asset.meta[f] = row[f]
        unit = Unit(id=f"{rid}#rec", kind="record", text="\n".join(p for p in parts if p))
        warns: list[str] = []
        if image_field and row.get(image_field):
            try:
                _attach_image(asset, unit, base / str(row[image_field]), config, want_pixels, warns)
            except IngestError as exc:
                yield where, exc.reason
                continue
        yield Extraction(asset=asset, units=[unit], warnings=warns)


def _attach_image(asset: Asset, unit: Unit, image_path: Path, config: IngestConfig, want_pixels: bool,
                  warns: list[str]) -> None:
    """Load a row's image as images.py does: metadata, thumbnail, OCR text appended, pixels when wanted."""
    from .images import fill_image_asset, image_unit, open_image

    if not image_path.is_file():
        raise IngestError(f"missing image {image_path}")
    try:
        image, exif, fmt, mode = open_image(image_path, config.max_image_pixels)
    except OSError as exc:
        raise IngestError(f"cannot read image {image_path}: {exc.strerror or exc}") from exc
    fill_image_asset(asset, image, exif, fmt, mode, config.thumbnail_size)
    asset.meta["image"] = str(image_path)
    img_unit = image_unit(unit.id, image, ExtractContext(config=config, asset_id=asset.id, want_pixels=want_pixels), warns)
    if img_unit.text:
        unit.text = f"{unit.text}\n{img_unit.text}" if unit.text else img_unit.text
    if "ocr" in img_unit.meta:
        unit.meta["ocr"] = img_unit.meta["ocr"]
    unit.bbox = img_unit.bbox
    unit.image = img_unit.image
