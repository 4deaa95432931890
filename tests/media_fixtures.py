"""Tiny real audio and video made at test time: slides drawn with Pillow, speech from espeak-ng, muxed with PyAV.

`speak(text)` needs the espeak-ng binary (tests skip with a reason where it is missing); everything else needs
only PyAV (polyseek[media]).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tests.fixtures import font

SR = 16_000
W, H = 320, 180


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str = "en-us", speed: int = 150) -> np.ndarray:
    """espeak-ng speech of `text` as 16 kHz mono float32, leading/trailing silence trimmed."""
    out = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True,
                         check=True, timeout=60).stdout
    with wave.open(io.BytesIO(out)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
    if rate != SR:  # linear resample is plenty for a test voice
        pcm = np.interp(np.arange(0, len(pcm) * SR / rate) * rate / SR, np.arange(len(pcm)), pcm).astype(np.float32)
    loud = np.flatnonzero(np.abs(pcm) > 0.01)
    return pcm[loud[0]:loud[-1] + 1] if loud.size else pcm


def slide(title: str, bg=(28, 61, 110), fg=(255, 255, 255), size=(W, H)) -> Image.Image:
    """A slide with a large title, readable by OCR."""
    im = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(im)
    d.text((14, size[1] // 2 - 20), title, fill=fg, font=font(26))
    return im


def pattern(seed: int, size=(W, H)) -> Image.Image:
    """A textured picture (random shapes) with plenty of local features, different for each seed."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 255, 3)))
    d = ImageDraw.Draw(im)
    for _ in range(60):
        x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        r = int(rng.integers(4, 26))
        col = tuple(int(v) for v in rng.integers(0, 255, 3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)((x, y, x + r, y + r), fill=col, outline=(0, 0, 0))
    return im


def mix(duration: float, speech: list[tuple[float, np.ndarray]] = (), hum: float = 0.003, seed: int = 0) -> np.ndarray:
    """`duration` seconds of low room tone with each (t0, samples) of speech placed at t0."""
    rng = np.random.default_rng(seed)
    out = (rng.standard_normal(int(duration * SR)) * hum).astype(np.float32)
    for t0, s in speech:
        i = int(t0 * SR)
        out[i:i + len(s)] += s[: max(0, len(out) - i)]
    return np.clip(out, -1, 1)


def write_media(path: Path, scenes: list[tuple[Image.Image, float]] = (), audio: np.ndarray | None = None, *,
                fps: int = 10, vcodec: str = "libx264", acodec: str | None = None, options: dict | None = None,
                fmt: str | None = None) -> Path:
    """Mux picture scenes (image, seconds) and/or mono audio (16 kHz float32) into `path` with PyAV."""
    import av

    path = Path(path)
    acodec = acodec or {".mp3": "libmp3lame", ".wav": "pcm_s16le", ".flac": "flac", ".ogg": "libopus",
                        ".webm": "libopus"}.get(path.suffix.lower(), "aac")
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        vs = as_ = None
        if scenes:
            vs = out.add_stream(vcodec, rate=fps)
            vs.width, vs.height = scenes[0][0].size
            vs.pix_fmt = "yuv420p"
        if audio is not None:
            as_ = out.add_stream(acodec, rate=48_000 if acodec == "libopus" else SR)
            as_.layout = "mono"
        if vs is not None:
            for im, secs in scenes:
                for _ in range(int(round(secs * fps))):
                    for pkt in vs.encode(av.VideoFrame.from_image(im)):
                        out.mux(pkt)
            for pkt in vs.encode():
                out.mux(pkt)
        if as_ is not None:
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            for i in range(0, len(pcm), 1024):  # PyAV resamples and re-chunks to what the encoder wants
                fr = av.AudioFrame.from_ndarray(pcm[None, i:i + 1024], format="s16", layout="mono")
                fr.sample_rate = SR
                for pkt in as_.encode(fr):
                    out.mux(pkt)
            for pkt in as_.encode():
                out.mux(pkt)
    return path


SENTENCES = ("The ferry leaves the harbour at seven every morning.",
             "Bring your library card to borrow the telescope.")


def narration(duration: float = 9.0) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Two spoken sentences over room tone, and each sentence's (t0, t1, text)."""
    parts, truth, t = [], [], 0.8
    for text in SENTENCES:
        s = speak(text)
        parts.append((t, s))
        truth.append((t, t + len(s) / SR, text))
        t += len(s) / SR + 1.2
    return mix(max(duration, t + 0.5), parts), truth


def corrupt_codec(src: Path, dst: Path) -> Path:
    """A copy of an H.264 MP4 whose codec FourCC is one FFmpeg has no decoder for."""
    dst.write_bytes(src.read_bytes().replace(b"avc1", b"zzz9").replace(b"avcC", b"zzzC"))
    return dst


def make_media_corpus(folder: Path, speech: bool = True) -> dict:
    """Good and bad media files in `folder`; returns what each must yield. Narrated files only with `speech`."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict = {"folder": folder, "good": {}, "bad": {}, "warn": {}}
    scenes = [(slide("Ferry Schedule"), 2.5), (pattern(7), 2.5), (slide("Quarterly Budget", bg=(122, 31, 52)), 2.5)]
    out["scene_cuts"] = [2.5, 5.0]
    silent = write_media(folder / "slides.mp4", scenes)
    out["good"]["slides"] = {"kind": "video", "text": "Ferry Schedule"}
    write_media(folder / "silent_bad_codec.mp4", [(slide("X"), 1.0)])
    corrupt_codec(folder / "silent_bad_codec.mp4", folder / "silent_bad_codec.mp4")
    out["bad"]["silent_bad_codec.mp4"] = "unsupported video codec"
    data = silent.read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) * 2 // 3])  # the moov atom (at the end) is cut off
    out["bad"]["truncated.mp4"] = "cannot read .mp4 file"
    (folder / "empty.mp3").write_bytes(b"")
    out["bad"]["empty.mp3"] = "empty file"
    rng = np.random.default_rng(5)
    (folder / "garbage.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + rng.bytes(6000))
    out["bad"]["garbage.mp3"] = "cannot read .mp3 file"
    write_media(folder / "hum.wav", audio=mix(5.0, hum=0.02) + 0.05 * np.sin(
        np.arange(int(5.0 * SR)) / SR * 2 * np.pi * 60).astype(np.float32))
    out["warn"]["hum.wav"] = "no speech"
    if speech:
        audio, truth = narration()
        out["speech"] = truth
        write_media(folder / "talk.mp4", [(slide("Harbour News"), 4.5), (pattern(11), 5.0)], audio,
                    options={"movflags": "faststart"})
        out["good"]["talk"] = {"kind": "video", "text": "library card"}
        write_media(folder / "voice_only.mp4", audio=audio)
        out["good"]["voice_only"] = {"kind": "audio", "text": "library card"}
        data = (folder / "talk.mp4").read_bytes()
        (folder / "talk_cut.mp4").write_bytes(data[: len(data) // 2])  # faststart: the first half still plays
        out["warn"]["talk_cut.mp4"] = "truncated"
        corrupt_codec(folder / "talk.mp4", folder / "talk_bad_codec.mp4")
        out["warn"]["talk_bad_codec.mp4"] = "unsupported video codec"
    return out
