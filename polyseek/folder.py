"""The index folder: what every stage that works on one index shares — manifest, config, writer lock, the store,
its derived indexes and the encoders. The index run (indexer.py), the searcher (retrieve/searcher.py) and the
`Index` facade all take this object; none of them calls back into another.

Folder layout: `polyseek.json` (config, encoders, sources, roots), `lance/` (the store), `keyword/` (BM25),
`vectors/<field>/` (ANN indexes, from `ann_min_rows` units), `instance/` (local features), `dupes/` (perceptual
hashes), `.lock` (held by writers). Everything but `polyseek.json` and `lance/` is derived and can be rebuilt.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config import IndexConfig
from .errors import ConfigError, IndexMismatchError, NotFoundError, PolyseekError
from .store.derived import DerivedIndexes
from .store.fsio import fault_point, remove_partial_files, storage_guard
from .store.lance import LanceStore

FORMAT = 1
DEFAULT_PATH = ".polyseek"


class IndexFolder:
    """One index folder opened: `manifest`, `config`, `store`, `derived` (keyword, ANN, instance, hashes) and
    `encoder(role)`. Opening an existing folder uses the config it was built with."""

    def __init__(self, path: str | os.PathLike, config: IndexConfig | dict | None = None, *, create: bool = True):
        self.path = Path(path).absolute()
        manifest_path = self.path / "polyseek.json"
        if isinstance(config, dict):
            config = IndexConfig.from_dict(config)
        if manifest_path.exists():
            try:
                self.manifest = json.loads(manifest_path.read_text())
            except ValueError as e:
                raise IndexMismatchError(f"{manifest_path} is not valid JSON ({e}); is this a Polyseek index?") from None
            stored = IndexConfig.from_dict(self.manifest["config"])
            if config is not None:
                for key in ("text_encoder", "visual_encoder"):
                    if getattr(config, key) != getattr(stored, key):
                        raise IndexMismatchError(
                            f"index {self.path} was built with {key}={getattr(stored, key)!r}, not "
                            f"{getattr(config, key)!r}; open it without that option, or index into a new folder")
                stored = IndexConfig.from_dict({**config.to_dict(), "text_encoder": stored.text_encoder,
                                                "visual_encoder": stored.visual_encoder})
            self.config = stored
        else:
            if not create:
                raise NotFoundError(f"no Polyseek index at {self.path}; create one with "
                                    f"`polyseek index FOLDER --index {self.path}`")
            self.config = config or IndexConfig()
            self.manifest = {"format": FORMAT, "config": self.config.to_dict(), "encoders": {},
                             "created": _dt.datetime.now(_dt.timezone.utc).isoformat(), "sources": {}}
        self._encoders: dict[str, Any] = {}
        self._wlock = threading.Lock()
        self.finished_removal: dict[str, str | None] = {}  # what the last writer entry completed (store/lance.py)
        with storage_guard(self.path, "creating the index"):
            if not self.manifest.get("encoders"):
                self.path.mkdir(parents=True, exist_ok=True)
                self.manifest["encoders"] = self._describe_encoders()
                self.save_manifest()
            dims = {"vec_text": int(self.manifest["encoders"]["text"]["dim"])}
            if self.manifest["encoders"].get("visual"):
                dims["vec_visual"] = int(self.manifest["encoders"]["visual"]["dim"])
            self.store = LanceStore(self.path / "lance", dims)
        self.derived = DerivedIndexes(self.path, self.store, self.config)

    # -- encoders -------------------------------------------------------------------------------
    def _describe_encoders(self) -> dict[str, Any]:
        from .encode import describe

        out = {"text": describe(self.encoder("text"))}
        if self.config.visual_encoder:
            out["visual"] = describe(self.encoder("visual"))
        return out

    def encoder(self, role: str):
        """The text or visual encoder, loaded on first use (query-time BM25 never loads a model)."""
        if role not in self._encoders:
            from .encode import load_encoder

            spec = self.config.text_encoder if role == "text" else self.config.visual_encoder
            if spec is None:
                raise ConfigError("this index has no visual encoder; re-index with --visual clip:MODEL")
            enc = load_encoder(spec, device=self.config.device)
            stored = self.manifest.get("encoders", {}).get(role)
            if stored and (stored["spec"] != enc.spec or int(stored["dim"]) != enc.dim):
                raise IndexMismatchError(f"index was built with {role} encoder {stored['spec']} (dim {stored['dim']}), "
                                         f"but {enc.spec} (dim {enc.dim}) was loaded")
            self._encoders[role] = enc
        return self._encoders[role]

    def wants_pixels(self) -> bool:
        return bool(self.config.visual_encoder) or self.config.instance

    def instance_index(self):
        """The local-feature index (`<index>/instance`), opened on first use."""
        return self.derived.instance_index()

    # -- writing --------------------------------------------------------------------------------
    def save_manifest(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.manifest["updated"] = _dt.datetime.now(_dt.timezone.utc).isoformat()
        tmp = self.path / f".polyseek.json.{os.getpid()}.tmp"
        fault_point("manifest.save", self.path)
        tmp.write_text(json.dumps(self.manifest, indent=2, default=str))
        os.replace(tmp, self.path / "polyseek.json")

    @contextmanager
    def writer(self, doing: str = "writing the index"):
        """One writer per index folder at a time (an flock, released by the OS if the process dies). A full
        disk or a read-only folder ends in one StorageError, with partial files removed (store/fsio.py).
        A removal a killed process left half done is finished first (`finished_removal` says what it held)."""
        with storage_guard(self.path, doing, self.discard_partial):
            self.path.mkdir(parents=True, exist_ok=True)
            fault_point("lock.open", self.path)
            fd = os.open(self.path / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise PolyseekError(f"another process is writing to {self.path}; wait for it to finish") from None
                with self._wlock:  # searches on this folder go on while it writes
                    self.store.refresh()
                    self.finished_removal = self.store.finish_removal()
                    if self.finished_removal and self.config.instance and \
                            self.derived.drop_features(list(self.finished_removal)):
                        self.instance_index().commit()
                    yield
            finally:
                os.close(fd)

    def discard_partial(self) -> None:
        """After a failed write: delete temp files and uncommitted data, and forget in-memory derived state so
        that it is read again from what is on disk."""
        from .store.instance_segments import discard_uncommitted

        remove_partial_files(self.path, (".polyseek.json.*.tmp", ".keyword-*", "keyword.old"))
        remove_partial_files(self.path / "vectors", (".vec_*", "*.old"))
        remove_partial_files(self.path / "dupes", (".phash.*",))
        remove_partial_files(self.store.folder, (".removing.*.tmp",))
        if (self.path / "instance").is_dir():
            discard_uncommitted(str(self.path / "instance"))
        self.derived = DerivedIndexes(self.path, self.store, self.config)
        try:
            self.manifest = json.loads((self.path / "polyseek.json").read_text())
        except (OSError, ValueError):
            pass  # keep the one in memory
        self.store.discard_partial()

    def indexed_roots(self) -> list[str]:
        """Real paths of the files and folders given to `index` (read from disk: another process may have added
        some). An index made before roots were recorded: the folders of its files, where no symlink leads there."""
        try:
            roots = json.loads((self.path / "polyseek.json").read_text()).get("roots")
        except (OSError, ValueError):
            roots = self.manifest.get("roots")
        if roots is not None:
            return list(roots)
        dirs = {os.path.dirname(v["path"]) for v in self.store.asset_index(exclude_types=["record"]).values()}
        return sorted(d for d in dirs if os.path.realpath(d) == d)

    def close(self) -> None:
        self._encoders.clear()
