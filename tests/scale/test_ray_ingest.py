"""`polyseek index --ray`: Ray Data extracts and encodes, this process writes. Same assets, units, failures and
top-5 as a local run on a generated corpus; reruns are incremental; a kill -9 of the driver mid-run leaves an
index that opens, and a rerun completes it without duplicates. On a local Ray with 2 CPUs (slow: Ray starts)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import polyseek
from polyseek.config import IndexConfig, IngestConfig
from polyseek.errors import PolyseekError
from tests.fixtures import make_bad_corpus, make_good_corpus

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
QUERIES = ["invoice", "polycrystalline solar panel", "scanned receipt", "aphids garden", "green tea brewing",
           "crêpes brasserie", "efficiency report", "tomatoes full sun", "a cup of tea", "water jet pests"]


def contents(idx):
    store = idx.folder.store
    assets = {a: (v["path"], v["hash"]) for a, v in store.asset_index().items()}
    t = store.scan_units(["id", "asset_id", "kind", "text", "page"])
    units = sorted(zip(*(t.column(c).to_pylist() for c in ("id", "asset_id", "kind", "text", "page"))))
    failures = sorted((p, r) for p, r, _ in store.failures_list())
    return assets, units, failures


def top5(idx):
    return [[h.asset.id for h in idx.search(q, k=5)] for q in QUERIES]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray-corpus")
    make_good_corpus(root / "good")
    bad = make_bad_corpus(root / "bad")
    for name in ("pipe.txt", "loop_a.txt", "loop_b.txt", "dangling.png", "folder.pdf"):  # covered elsewhere
        p = root / "bad" / name
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    return root, bad


def test_ray_run_equals_a_local_run_and_reruns_are_incremental(local_ray, corpus, tmp_path):
    root, bad = corpus
    cfg = IndexConfig(instance=True, ingest=IngestConfig(max_image_pixels=50_000))
    local = polyseek.open(tmp_path / "local", config=cfg)
    rep_local = local.add([root])
    ray_idx = polyseek.open(tmp_path / "ray", config=cfg)
    rep_ray = ray_idx.add([root], engine="ray")
    assert rep_ray.indexed == rep_local.indexed > 5
    assert sorted(rep_ray.failed) == sorted(rep_local.failed) and len(rep_ray.failed) >= 5
    assert any("JPEG" in r for _, r in rep_ray.failed)  # reasons come back from the Ray workers
    a_local, u_local, f_local = contents(local)
    a_ray, u_ray, f_ray = contents(ray_idx)
    assert a_ray == a_local and u_ray == u_local and f_ray == f_local
    assert top5(ray_idx) == top5(local)
    # local features were extracted on the workers too: crop search works the same
    feats_local = local.folder.instance_index().unit_ids()
    assert ray_idx.folder.instance_index().unit_ids() == feats_local and feats_local
    # rerun: nothing to do; then one file changed and one removed
    again = ray_idx.add([root], engine="ray")
    assert (again.indexed, again.skipped) == (0, rep_local.indexed)
    (root / "good" / "notes.md").write_text("# Garden notes\n\nSlugs love lettuce after rain.\n", encoding="utf-8")
    (root / "good" / "cafe.txt").unlink()
    rep = ray_idx.add([root], engine="ray")
    assert (rep.indexed, rep.removed) == (1, 1)
    assert ray_idx.search("slugs lettuce", k=1)[0].asset.path.endswith("good/notes.md")
    assert ray_idx.status()["assets"] == rep_local.indexed - 1


def test_ray_engine_rejects_what_it_cannot_do(local_ray, tmp_path):
    (tmp_path / "r.jsonl").write_text('{"id": "a", "text": "alpha"}\n')
    idx = polyseek.open(tmp_path / "idx")
    with pytest.raises(PolyseekError, match="records"):
        idx.add([tmp_path / "r.jsonl"], records=True, engine="ray")
    with pytest.raises(PolyseekError, match="skip-duplicates"):
        idx.add([tmp_path], skip_duplicates=True, engine="ray")
    with pytest.raises(PolyseekError, match="choose from: local, ray"):
        idx.add([tmp_path], engine="spark")


def _asset_commits(index: Path) -> int:
    versions = index / "lance" / "assets.lance" / "_versions"  # 1: created; 2: the first batch's asset rows
    return len(list(versions.glob("*.manifest"))) if versions.exists() else 0


def test_kill_9_of_the_driver_mid_run_then_rerun_completes_without_duplicates(local_ray, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    words = "river bridge garden market station forest ocean mountain city train".split()
    for i in range(200):
        (docs / f"note{i:03d}.md").write_text(f"# Note {i}\n\n{words[i % 10]} {words[(i * 7) % 10]} number{i}\n")
    index = tmp_path / "idx"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "polyseek.serve.cli.main", "index", str(docs), "--index", str(index),
           "--no-instance", "--ray", "--ray-cpus", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while _asset_commits(index) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # wait for the first batch committed by the driver
        assert proc.poll() is None, "the run ended before it could be killed; make the corpus bigger"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        time.sleep(1)
        try:  # the Ray this driver started: its processes share the driver's session
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    idx = polyseek.open(index)  # opens after the kill
    partial = idx.status()["assets"]
    assert 0 < partial < 200
    rep = idx.add([docs], engine="ray")
    assert rep.indexed + rep.skipped == 200 and not rep.failed
    t = idx.folder.store.scan_units(["id"])
    ids = t.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 200
    assert idx.status()["assets"] == 200
    assert idx.search("number137", k=1)[0].asset.id == "note137"
