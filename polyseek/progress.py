"""Progress that tells the truth: which phase a long job is in, how far along, how long each phase took.

On a terminal, one tqdm bar whose label names the current phase ("extract", "encode 512 units", "commit",
"keyword index"); elsewhere (logs, CI, pipes) one plain line per phase step; and a per-phase time summary at the end.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import IO, Iterator


class Progress:
    """Phase reporter for one job (`job` prefixes plain lines). Disabled, it only keeps the per-phase seconds."""

    def __init__(self, enabled: bool, job: str, total: int | None = None, unit: str = "file",
                 stream: IO[str] | None = None):
        self.enabled = enabled
        self.job = job
        self.stream = stream or sys.stderr
        self.tty = enabled and self.stream.isatty()
        self.seconds: dict[str, float] = {}
        self.done = 0
        self.total = total
        self._bar = None
        if self.tty:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=unit, file=self.stream, dynamic_ncols=True, smoothing=0.1,
                             mininterval=0.5, desc=job)

    def step(self, n: int = 1) -> None:
        """`n` more items of the job's total are done (files extracted, queries run)."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and self.total and self.total >= 20:
            every = max(1, self.total // 10)  # plain output: a line every tenth of the way
            if self.done // every != (self.done - n) // every or self.done == self.total:
                print(f"{self.job}: {self.done}/{self.total}", file=self.stream, flush=True)

    @contextmanager
    def phase(self, name: str, detail: str = "", say: bool = True) -> Iterator[None]:
        """Time one phase; on a terminal the bar shows it while it runs, elsewhere a line says it when it ends
        (unless `say` is False: per-file steps are counted, not printed)."""
        label = f"{name} {detail}".strip()
        if self._bar is not None:
            self._bar.set_description_str(f"{self.job}: {label}", refresh=True)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            s = time.perf_counter() - t0
            self.seconds[name] = self.seconds.get(name, 0.0) + s
            if self._bar is not None:
                self._bar.set_description_str(self.job, refresh=False)
            elif self.enabled and say:
                where = f" [{self.done}/{self.total}]" if self.total else ""
                print(f"{self.job}: {label} ({s:.1f} s){where}", file=self.stream, flush=True)

    def line(self, text: str) -> None:
        """A message that does not break the bar."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(f"{self.job}: {text}", file=self.stream)
        else:
            print(f"{self.job}: {text}", file=self.stream, flush=True)

    def summary(self) -> str:
        """"extract 3.1 s, encode 10.2 s, ..." in the order the phases first ran."""
        return ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
