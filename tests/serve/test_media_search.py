"""Search over indexed video and audio as a user runs it: the `polyseek` CLI in a subprocess, hits carrying time."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("av", reason="pip install polyseek[media] to run the media tests")
pytest.importorskip("faster_whisper", reason="pip install polyseek[media] to run the media tests")

from tests.serve.test_cli import run  # noqa: E402
from tests.media_fixtures import have_espeak, narration, pattern, slide, write_media  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed (apt-get install espeak-ng)")]


@pytest.fixture(scope="module")
def media_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("mediasearch")
    corpus = root / "corpus"
    corpus.mkdir()
    audio, truth = narration()
    photo = pattern(21, (320, 180))
    write_media(corpus / "harbour.mp4", [(slide("Ferry Schedule"), 4.5), (photo, 5.5)], audio)
    write_media(corpus / "other.webm", [(pattern(5), 3.0), (slide("Garden Club Minutes"), 3.0)], vcodec="libvpx")
    photo.crop((60, 30, 260, 160)).resize((300, 195)).save(root / "crop.png")
    idx = root / "idx"
    p = run("index", corpus, "--index", idx, "--json", check=True)
    return idx, truth, root, json.loads(p.stdout)


def _search(idx, *args):
    p = run("search", *args, "--index", idx, "--json", "-k", "3", check=True)
    return json.loads(p.stdout)["hits"]


def test_spoken_phrase_hit_covers_its_time(media_index):
    idx, truth, _, report = media_index
    assert report["failed"] == [] and report["indexed"] == 2
    t0, t1, _ = truth[1]
    hits = _search(idx, "library card telescope")
    top = hits[0]
    assert top["asset"]["id"] == "harbour" and top["unit"]["kind"] in ("speech", "segment")
    a, b = top["unit"]["time"]
    assert a <= t0 + 0.8 and b >= t1 - 0.8, (top["unit"]["time"], t0, t1)  # the unit covers the sentence


def test_onscreen_text_and_image_crop_find_the_scene(media_index):
    idx, _, root, _ = media_index
    top = _search(idx, "garden club minutes")[0]
    assert top["asset"]["id"] == "other" and top["unit"]["time"][0] == pytest.approx(3.0, abs=0.3)
    top = _search(idx, "--image", root / "crop.png")[0]
    assert top["asset"]["id"] == "harbour" and top["unit"]["kind"] == "frame"
    assert top["unit"]["time"] == pytest.approx([4.5, 10.0], abs=0.3)


def test_cli_prints_time_ranges(media_index):
    idx, *_ = media_index
    p = run("search", "ferry schedule", "--index", idx, "-k", "1", check=True)
    assert "harbour" in p.stdout and "00:00\u201300:04" in p.stdout
