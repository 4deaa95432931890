"""The contract every registered Extractor keeps: it declares what it handles, and what it returns matches."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyseek.config import IngestConfig
from polyseek.errors import IngestError
from polyseek.ingest.base import ExtractContext, formats, instance_kinds, registered
from polyseek.ingest.detect import supported_suffixes
from polyseek.ingest.files import extract_file, stream_file
from tests.fixtures import make_good_corpus

EXTRACTORS = sorted(registered())


def _samples(root: Path) -> dict[str, Path]:
    """extractor name -> one sample file of it from the generated corpus."""
    out = {}
    for p in sorted(root.rglob("*")):
        for fmt, (_, sfx, name) in formats().items():
            if p.is_file() and p.suffix.lower() in sfx and name not in out:
                out[name] = p
    return out


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    root = tmp_path_factory.mktemp("extract-contract")
    make_good_corpus(root)
    _media_samples(root / "media")
    return _samples(root)


def _media_samples(folder: Path) -> None:
    """A tiny video and a narrated audio file, when PyAV (and espeak-ng for the voice) are installed."""
    try:
        import av  # noqa: F401
    except ImportError:
        return
    from tests.media_fixtures import have_espeak, mix, narration, pattern, slide, write_media

    folder.mkdir()
    write_media(folder / "clip.webm", [(slide("Contract"), 1.0), (pattern(2), 1.0)], mix(2.0), vcodec="libvpx")
    if have_espeak():
        write_media(folder / "memo.wav", audio=narration()[0])


def test_declarations_are_one_list():
    """Formats, suffixes and unit kinds come from the extractors themselves, without overlaps."""
    seen: dict[str, str] = {}
    for name, cls in registered().items():
        assert cls.asset_type and cls.formats, name
        assert set(cls.instance_kinds) <= set(cls.unit_kinds), name
        for s in cls.suffixes():
            assert s.startswith(".") and s == s.lower()
            assert s not in seen, f"{s} claimed by {seen.get(s)} and {name}"
            seen[s] = name
    assert set(supported_suffixes()) == set(seen)
    assert set(instance_kinds()) == {"image", "page", "figure", "frame"}


@pytest.mark.parametrize("name", EXTRACTORS)
def test_an_extraction_matches_the_declaration(samples, name, tmp_path):
    cls = registered()[name]
    if name not in samples:
        pytest.skip(f"no sample for {name}: needs polyseek[media] (and espeak-ng for speech)")
    path = samples[name]
    ex = extract_file(path, ExtractContext(config=IngestConfig(ocr=False), asset_id="a"))
    assert ex.asset.id == "a" and ex.asset.type == cls.asset_type and ex.asset.hash
    assert ex.units and ex.final
    assert {u.kind for u in ex.units} <= set(cls.unit_kinds)
    assert all(u.id.startswith("a#") for u in ex.units) and len({u.id for u in ex.units}) == len(ex.units)
    ids = {u.id for u in ex.units}
    assert all(k in ids and set(v) <= ids for k, v in ex.pooled.items())
    parts = list(stream_file(path, ExtractContext(config=IngestConfig(ocr=False), asset_id="a")))
    assert parts[-1].final and all(not p.final for p in parts[:-1])
    assert [u.id for p in parts for u in p.units] == [u.id for u in ex.units]


@pytest.mark.parametrize("name", EXTRACTORS)
def test_a_broken_file_is_an_ingest_error_with_a_reason(name, tmp_path):
    cls = registered()[name]
    suffix = cls.suffixes()[0]
    bad = tmp_path / f"broken{suffix}"
    bad.write_bytes(b"\x00\x01garbage" * 10 if cls.asset_type != "text" else b"\x00\xff\x00" * 50)
    with pytest.raises(IngestError) as e:
        extract_file(bad, ExtractContext(config=IngestConfig(ocr=False), asset_id="b"))
    assert e.value.reason and e.value.path == str(bad)
