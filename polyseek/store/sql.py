"""SQL text for the LanceDB store, in one place: quoting, IN lists, path globs and search filters.

Nothing outside `store/` writes SQL: callers pass `Filters` or plain values to the store's read methods.
"""

from __future__ import annotations

import datetime as _dt
from typing import Iterable

from ..errors import QueryError
from ..types import Filters


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def sql_in(column: str, values: Iterable[str]) -> str:
    vals = list(values)
    if not vals:
        return "false"
    return f"{column} IN ({', '.join(_sql_str(v) for v in vals)})"


def glob_to_like(pattern: str) -> str:
    """A path glob as a SQL LIKE pattern. `*` and `?` match any characters (including `/`).
    A relative glob matches at the end of the path, so "*.pdf" and "reports/*" work as expected."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        elif ch in "%_\\":
            out.append("\\" + ch)
        else:
            out.append(ch)
    like = "".join(out)
    if not pattern.startswith(("/", "*")):
        like = "%/" + like
    return like


def _ts(d: _dt.datetime) -> str:
    if d.tzinfo is not None:
        d = d.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return f"timestamp '{d.strftime('%Y-%m-%d %H:%M:%S')}'"


def filters_to_sql(f: Filters | None) -> str | None:
    """Translate Filters into a LanceDB (DataFusion SQL) predicate over the units table."""
    if f is None or f.is_empty():
        return None
    parts = []
    if f.type:
        parts.append(sql_in("asset_type", f.type))
    if f.kind:
        parts.append(sql_in("kind", f.kind))
    if f.path:
        parts.append(f"path LIKE {_sql_str(glob_to_like(f.path))}")
    if f.after:
        parts.append(f"created >= {_ts(f.after)}")
    if f.before:
        parts.append(f"created < {_ts(f.before)}")
    return " AND ".join(parts)


def check_filters(f: Filters) -> None:
    if f.after and f.before and f.after >= f.before:
        raise QueryError(f"--after {f.after:%Y-%m-%d} is not before --before {f.before:%Y-%m-%d}")
