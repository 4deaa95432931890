"""Conversations kept in the index folder (`<index>/sessions/NAME.json`), so follow-up questions can be rewritten
with what came before. Each save writes a temporary file and renames it over the old one: a crash leaves the
previous turn list, never half a file."""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_TURNS = 50  # older turns are dropped from the file; rewriting only looks at the last few


@dataclass
class Session:
    name: str
    path: Path
    turns: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def open(cls, index_path: str | os.PathLike, name: str) -> "Session":
        if not _NAME.match(name or "") or ".." in name:
            raise ConfigError(f"session name {name!r}: use 1-64 letters, digits, '_', '-' or '.', starting with a "
                              f"letter or digit")
        path = Path(index_path) / "sessions" / f"{name}.json"
        turns: list[dict[str, Any]] = []
        if path.exists():
            try:
                turns = json.loads(path.read_text(encoding="utf-8")).get("turns", [])
            except (ValueError, AttributeError) as e:
                raise ConfigError(f"session file {path} is not valid JSON ({e}); delete it to start over") from None
        return cls(name, path, turns)

    def history(self, n: int = 3) -> list[dict[str, Any]]:
        return self.turns[-n:]

    def append(self, question: str, rewritten: str, answer: dict[str, Any]) -> None:
        self.turns.append({
            "question": question, "rewritten": rewritten, "answer": answer.get("answer", ""),
            "abstained": answer.get("abstained", False),
            "citations": [{k: c.get(k) for k in ("n", "asset", "unit", "page")} for c in answer.get("citations", [])],
            "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        })
        self.turns = self.turns[-MAX_TURNS:]
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"name": self.name, "turns": self.turns}, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)
