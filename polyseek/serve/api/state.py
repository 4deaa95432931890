"""Per-app state: the reading Index, a separate writing Index behind one lock, file guards, PDF renders.

Writes go through their own `Index` so that a long index run does not hold the reader's lock: searches keep
being answered from the last committed version, and the reader picks up new commits within a second.
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any


from .config import ServeConfig
from .errors import ApiError


class AppState:
    def __init__(self, config: ServeConfig):
        import polyseek

        self.config = config
        self.index = polyseek.open(config.index, create=False)
        self.write_lock = threading.Lock()
        self._writer = None
        self._roots_lock = threading.Lock()
        self._roots: tuple[int, frozenset[str]] = (-1, frozenset())
        self.pdf_lock = threading.Lock()  # pdfium is not thread-safe
        self._renders: OrderedDict[tuple, bytes] = OrderedDict()

    # -- writing ----------------------------------------------------------------------------------
    def writer(self):
        """The Index used for add/remove; call with `write_lock` held."""
        if self._writer is None:
            import polyseek

            self._writer = polyseek.open(self.config.index, create=False)
        return self._writer

    def warm_up(self) -> None:
        """Build the searcher and load the text encoder, so the first query is as fast as the rest."""
        self.index.searcher()
        if self.index.count_units():
            self.index.encoder("text").encode_queries(["warm up"])

    # -- reading ----------------------------------------------------------------------------------
    def asset(self, asset_id: str) -> dict[str, Any]:
        self.index.fresh()  # another process may have added or removed it since the last search
        return self.index.asset(asset_id)

    def signals(self) -> dict[str, list[str]]:
        """Signal name -> the query modalities it accepts (text, image)."""
        s = self.index.searcher()
        return {n: sorted(getattr(r, "query_modalities", ())) for n, r in s.retrievers.items()}

    def image_search(self) -> bool:
        return any("image" in m for m in self.signals().values())

    # -- files ------------------------------------------------------------------------------------
    def served_roots(self) -> frozenset[str]:
        """Real paths of the files and folders that may be served: the roots the user indexed (recorded in the
        index's manifest), the uploads folder and the --allow-root folders. Never derived from where indexed
        files resolve to: a symlinked folder inside a root would otherwise open the folder it points to."""
        self.index.fresh()
        ver = self.index.version
        with self._roots_lock:
            if self._roots[0] == ver:
                return self._roots[1]
            roots = set(self.index.indexed_roots())
            roots.add(os.path.realpath(self.config.uploads))
            roots.update(str(p) for p in self.config.allow_roots + self.config.extra_roots)
            self._roots = (ver, frozenset(roots))
            return self._roots[1]

    def safe_file(self, asset: dict[str, Any]) -> Path:
        """The asset's file, if its real path (symlinks resolved) is a regular file inside a served root."""
        if asset["type"] == "record":
            raise ApiError(404, f"asset {asset['id']!r} is a record; records have no file to show", "NotFoundError")
        real = os.path.realpath(asset["path"])
        if not any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in self.served_roots()):
            raise ApiError(403, f"the file of asset {asset['id']!r} now lies outside the indexed folders "
                                f"(a symlink?); it is not served", "ForbiddenError")
        if not os.path.isfile(real):
            raise ApiError(404, f"the file of asset {asset['id']!r} is gone from disk; re-index to update",
                           "NotFoundError")
        return Path(real)

    def render_pdf_page(self, asset: dict[str, Any], path: Path, page: int, width: int) -> bytes:
        """PNG of one PDF page, `width` pixels wide (cached by content hash)."""
        key = (asset["hash"], page, width)
        with self.pdf_lock:
            if key in self._renders:
                self._renders.move_to_end(key)
                return self._renders[key]
            img = self.index.page_render(asset["id"], page, width, path=str(path))
            buf = io.BytesIO()
            img.convert("RGB").save(buf, "PNG", optimize=False)
            data = buf.getvalue()
            self._renders[key] = data
            while len(self._renders) > self.config.render_cache:
                self._renders.popitem(last=False)
            return data

    def close(self) -> None:
        self.index.close()
        if self._writer is not None:
            self._writer.close()
