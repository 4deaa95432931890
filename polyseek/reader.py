"""The read side of an index, for the HTTP API, the CLI and the agent: assets, their units, page renders,
thumbnails, failures, status, and crop search with its full explanation. No SQL and no store internals leak out:
callers get plain dicts and PIL images.
"""

from __future__ import annotations

import json
from typing import Any, Sequence


from .config import SearchConfig
from .errors import NotFoundError, PolyseekError, QueryError
from .types import Query

UNIT_FIELDS = ["id", "kind", "text", "page", "bbox", "t0", "t1", "char_start", "char_end", "meta"]


class Reader:
    """Read methods over one index folder (`folder.IndexFolder`) and its searchers (`retrieve.searcher`)."""

    def __init__(self, folder, searchers):
        self.folder = folder
        self.searchers = searchers

    @property
    def path(self):
        return self.folder.path

    @property
    def config(self):
        return self.folder.config

    @property
    def store(self):
        return self.folder.store

    @property
    def version(self) -> int:
        """The store version this reader last saw (it moves with every commit)."""
        return self.store.version

    def count_units(self) -> int:
        return self.store.count_units()

    def searcher(self):
        """The query pipeline at the store's current version (rebuilt when the store moves)."""
        return self.searchers.get()

    def fresh(self) -> None:
        """See other processes' commits now (at most once a second), without building a searcher."""
        self.searchers.fresh()

    def indexed_roots(self) -> list[str]:
        """Real paths of the files and folders given to `index`: what a server may serve files from."""
        return self.folder.indexed_roots()

    # -- assets and units -------------------------------------------------------------------------
    def asset(self, asset_id: str) -> dict[str, Any]:
        """The asset's stored row (path, type, hash, size, mtime, created, title, meta, thumbnail)."""
        row = self.store.get_asset(asset_id)
        if row is None:
            raise NotFoundError(f"no asset {asset_id!r} in {self.path}")
        return row

    def assets(self, *, types: Sequence[str] | None = None, paths: Sequence[str] | None = None) -> dict[str, dict]:
        """asset id -> {path, source, type, hash, size, mtime} (no thumbnails), optionally by type or path."""
        return self.store.asset_index(types=types, paths=paths)

    def units(self, asset_id: str, fields: Sequence[str] = UNIT_FIELDS) -> list[dict[str, Any]]:
        """The asset's units in reading order (page, then the page or image unit first, then id), `meta` decoded."""
        self.asset(asset_id)
        out = []
        for r in self.store.units_of_asset(asset_id, list(fields)):
            if "meta" in r:
                try:
                    r["meta"] = json.loads(r["meta"]) if r["meta"] else {}
                except ValueError:
                    r["meta"] = {}
            out.append(r)
        out.sort(key=lambda u: (u.get("page") or 0, {"page": 0, "image": 0}.get(u.get("kind"), 1), u["id"]))
        return out

    def unit_rows(self, *, asset_ids: Sequence[str] | None = None, unit_ids: Sequence[str] | None = None,
                  columns: Sequence[str] = UNIT_FIELDS) -> list[dict[str, Any]]:
        """Stored rows (raw columns, `meta` as stored) of the units of `asset_ids`, or of the units `unit_ids`;
        for readers that work on many units at once (the agent's evidence)."""
        if unit_ids is not None:
            return list(self.store.get_units(list(unit_ids), list(columns)).values())
        return self.store.scan_units(list(columns), asset_ids=list(asset_ids or [])).to_pylist()

    def page_sizes(self, asset_ids: Sequence[str]) -> dict[tuple[str, int | None], list[float]]:
        """(asset id, page or None) -> [width, height] of the coordinate space boxes of that page or image use."""
        if not asset_ids:
            return {}
        t = self.store.scan_units(["asset_id", "kind", "page", "bbox"], kinds=["page", "image"],
                                  asset_ids=sorted(set(asset_ids)))
        out = {}
        for r in t.to_pylist():
            if r["bbox"]:
                out[(r["asset_id"], r["page"] if r["kind"] == "page" else None)] = [float(r["bbox"][2]),
                                                                                  float(r["bbox"][3])]
        return out

    def page_render(self, asset_id: str, page: int, width: int, path: str | None = None):
        """One PDF page rendered `width` pixels wide, as a PIL image (`path`: the file, when the caller checked
        it already; default the asset's path)."""
        import pypdfium2 as pdfium

        asset = self.asset(asset_id)
        if asset["type"] != "pdf":
            raise QueryError(f"pages are for PDFs; asset {asset_id!r} is {asset['type']}")
        try:
            doc = pdfium.PdfDocument(str(path or asset["path"]))
        except pdfium.PdfiumError as e:
            raise PolyseekError(f"cannot open {asset['path']}: {e}") from None
        try:
            n = len(doc)
            if not 1 <= page <= n:
                raise NotFoundError(f"page {page} does not exist; {asset_id!r} has {n} page(s)")
            p = doc[page - 1]
            img = p.render(scale=width / (p.get_width() or 1.0)).to_pil().convert("RGB")
            p.close()
            return img
        finally:
            doc.close()

    def failures(self) -> list[dict[str, str]]:
        """Files that could not be indexed, with the reason and when."""
        return [{"path": p, "reason": r, "at": str(at)} for p, r, at in self.store.failures_list()]

    def skipped(self) -> list[dict[str, str]]:
        """Files skipped because no extractor takes their type (never retried), with the type."""
        return [{"path": p, "type": t} for p, t in self.folder.manifest.get("skipped", {}).items()]

    def suggestions(self, n: int = 4, sample: int = 5000) -> list[str]:
        """Searches to suggest, from the text of up to `sample` units (retrieve/suggest.py)."""
        from .retrieve.landing import suggest_queries

        t = self.store.scan_units(["asset_id", "text"], limit=sample)
        return suggest_queries(zip(t.column("asset_id").to_pylist(), t.column("text").to_pylist()), n)

    # -- search explanations ----------------------------------------------------------------------
    def crop_search(self, query: Query, config: SearchConfig | None = None):
        """Multi-scale crop search with its explanation (retrieve/crops.py `CropSearch`: hits, the crops tried,
        the text read from the query image, the crops that could not be searched)."""
        from .retrieve.crops import search_crops

        return search_crops(self, query, config)

    def similar(self, asset_id: str, *, k: int = 10, filters=None, config: SearchConfig | None = None) -> list:
        """More like this: assets like `asset_id` by every signal it has (retrieve/similar.py), itself excluded."""
        from .retrieve.similar import similar_hits

        if k < 1:
            raise QueryError("k must be at least 1")
        return similar_hits(self.searcher(), self.asset(asset_id), k=k, filters=filters, config=config)

    def suggest(self, query: Query, hits: Sequence) -> list[dict]:
        """3-5 refined queries that each isolate a cluster of `hits` (retrieve/suggest.py, CroQS)."""
        from .retrieve.suggest import suggest_for_hits

        return suggest_for_hits(self.searcher(), query, list(hits))

    # -- status -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        self.store.refresh()
        assets = self.store.asset_index()
        by_type: dict[str, int] = {}
        for v in assets.values():
            by_type[v["type"]] = by_type.get(v["type"], 0) + 1
        n_units = self.store.count_units()
        kinds = self.store.unit_kinds()
        size = sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())
        return {
            "path": str(self.path), "assets": len(assets), "assets_by_type": by_type,
            "units": n_units, "units_by_kind": kinds,
            "encoders": self.folder.manifest.get("encoders", {}), "config": self.config.to_dict(),
            "store_version": self.store.version, "vector_indexes": self.folder.derived.vector_index_info(),
            "failed": self.failures(), "skipped": self.skipped(), "bytes_on_disk": size, "updated": self.folder.manifest.get("updated"),
        }
