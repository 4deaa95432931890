"""Time-span judgements for audio and video: was the top hit the right clip, and the right moment in it?

A query may carry `expected` spans (`{"clip": id, "t0": s, "t1": s}`, or a list of them) in queries.jsonl.
`time_accuracy` is defined per query only when its top hit is an expected clip: 1 when the hit's unit time
overlaps an expected span widened by `tolerance` seconds each side, else 0. Its mean over the queries where it
is defined is the share of correct hits that also point at the right moment; `recall_time@1` (0 or 1 for
every spanned query) asks for both at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from ..types import Hit

TIME_TOLERANCE = 1.0  # seconds each side of an expected span
TIME_METRICS = ("time_accuracy", "recall_time@1")


@dataclass(frozen=True)
class Span:
    doc: str
    t0: float
    t1: float


def parse_spans(value, where: str) -> list[Span]:
    """`expected` from a query record: one object or a list; the doc is `clip`, `doc` or `id`."""
    items = value if isinstance(value, list) else [value]
    out = []
    for it in items:
        if not isinstance(it, Mapping):
            raise ConfigError(f"{where}: 'expected' must be an object or a list of objects with clip, t0, t1")
        doc = it.get("clip", it.get("doc", it.get("id")))
        try:
            t0, t1 = float(it["t0"]), float(it["t1"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{where}: an expected span needs numeric 't0' and 't1' (seconds)") from None
        if doc is None:
            raise ConfigError(f"{where}: an expected span needs a 'clip' (the doc id)")
        out.append(Span(str(doc), min(t0, t1), max(t0, t1)))
    return out


def overlaps(time: Sequence[float] | None, span: Span, tolerance: float = TIME_TOLERANCE) -> bool:
    """Whether a hit's [t0, t1] overlaps the span widened by `tolerance` seconds each side."""
    if time is None:
        return False
    t0, t1 = float(time[0]), float(time[1])
    return t0 <= span.t1 + tolerance and t1 >= span.t0 - tolerance


def time_metrics(spans: Mapping[str, Iterable[Span]], query_ids: Sequence[str], hits: Sequence[Sequence[Hit]],
                 tolerance: float = TIME_TOLERANCE) -> dict[str, dict[str, float]]:
    """Per query with spans: `recall_time@1` always, `time_accuracy` only when the top hit is an expected clip."""
    out: dict[str, dict[str, float]] = {}
    for qid, qhits in zip(query_ids, hits):
        sp = list(spans.get(qid, ()))
        if not sp:
            continue
        top = qhits[0] if qhits else None
        mine = [s for s in sp if top is not None and s.doc == top.asset.id]
        vals: dict[str, float] = {}
        ok = bool(mine) and any(overlaps(top.unit.time, s, tolerance) for s in mine)
        if mine:
            vals["time_accuracy"] = 1.0 if ok else 0.0
        vals["recall_time@1"] = 1.0 if ok else 0.0
        out[qid] = vals
    return out
