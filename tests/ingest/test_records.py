"""Records files: JSONL, CSV and Parquet rows become record assets; bad rows are reported, not raised."""

from __future__ import annotations

import hashlib
import json

import pytest

from polyseek.config import IngestConfig
from polyseek.ingest import iter_records


def _split(items):
    good = [x for x in items if not isinstance(x, tuple)]
    bad = [x for x in items if isinstance(x, tuple)]
    return good, bad


def test_jsonl_rows_text_meta_hash_and_bad_rows(records_files):
    path = records_files["jsonl"]
    good, bad = _split(list(iter_records(path, text_fields=("text", "title"), meta_fields=("lang",),
                                        image_field="image", config=IngestConfig(ocr=False))))
    assert [e.asset.id for e in good] == ["1", "r2", "3"]
    first = good[0]
    assert first.units[0].id == "1#rec" and first.units[0].kind == "record"
    assert first.units[0].text == "Bread\nSourdough needs a ripe starter."  # title first
    assert first.asset.type == "record" and first.asset.meta == {"lang": "en"}
    assert first.asset.source == str(path.absolute())
    row = json.loads(path.read_text().splitlines()[0])
    canonical = json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert first.asset.hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert good[2].units[0].text == "Plain row without title."
    assert good[1].asset.meta["width"] == 240 and good[1].asset.thumbnail  # image loaded
    where = {w.rsplit(":", 1)[1]: reason for w, reason in bad}
    assert set(where) == {"4", "5", "6"}
    assert "invalid JSON" in where["4"] and "missing id" in where["5"] and "missing image" in where["6"]


def test_record_image_is_ocred_and_pixels_kept(records_files):
    good, _ = _split(list(iter_records(records_files["jsonl"], image_field="image", want_pixels=True)))
    unit = good[1].units[0]
    assert "LABEL" in unit.text.upper() and unit.text.startswith("Comté ages")
    assert unit.meta["ocr"] and unit.image is not None


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_csv_and_parquet_give_same_records(records_files, kind):
    good, bad = _split(list(iter_records(records_files[kind], text_fields=("title", "text"), meta_fields=("lang",))))
    assert [e.asset.id for e in good] == ["1", "r2", "3"]
    assert good[1].units[0].text == "Cheese\nComté ages for months in caves."
    assert good[1].asset.meta == {"lang": "fr"}
    if kind == "csv":
        assert len(bad) == 1 and "missing id" in bad[0][1] and bad[0][0].endswith(":5")
