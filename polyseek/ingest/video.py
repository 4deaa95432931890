"""Video and audio files (PyAV): scenes, keyframes with OCR text and pixels, time-coded speech, fused segments.

A video is decoded once, frame by frame: small frames feed the cut detector (ingest/scenes.py) and a few
frames a second are kept only until their scene (or window, for long scenes) ends, when the one nearest its
middle becomes the scene's keyframe. Frame units go to the index run 16 at a time (`Extractor.stream`), which
encodes them and drops their pixels, so memory holds one window of frames and one part, not the file. The audio
track is decoded in a second pass, a chunk at a time, and transcribed (ingest/speech.py) in a thread beside it.

Units (all with `time` = (t0, t1) in seconds):
  frame    a keyframe per scene window: OCR text, pixels for visual vectors and local features, a thumbnail
  speech   a transcript segment, its words with their times in meta["words"]
  segment  one scene window's transcript and on-screen text together, so a query about either lands on the
           moment (CLaMR, Wang et al. 2025: frames, speech and on-screen text indexed jointly per clip)
"""

from __future__ import annotations

import base64
import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..errors import IngestError, MissingExtraError
from ..types import Extraction, Unit
from .base import ExtractContext, Extractor, extractors
from .common import file_asset, thumbnail_jpeg
from .speech import MEDIA_HINT

DETECT_FPS = 10.0  # frames a second compared by the cut detector
KEEP_FPS = 2.0  # frames a second kept as keyframe candidates until their window ends
KEYFRAME_LONG_SIDE = 960  # keyframe pixels (OCR, visual encoders, local features)
UNIT_THUMB_SIDE = 192  # per-keyframe thumbnail stored in the unit's meta (base64 JPEG)
PART_FRAMES = 16  # frame units handed to the index run at a time, which encodes them and drops their pixels
# A video's keyframe OCR runs on one core while its speech runs on the other. One thread each: on a busy 2-core
# machine, two-thread pools spent 2-3x the CPU time for the same work, their idle threads spinning (audio files
# included: 3.8 against 10-19 CPU s for six voice memos; docs/benchmarks.md, media).
OCR_THREADS = 1
SPEECH_THREADS = 1
OCR_MEMORY = 8  # keyframes whose OCR text a later keyframe showing the same picture reuses
SAME_PICTURE = 32  # grey level difference (0-255) of one pixel of 128x72 keyframe copies that makes them differ


def _av():
    try:
        import av
    except ImportError as exc:
        raise MissingExtraError(f"skipped: {MEDIA_HINT}") from exc
    return av


@dataclass
class Window:
    """A scene, or a part of a long scene, with the keyframe nearest its middle."""

    t0: float
    t1: float
    frame_t: float
    image: Any  # PIL image, long side <= KEYFRAME_LONG_SIDE
    scene: int


@dataclass
class DecodeReport:
    frames: int = 0
    seconds: float = 0.0
    error: str = ""


@dataclass
class _Pending:
    t0: float
    scene: int
    frames: list[tuple[float, Any]] = field(default_factory=list)

    def close(self, t1: float) -> Window | None:
        if not self.frames:
            return None
        mid = (self.t0 + t1) / 2
        ft, im = min(self.frames, key=lambda f: abs(f[0] - mid))
        return Window(self.t0, t1, ft, im, self.scene)


def open_media(path: Path):
    """An open PyAV container; unreadable or truncated headers (a moov atom cut off) are an IngestError."""
    av = _av()
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise IngestError(f"cannot read {path.suffix.lower() or 'media'} file: {_av_reason(exc)}") from exc


def _av_reason(exc: Exception) -> str:
    msg = getattr(exc, "strerror", None) or str(exc)
    return str(msg).split(": '")[0]


def decodable(stream) -> bool:
    """Whether FFmpeg has a decoder for the stream's codec."""
    try:
        ctx = stream.codec_context
    except (AttributeError, ValueError):
        return False
    return ctx is not None and getattr(ctx, "codec", None) is not None


def media_meta(container) -> dict[str, Any]:
    """Duration, container format, codecs, picture size, frame rate, audio rate and the container's tags."""
    meta: dict[str, Any] = {"container": container.format.name}
    if container.duration is not None:
        meta["duration"] = round(container.duration / 1_000_000, 3)
    v = container.streams.video[0] if container.streams.video else None
    a = container.streams.audio[0] if container.streams.audio else None
    if v is not None:
        meta["video_codec"] = _codec_name(v)
        if decodable(v):  # a stream without a decoder has no codec context to read these from
            meta["width"], meta["height"] = int(v.width or 0), int(v.height or 0)
            if v.average_rate:
                meta["fps"] = round(float(v.average_rate), 3)
        if "duration" not in meta and v.duration is not None and v.time_base is not None:
            meta["duration"] = round(float(v.duration * v.time_base), 3)
    if a is not None:
        meta["audio_codec"] = _codec_name(a)
        if decodable(a):
            meta["sample_rate"] = int(a.sample_rate or 0)
            meta["channels"] = int(getattr(a, "channels", 0) or 0)
        if "duration" not in meta and a.duration is not None and a.time_base is not None:
            meta["duration"] = round(float(a.duration * a.time_base), 3)
    tags = {str(k).lower(): str(val) for k, val in (container.metadata or {}).items() if str(val).strip()}
    if tags:
        meta["tags"] = tags
    return meta


def _cover_art(stream) -> bool:
    """An MP3/M4A's embedded album cover is a one-picture "video" stream; it is not a video."""
    import av

    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _codec_name(stream) -> str:
    try:
        return stream.codec_context.name
    except (AttributeError, ValueError):
        try:
            return str(stream.codec_tag or "unknown")
        except (AttributeError, ValueError):
            return "unknown"


def _shortfall(decoded: float, duration: float | None) -> bool:
    """Whether decoding ended well before the duration the container announces (a truncated file)."""
    return bool(duration) and decoded < duration - max(1.0, 0.05 * duration)


def parse_creation_time(value: str | None) -> _dt.datetime | None:
    """An ISO-8601 `creation_time` tag ("2022-03-14T19:29:29.000000Z") as an aware datetime; None if invalid."""
    if not value:
        return None
    try:
        d = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=_dt.timezone.utc)


def keyframe_windows(container, stream, *, max_window: float, report: DecodeReport,
                     threshold: float = 12.0) -> Iterator[Window]:
    """Scene windows of a video stream with their keyframes, decoded in one streaming pass.

    A window ends at a cut or after `max_window` seconds of one scene (long scenes get several keyframes).
    Decoding stops at the first corrupt packet; `report.error` then says why."""
    import av
    from av.video.reformatter import VideoReformatter

    from .scenes import SAMPLE_SIZE, CutDetector

    # One decoding thread: speech runs on the other core, and frame threads cost a fifth more CPU time for the same
    # frames (and made the pass wait for threads a busy machine did not schedule).
    stream.thread_type, stream.thread_count = "NONE", 1
    # One reformatter per target size keeps its swscale context: a new one per frame (what frame.to_ndarray(width=,
    # height=) does) cost 4x the CPU time for the same pixels. One swscale thread: its default pool of slice threads
    # made each small conversion wait for threads a busy machine did not schedule.
    small_fmt, key_fmt = VideoReformatter(), VideoReformatter()
    det = CutDetector(threshold=threshold)
    next_detect = next_keep = float("-inf")
    pending: _Pending | None = None
    scene = 0
    last_t = 0.0
    step = 1.0 / float(stream.average_rate) if stream.average_rate else 0.04
    try:
        for frame in container.decode(stream):
            t = frame.time if frame.time is not None else last_t + step
            last_t = t
            report.frames += 1
            if pending is None:
                pending = _Pending(t0=0.0 if t < 0.5 else t, scene=scene)
            if t + 1e-6 >= next_detect:
                next_detect = t + 1.0 / DETECT_FPS
                small = small_fmt.reformat(frame, width=SAMPLE_SIZE[0], height=SAMPLE_SIZE[1],
                                           format="rgb24", threads=1).to_ndarray()
                cut = det.feed(t, small)
                if cut or t - pending.t0 >= max_window:
                    w = pending.close(t)
                    if w is not None:
                        yield w
                    if cut:
                        scene += 1
                    pending = _Pending(t0=t, scene=scene)
                    next_keep = float("-inf")
            if t + 1e-6 >= next_keep:
                next_keep = t + 1.0 / KEEP_FPS
                pending.frames.append((t, _keyframe_image(frame, key_fmt)))
    except (av.error.FFmpegError, ValueError) as exc:  # corrupt or truncated data: keep what was decoded
        report.error = _av_reason(exc)
    report.seconds = last_t + step if report.frames else 0.0
    if pending is not None:
        w = pending.close(report.seconds)
        if w is not None:
            yield w


def _keyframe_image(frame, reformatter):
    w, h = frame.width, frame.height
    s = min(1.0, KEYFRAME_LONG_SIDE / max(w, h, 1))
    return reformatter.reformat(frame, width=max(1, round(w * s)) // 2 * 2, height=max(1, round(h * s)) // 2 * 2,
                                format="rgb24", threads=1).to_image()


def _frame_units(windows: Iterator[Window], ctx: ExtractContext) -> Iterator[Unit]:
    """A `frame` unit per window: OCR text, a small thumbnail, and the pixels for visual encoders and local features.
    A keyframe showing the same picture as one of the last `OCR_MEMORY` keyframes read (a long scene's next window,
    a slide shown again) reuses that one's text, and says so in meta["ocr_of"]."""
    read: list[tuple[Any, str, list]] = []  # (grey thumbnail, unit id, lines) of the keyframes last read
    engine = None
    if ctx.config.ocr:
        from .ocr import get_engine

        engine = get_engine(ctx.config.ocr_engine, threads=OCR_THREADS)
    for i, w in enumerate(windows):
        unit = Unit(id=f"{ctx.asset_id}#f{i + 1}", kind="frame", time=(round(w.t0, 3), round(w.t1, 3)),
                    bbox=(0.0, 0.0, float(w.image.width), float(w.image.height)))
        unit.meta = {"frame_time": round(w.frame_t, 3), "scene": w.scene + 1,
                     "thumbnail": base64.b64encode(thumbnail_jpeg(w.image, UNIT_THUMB_SIDE)).decode("ascii")}
        if engine is not None:
            grey = same_picture_key(w.image)
            seen = next(((uid, lines) for px, uid, lines in reversed(read) if same_picture(grey, px)), None)
            if seen is None:
                lines = engine.read(w.image, upright=True)
                read = [*read[-(OCR_MEMORY - 1):], (grey, unit.id, lines)]
            else:
                unit.meta["ocr_of"], lines = seen
            unit.text = "\n".join(l.text for l in lines)
            unit.meta["ocr"] = [l.to_dict() for l in lines]
        if ctx.want_pixels:
            unit.image = w.image
        yield unit


def same_picture_key(image):
    """A 128x72 grey copy of a keyframe, what `same_picture` compares."""
    import numpy as np

    return np.asarray(image.convert("L").resize((128, 72)), dtype=np.int16)


def same_picture(a, b) -> bool:
    """Whether two keyframes show the same picture, text included: no pixel of their grey copies differs by
    `SAME_PICTURE` or more. Compression noise stays far below it; one changed digit on a slide does not."""
    return a.shape == b.shape and int(abs(a - b).max()) < SAME_PICTURE


def _speech_units(path: Path, ctx: ExtractContext, warnings: list[str], meta: dict[str, Any]) -> list[Unit]:
    """Transcript segments of the file's first audio stream as `speech` units (none when there is no speech)."""
    from .speech import audio_chunks, get_transcriber

    container = open_media(path)
    try:
        if not container.streams.audio:
            return []
        stream = container.streams.audio[0]
        if not decodable(stream):
            warnings.append(f"audio codec {_codec_name(stream)!r} cannot be decoded; no transcript")
            return []
        transcriber = get_transcriber(ctx.config.speech_model, threads=SPEECH_THREADS)
        report: dict[str, Any] = {}
        units = []
        langs: dict[str, float] = {}
        for seg in transcriber.transcribe(audio_chunks(container, stream, report=report),
                                          language=ctx.config.speech_language):
            n = len(units) + 1
            units.append(Unit(id=f"{ctx.asset_id}#s{n}", kind="speech", text=seg.text,
                              time=(round(seg.t0, 3), round(seg.t1, 3)),
                              meta={"words": seg.words_meta(), "language": seg.language}))
            if seg.language:
                langs[seg.language] = langs.get(seg.language, 0.0) + seg.t1 - seg.t0
    finally:
        container.close()
    decoded = report.get("seconds", 0.0)
    meta["audio_decoded"] = round(decoded, 3)
    if langs:
        meta["language"] = max(langs, key=langs.get)
    if report.get("error") and decoded < 0.1:
        raise IngestError(f"audio cannot be decoded: {report['error']}")
    if report.get("error") or _shortfall(decoded, meta.get("duration")):
        warnings.append(f"audio decoding stopped at {decoded:.1f} s of {meta.get('duration', 0):.1f} s "
                        f"(truncated or corrupt)" + (f": {report['error']}" if report.get("error") else ""))
    return units


def _segment_units(frames: list[Unit], speech: list[Unit], asset_id: str) -> list[Unit]:
    """One `segment` unit per frame window that has speech in it: its on-screen text and its transcript."""
    out = []
    for f in frames:
        t0, t1 = f.time
        said = [s.text for s in speech if s.time[0] < t1 and s.time[1] > t0]
        if not said:
            continue
        text = "\n".join(p for p in (f.text, " ".join(said)) if p)
        out.append(Unit(id=f"{asset_id}#g{len(out) + 1}", kind="segment", text=text, time=f.time,
                        meta={"frame": f.id, "thumbnail": f.meta.get("thumbnail")}))
    return out


def _video_windows(path: Path, ctx: ExtractContext, meta: dict[str, Any], warnings: list[str],
                   has_audio: bool) -> Iterator[Window]:
    """The keyframe windows of the file's video stream, as they are decoded; a video that cannot be decoded at all
    fails the file unless there is audio to index."""
    container = open_media(path)
    report = DecodeReport()
    try:
        video = next(s for s in container.streams.video if not _cover_art(s))
        if not decodable(video):
            if not has_audio:
                raise IngestError(f"unsupported video codec {_codec_name(video)!r}: FFmpeg has no decoder for it")
            warnings.append(f"unsupported video codec {_codec_name(video)!r}; indexed its audio only")
            return
        yield from keyframe_windows(container, video, max_window=ctx.config.keyframe_max_gap, report=report,
                                    threshold=ctx.config.scene_threshold)
    finally:
        container.close()
    if not report.frames and report.error:
        if not has_audio:
            raise IngestError(f"video cannot be decoded: {report.error}")
        warnings.append(f"video cannot be decoded ({report.error}); indexed its audio only")
    elif report.error or _shortfall(report.seconds, meta.get("duration")):
        warnings.append(f"video decoding stopped at {report.seconds:.1f} s of {meta.get('duration', 0):.1f} s "
                        f"(truncated or corrupt)" + (f": {report.error}" if report.error else ""))


def media_parts(path: Path, ctx: ExtractContext, part_frames: int = PART_FRAMES) -> Iterator[Extraction]:
    """Everything Polyseek indexes of an audio or video file (see the module docstring), as partial Extractions of
    `part_frames` frame units while the video is decoded, then a final part with the speech and segment units."""
    from concurrent.futures import ThreadPoolExecutor

    path = Path(path)
    container = open_media(path)
    try:
        meta = media_meta(container)
        has_video = any(not _cover_art(s) for s in container.streams.video)
        has_audio = bool(container.streams.audio)
    finally:
        container.close()
    if not has_video and not has_audio:
        raise IngestError("no audio or video stream in the file")
    asset = file_asset(path, ctx.asset_id, "video" if has_video else "audio", ctx.file_hash)
    tags = meta.get("tags", {})
    asset.title = tags.get("title") or path.stem
    created = parse_creation_time(tags.get("creation_time") or tags.get("date"))
    if created is not None:
        asset.created = created
    warnings: list[str] = []
    speech_warnings: list[str] = []
    speech_meta: dict[str, Any] = {"duration": meta.get("duration")}
    seen: list[Unit] = []  # the frame units handed over, without pixels, for the segments
    part: list[Unit] = []
    scenes = 0
    # Speech runs beside the video pass, each on one core (OCR_THREADS, SPEECH_THREADS).
    with ThreadPoolExecutor(1, thread_name_prefix="polyseek-speech") as pool:
        todo = pool.submit(_speech_units, path, ctx, speech_warnings, speech_meta) \
            if has_audio and ctx.config.speech else None
        if has_video:
            for unit in _frame_units(_video_windows(path, ctx, meta, warnings, has_audio), ctx):
                if not seen and unit.image is not None:
                    asset.thumbnail = thumbnail_jpeg(unit.image, ctx.config.thumbnail_size)
                elif not seen:
                    asset.thumbnail = base64.b64decode(unit.meta["thumbnail"])
                scenes = unit.meta["scene"]
                seen.append(Unit(id=unit.id, kind=unit.kind, text=unit.text, time=unit.time,
                                 meta={"thumbnail": unit.meta["thumbnail"]}))
                part.append(unit)
                if len(part) >= part_frames:
                    yield Extraction(asset=asset, units=part, final=False)
                    part = []
        if part and todo is not None and not todo.done():
            # the index run encodes the last frames (local features, text vectors) while speech finishes
            yield Extraction(asset=asset, units=part, final=False)
            part = []
        speech = todo.result() if todo is not None else []
    warnings += speech_warnings
    meta.update({k: v for k, v in speech_meta.items() if k != "duration"})
    if seen:
        meta["scenes"] = scenes
    else:
        asset.type = "audio"
    asset.meta.update(meta)
    units = part + speech + _segment_units(seen, speech, ctx.asset_id)
    if not seen and not speech:
        if not ctx.config.speech and not has_video:
            raise MissingExtraError("skipped: speech is switched off (ingest.speech) and the file has no video")
        warnings.append("no speech and no pictures found; only the file's metadata is indexed")
    yield Extraction(asset=asset, units=units, warnings=warnings)


@extractors.register("video")
class VideoExtractor(Extractor):
    """A video file: keyframes per scene, speech, fused segments (see the module docstring)."""

    asset_type = "video"
    formats = {"mp4": ("an MP4/QuickTime video", (".mp4", ".m4v", ".mov")),
               "matroska": ("a Matroska/WebM video", (".mkv", ".webm")),
               "avi": ("an AVI video", (".avi",))}
    unit_kinds = ("frame", "speech", "segment")
    instance_kinds = ("frame",)

    def extract(self, path: Path, ctx: ExtractContext) -> Extraction:
        parts = list(self.stream(path, ctx))
        return Extraction(asset=parts[-1].asset, units=[u for p in parts for u in p.units],
                          warnings=[w for p in parts for w in p.warnings])

    def stream(self, path: Path, ctx: ExtractContext) -> Iterator[Extraction]:
        _av()
        if ctx.config.speech:
            try:
                import faster_whisper  # noqa: F401
            except ImportError as exc:
                raise MissingExtraError(f"skipped: {MEDIA_HINT}") from exc
        return media_parts(path, ctx)


@extractors.register("audio")
class AudioExtractor(VideoExtractor):
    """An audio file: time-coded transcript sentences (the same path as video, without pictures)."""

    asset_type = "audio"
    formats = {"wav": ("a WAV audio file", (".wav",)), "mp3": ("an MP3 audio file", (".mp3",)),
               "m4a": ("an M4A/AAC audio file", (".m4a", ".aac")), "flac": ("a FLAC audio file", (".flac",)),
               "ogg": ("an Ogg audio file", (".ogg", ".oga", ".opus"))}
    unit_kinds = ("speech",)
    instance_kinds = ()
