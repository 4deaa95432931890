"""Faults: kills between commits, a full or read-only disk at each write point, names that are not UTF-8, symlinks
leading out of a root. Real processes are killed with SIGKILL at named fault points (store/fsio.py), real OS errors
are raised there, and a real 6 MB tmpfs fills up when the tests run as root."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import polyseek
from polyseek.config import IndexConfig, IngestConfig, SearchConfig
from polyseek.errors import DiskFullError, ReadOnlyError, StorageError

REPO = Path(__file__).resolve().parents[2]
BM25 = SearchConfig(signals=("bm25",))
CONFIG = IndexConfig(ingest=IngestConfig(ocr=False), instance=True, ann_min_rows=1)


def word(i: int) -> str:
    return "zqx" + "".join(chr(ord("a") + int(d)) for d in f"{i:03d}") + "vw"  # zqxaabvw: one token, unstemmed


def make_texts(folder: Path, n: int, start: int = 0, sub: str = "") -> dict[str, str]:
    """n text files, each with a word no other file has; asset id -> word."""
    out = {}
    (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        stem = f"{sub}-t{i:03d}" if sub else f"t{i:03d}"  # unique stems: the asset id is the stem
        (folder / sub / f"{stem}.txt").write_text(f"note {i} mentions {word(i)} and the harbour\n")
        out[stem] = word(i)
    return out


def found_by_word(path: Path) -> dict[str, bool]:
    """For every asset with a committed asset row: is it the top BM25 hit for its unique word (a fresh reader)?"""
    idx = polyseek.open(path, create=False)
    words = {aid: v["path"] for aid, v in idx.store.asset_index().items()}
    out = {}
    for aid, p in words.items():
        text = Path(p).read_text() if p.endswith(".txt") and os.path.exists(p) else None
        if text is None:
            continue
        w = text.split()[3]
        hits = idx.search(w, k=1, config=BM25)
        out[aid] = bool(hits) and hits[0].asset.id == aid
    idx.close()
    return out


def run_killed(code: str, fault: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "POLYSEEK_FAULT": fault, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture()
def copy(tmp_path):
    """An index of 12 text files (two folders) and one image, with an ANN index (ann_min_rows=1)."""
    root = tmp_path / "docs"
    words = make_texts(root, 6) | make_texts(root, 6, start=6, sub="sub")
    Image.fromarray((np.random.default_rng(0).random((120, 160, 3)) * 255).astype("uint8")).save(root / "pic.png")
    idx = polyseek.open(tmp_path / "idx", CONFIG)
    idx.add([root])
    idx.close()
    return tmp_path, words


# ---------------------------------------------------------------------------------------------- kills

REMOVE = "import polyseek, sys; polyseek.open(sys.argv[1]).remove([sys.argv[2]])"
ADD = "import polyseek, sys; polyseek.open(sys.argv[1]).add([sys.argv[2]])"


def test_kill_between_the_two_deletes_of_a_remove(copy):
    """SIGKILL after the asset rows are deleted and before the units are: every file the index still lists is
    found by its unique word, and the next writer finishes the removal."""
    tmp, words = copy
    p = run_killed(REMOVE, "store.between_deletes:kill", str(tmp / "idx"), str(tmp / "docs" / "sub"))
    assert p.returncode == -9, p.stderr[-2000:]
    found = found_by_word(tmp / "idx")
    assert found and all(found.values()), found  # no asset row without its units
    assert not any(a.startswith("sub-") for a in found)
    idx = polyseek.open(tmp / "idx")
    assert idx.store.pending_removal()  # journalled
    (tmp / "more").mkdir()
    (tmp / "more" / "new.txt").write_text("a new note\n")
    idx.add([tmp / "more"])  # any writer completes the interrupted removal first
    assert not idx.store.pending_removal()
    assert idx.store.units.count_rows("asset_id LIKE 'sub-%'") == 0
    assert not idx.search(words["sub-t006"], k=3, config=BM25)
    assert idx.search(words["t000"], k=1, config=BM25)[0].asset.id == "t000"


@pytest.mark.parametrize("fault", ["store.units:kill", "store.assets:kill", "instance.commit:kill",
                                   "keyword.save:kill", "manifest.save:kill"])
def test_kill_during_an_index_run_loses_nothing(copy, fault):
    """SIGKILL at each commit point of an index run: before any rerun every committed asset is found by its
    word; the rerun indexes the rest, once."""
    tmp, words = copy
    new = make_texts(tmp / "docs", 5, start=20, sub="new")
    p = run_killed(ADD, fault, str(tmp / "idx"), str(tmp / "docs"))
    assert p.returncode == -9, p.stderr[-2000:]
    found = found_by_word(tmp / "idx")
    assert all(found.values()), found
    idx = polyseek.open(tmp / "idx")
    idx.add([tmp / "docs"])
    n_files = len(words) + len(new) + 1
    assert len(idx.store.asset_index()) == n_files
    t = idx.store.scan_units(["id"])
    ids = t.column("id").to_pylist()
    assert len(ids) == len(set(ids))  # no duplicated unit
    for aid, w in {**words, **new}.items():
        assert idx.search(w, k=1, config=BM25)[0].asset.id == aid


def test_assets_without_units_are_reindexed(copy):
    """An index damaged by an older version's killed remove (asset rows kept, units gone) heals on the next run
    instead of skipping those files as unchanged."""
    tmp, words = copy
    idx = polyseek.open(tmp / "idx")
    idx.store.units.delete("asset_id = 't001'")
    assert idx.store.assets_without_units() == {"t001"}
    report = idx.add([tmp / "docs"])
    assert report.indexed == 1
    assert idx.search(words["t001"], k=1, config=BM25)[0].asset.id == "t001"
    assert not idx.store.assets_without_units()


# ---------------------------------------------------------------------------------------------- bad names

def test_a_file_name_that_is_not_utf8_is_recorded_and_the_run_goes_on(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    bad = os.fsdecode(b"caf\xe9 menu.txt")  # Latin-1 name: surrogate-escaped by Python
    (root / bad).write_text("the bad name file\n")
    (root / "good.txt").write_text("the good file mentions zqxgoodvw\n")
    idx = polyseek.open(tmp_path / "idx", IndexConfig(ingest=IngestConfig(ocr=False), instance=False))
    for _ in range(2):  # and the rerun does not crash either
        report = idx.add([root])
        assert [(os.path.basename(p), r) for p, r in report.failed] == \
            [("caf\\xe9 menu.txt", "the file name is not valid UTF-8 (shown here with \\x escapes); rename the file "
                                   "to index it")]
    assert idx.search("zqxgoodvw", k=1, config=BM25)[0].asset.id == "good"
    assert [os.path.basename(f["path"]) for f in idx.status()["failed"]] == ["caf\\xe9 menu.txt"]
    (root / bad).rename(root / "cafe menu.txt")  # fixed by the user: indexed, and no longer listed as failed
    report = idx.add([root])
    assert report.indexed == 1 and not idx.status()["failed"]


# ---------------------------------------------------------------------------------------------- symlinks

def test_symlinks_out_of_the_root_are_not_followed(tmp_path):
    root, outside = tmp_path / "docs", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "private.txt").write_text("a private zqxprivvw note\n")
    (root / "inside.txt").write_text("an inside note\n")
    os.symlink(outside, root / "linkdir")
    os.symlink(outside / "private.txt", root / "link.txt")
    os.symlink(root / "inside.txt", root / "alias.txt")  # stays inside: followed
    idx = polyseek.open(tmp_path / "idx", IndexConfig(ingest=IngestConfig(ocr=False), instance=False))
    report = idx.add([root])
    assert sorted(os.path.basename(p) for p, _ in report.links) == ["link.txt", "linkdir"]
    assert all("outside the indexed folder" in r for _, r in report.links)
    assert sorted(idx.store.asset_index()) == ["alias", "inside"]
    assert not idx.search("zqxprivvw", k=1, config=BM25)
    assert idx.indexed_roots() == [os.path.realpath(root)]
    assert "symlink(s) out of the indexed folders not followed" in report.summary()


# ---------------------------------------------------------------------------------------------- full / read-only

LEFTOVERS = ("**/*.tmp", "**/*.tmp-*", "**/.keyword-*", "**/.vec_*", "**/.phash.*", "**/keyword.old", "**/.part-*")


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for pat in LEFTOVERS for p in folder.glob(pat))


WRITE_POINTS = [("lock.open", "add"), ("store.units", "add"), ("store.assets", "add"), ("instance.commit", "add"),
                ("keyword.save", "add"), ("vectors.save", "add"), ("manifest.save", "add"),
                ("store.journal", "remove"), ("store.between_deletes", "remove")]


@pytest.mark.parametrize("point,op,code", [(p, o, "ENOSPC") for p, o in WRITE_POINTS] + [
    ("lock.open", "add", "EROFS"), ("store.units", "add", "EACCES"), ("keyword.save", "add", "EROFS"),
    ("store.between_deletes", "remove", "EROFS"), ("store.assets", "add", "EDQUOT")])
def test_write_failure_at_each_write_point(copy, monkeypatch, point, op, code):
    """An OS write error at each write point: one StorageError naming the folder, no partial files, the previous
    state searchable, and the same command works once the disk is writable again."""
    tmp, words = copy
    make_texts(tmp / "docs", 2, start=30, sub="new")
    idx = polyseek.open(tmp / "idx")
    monkeypatch.setenv("POLYSEEK_FAULT", f"{point}:{code}")
    run = (lambda: idx.add([tmp / "docs"])) if op == "add" else (lambda: idx.remove([str(tmp / "docs" / "sub")]))
    expected = DiskFullError if code in ("ENOSPC", "EDQUOT") else ReadOnlyError
    with pytest.raises(expected) as ei:
        run()
    assert str(tmp / "idx") in str(ei.value) and "\n" not in str(ei.value)
    assert ei.value.errno == getattr(errno, code)
    monkeypatch.delenv("POLYSEEK_FAULT")
    assert leftovers(tmp / "idx") == []
    found = found_by_word(tmp / "idx")
    assert all(found.values()) and all(a in found for a in words if op == "add" or not a.startswith("sub-")), found
    run()  # the disk is writable again: the same call succeeds, on the same Index object
    idx2 = polyseek.open(tmp / "idx")
    if op == "add":
        assert idx2.search(word(31), k=1, config=BM25)[0].asset.id == "new-t031"
    else:
        assert not any(a.startswith("sub-") for a in idx2.store.asset_index())
        assert idx2.store.units.count_rows("asset_id LIKE 'sub-%'") == 0


def test_storage_error_is_not_an_oserror():
    """Per-file handlers catch OSError (a bad file); a full disk must never be taken for one."""
    assert not issubclass(StorageError, OSError)


# ---------------------------------------------------------------------------------------------- real tmpfs

def _mount_tmpfs(folder: Path, size: str = "6m"):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (run as root to test a real full disk)")
    folder.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.decode().strip()}")


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("POLYSEEK_FAULT", None)
    return subprocess.run([sys.executable, "-m", "polyseek.serve.cli.main", *args], capture_output=True, text=True,
                          timeout=900, env=env)


@pytest.mark.slow
def test_full_tmpfs_ends_in_one_line_and_the_index_still_answers(tmp_path):
    """Done-when of issue 16: on a 6 MB tmpfs holding an index of three text files, indexing 150 photos ends in one
    line (no traceback); the index still opens and answers its old queries. Then read-only: the same."""
    mnt = tmp_path / "mnt"
    _mount_tmpfs(mnt)
    try:
        texts, photos = tmp_path / "texts", tmp_path / "photos"
        texts.mkdir()
        photos.mkdir()
        for w in ("alpha", "beta", "gamma"):
            (texts / f"{w}.txt").write_text(f"the {w} document mentions zqx{w}vw here\n")
        rng = np.random.default_rng(0)
        for i in range(150):
            Image.fromarray((rng.random((240, 320, 3)) * 255).astype("uint8")).save(photos / f"p{i:03d}.jpg",
                                                                                       quality=85)
        idx = str(mnt / "idx")
        assert _cli("index", str(texts), "--index", idx, "--no-ocr").returncode == 0
        p = _cli("index", str(photos), "--index", idx, "--no-ocr")
        lines = [ln for ln in p.stderr.splitlines() if ln.strip() and not ln.startswith(("Loading weights", "index: "))]  # progress lines aside
        assert p.returncode == 1 and len(lines) == 1, p.stderr[-3000:]
        assert lines[0].startswith("error: the disk holding") and "is full" in lines[0], lines
        assert "Traceback" not in p.stderr
        assert leftovers(mnt / "idx") == []
        for w in ("alpha", "beta", "gamma"):
            s = _cli("search", f"zqx{w}vw", "--index", idx, "--json", "-k", "1")
            assert s.returncode == 0 and f"{w}.txt" in s.stdout, s.stderr[-2000:]
        # Read-only: index and remove refuse in one line; search still works.
        assert subprocess.run(["mount", "-o", "remount,ro", str(mnt)]).returncode == 0
        for args in (("index", str(texts)), ("remove", str(texts / "alpha.txt"))):
            p = _cli(*args, "--index", idx)
            lines = [ln for ln in p.stderr.splitlines() if ln.strip() and not ln.startswith(("Loading weights", "index: "))]  # progress lines aside
            assert p.returncode == 1 and len(lines) == 1 and "cannot write to" in lines[0], p.stderr[-3000:]
        s = _cli("search", "zqxbetavw", "--index", idx, "--json", "-k", "1")
        assert s.returncode == 0 and "beta.txt" in s.stdout, s.stderr[-2000:]
    finally:
        subprocess.run(["umount", str(mnt)])


@pytest.mark.parametrize("code", ["EROFS", "ENOSPC"])
def test_duplicate_finding_works_when_its_cache_cannot_be_written(copy, monkeypatch, code):
    """The pHash cache is the one write a reader makes: on a read-only or full disk it is skipped, not fatal."""
    tmp, _ = copy
    idx = polyseek.open(tmp / "idx")
    monkeypatch.setenv("POLYSEEK_FAULT", f"dupes.save:{code}")
    report = idx.dupes()
    assert report is not None
    assert not (tmp / "idx" / "dupes" / "phash.npz").exists() and leftovers(tmp / "idx") == []
    monkeypatch.delenv("POLYSEEK_FAULT")
    idx.dupes()
    assert (tmp / "idx" / "dupes" / "phash.npz").exists()
