"""The Ray engine of an index run: Ray Data maps extraction over files and encoding over batches, on a local Ray
started for the run or on an existing cluster; results stream back to the one writer (indexer.Batcher), which
commits them in the same atomic batches as a local run.

The driver plans (indexer.add_files: new, changed and removed files, asset ids, content hashes); Ray sees only
`FileWork` items. Extraction runs as tasks, one file each (a CPU each); encoding runs in an actor pool whose
actors hold the models (a GPU each when the cluster has GPUs: `num_gpus=1`, the encoders on "cuda"). Each file
comes back whole, encoded, or as a failure with its reason. Files must be readable at the same paths on every
node (a shared file system), and polyseek must be installed on the nodes.
"""

from __future__ import annotations

import logging
import os
import pickle
import traceback
from typing import Any, Iterable

from ..errors import ConfigError, IngestError, PolyseekError
from ..indexer import Batcher, FileWork, encode_extractions, merge_parts

log = logging.getLogger(__name__)

ENCODE_BATCH_FILES = 16  # files per encoder call in an actor (a page-rich PDF brings many units)
LOCAL_OBJECT_STORE_MB = 512  # the object store of a Ray started for one run (files and vectors pass through it)


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError("install polyseek[ray] to index with --ray (pip install 'polyseek[ray]')") from None
    return ray


def extract_row(row: dict[str, Any]) -> dict[str, Any]:
    """Ray task: one planned file → its extraction parts (pickled), or the reason it failed."""
    from ..ingest.files import stream_file

    w: FileWork = pickle.loads(row["work"])
    try:
        parts = [w.finish(ex) for ex in stream_file(w.path, w.ctx)]
    except IngestError as e:
        return {"i": row["i"], "ok": False, "data": e.reason.encode()}
    except (OSError, ValueError, MemoryError) as e:  # a library error the extractor did not translate
        return {"i": row["i"], "ok": False, "data": f"{type(e).__name__}: {e}".encode()}
    return {"i": row["i"], "ok": True, "data": pickle.dumps(parts, protocol=5)}


class EncodeActor:
    """Ray actor holding the encoders: a batch of extracted files → encoded assets (pickled). Failed files pass
    through with their reasons."""

    def __init__(self, config, encoders: dict[str, dict], device: str | None = None, threads: int | None = None):
        from ..encode import load_encoder

        if threads:
            import torch

            torch.set_num_threads(threads)
        self.config = config
        self._enc = {}
        for role, stored in encoders.items():
            if not stored:
                continue
            enc = load_encoder(stored["spec"], device=device or config.device)
            if enc.spec != stored["spec"] or enc.dim != int(stored["dim"]):
                raise ConfigError(f"the {role} encoder on this Ray worker is {enc.spec} (dim {enc.dim}); the index "
                                  f"was built with {stored['spec']} (dim {stored['dim']})")
            self._enc[role] = enc

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        ids, oks, datas = list(batch["i"]), list(batch["ok"]), list(batch["data"])
        files = {k: pickle.loads(d) for k, (ok, d) in enumerate(zip(oks, datas)) if ok}
        flat = [(k, ex) for k, parts in files.items() for ex in parts]
        try:
            encoded = encode_extractions([ex for _, ex in flat], self._enc.__getitem__, self.config)
        except (RuntimeError, ValueError, OSError, MemoryError) as e:  # the whole encoder call failed
            reason = f"encoding failed: {type(e).__name__}: {e}"
            log.warning("%s\n%s", reason, traceback.format_exc())
            return {"i": ids, "ok": [False] * len(ids), "data": [reason.encode()] * len(ids)}
        per_file: dict[int, list] = {}
        for (k, ex), ea in zip(flat, encoded):
            per_file.setdefault(k, []).append((ex, ea))
        out = []
        for k, (ok, d) in enumerate(zip(oks, datas)):
            if not ok:
                out.append(d)
                continue
            pairs = per_file.get(k, [])
            warnings = [w for ex, _ in pairs for w in ex.warnings]
            out.append(pickle.dumps((merge_parts([ea for _, ea in pairs]), warnings), protocol=5))
        return {"i": ids, "ok": oks, "data": out}


class RayEngine:
    """Extraction and encoding on Ray Data. `address`: None or "local" starts a Ray for this run (`num_cpus`,
    default all of this machine's, and a small object store) and stops it afterwards; "auto" or "HOST:PORT" or
    "ray://HOST:PORT" joins a running cluster. `device`: the encoders' device on the actors (default "cuda" when
    the cluster has GPUs, else the index's configured device)."""

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None, object_store_mb: int | None = None,
                 encode_actors: int | None = None, batch_files: int = ENCODE_BATCH_FILES, device: str | None = None,
                 progress: bool = False):
        self.address = None if address in (None, "", "local") else address
        self.num_cpus = num_cpus
        self.object_store_mb = object_store_mb or LOCAL_OBJECT_STORE_MB
        self.encode_actors = encode_actors
        self.batch_files = batch_files
        self.device = device
        self.progress = progress

    def _connect(self, ray) -> bool:
        """Start or join Ray; True when this run started it (and so stops it)."""
        if ray.is_initialized():
            return False
        kw: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False, "include_dashboard": False,
                              "logging_level": logging.WARNING}
        if self.address:
            try:
                ray.init(address=self.address, **kw)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise PolyseekError(f"cannot join the Ray cluster at {self.address!r}: {e}") from None
        else:
            import warnings

            with warnings.catch_warnings():  # lancedb warns about fork; Ray forks only to exec its processes
                warnings.filterwarnings("ignore", message=".*fork support is experimental.*")
                ray.init(address="local", num_cpus=self.num_cpus or os.cpu_count(),
                         object_store_memory=self.object_store_mb << 20, **kw)
        return True

    def run(self, run, work: Iterable[FileWork], batch: Batcher) -> None:
        works = list(work)
        if not works:
            return
        ray = _import_ray()
        started = self._connect(ray)
        try:
            self._run(ray, run, works, batch)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, run, works: list[FileWork], batch: Batcher) -> None:
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = self.progress
        ctx.print_on_execution_start = False
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = max(1, int(resources.get("CPU", 1)))
        device = self.device or ("cuda" if gpus else None)
        # With GPUs: extraction tasks on the CPUs, one encoder actor per GPU (different resources, so Ray Data
        # keeps the two stages apart). Without: one actor per CPU, one torch thread each, and Ray Data fuses
        # extraction into the actors (no pickled pixels between processes; measured in bench_ingest).
        actors = self.encode_actors or (gpus if gpus else cpus)
        items = [{"i": i, "work": pickle.dumps(w, protocol=5)} for i, w in enumerate(works)]
        ds = ray.data.from_items(items, override_num_blocks=min(len(items), max(2 * cpus, 8)))
        ds = ds.map(extract_row, num_cpus=1)
        ds = ds.map_batches(EncodeActor, batch_size=self.batch_files, batch_format="numpy",
                            fn_constructor_kwargs={"config": run.config, "encoders": run.folder.manifest["encoders"],
                                                   "device": device, "threads": None if gpus else 1},
                            compute=ray.data.ActorPoolStrategy(size=actors), num_gpus=1 if gpus else 0, num_cpus=1)
        for row in ds.iter_rows():
            w = works[int(row["i"])]
            if not row["ok"]:
                batch.fail(str(w.path), bytes(row["data"]).decode())
                continue
            ea, warnings = pickle.loads(row["data"])
            batch.add_encoded(ea, warnings, done_path=str(w.path))
