"""The `polyseek` CLI as a user runs it: real subprocesses, exit codes, JSON and TREC output, kill -9 safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import polyseek

PY = sys.executable


def run(*args, cwd=None, check=False, input=None):
    p = subprocess.run([PY, "-m", "polyseek.serve.cli.main", *map(str, args)], capture_output=True, text=True,
                       cwd=cwd, input=input, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory):
    from tests.fixtures import make_good_corpus

    root = tmp_path_factory.mktemp("cli")
    good = make_good_corpus(root / "corpus")
    idx = root / "idx"
    p = run("index", good.root, "--index", idx, "--json", check=True)
    return idx, good, json.loads(p.stdout)


def test_index_report_and_search_json(cli_index):
    idx, good, report = cli_index
    assert report["indexed"] == len(good.good) and report["failed"] == []
    p = run("search", "aphids", "--index", idx, "--json", "-k", "3", check=True)
    out = json.loads(p.stdout)
    assert set(out) - {"route"} == {"id", "took_ms", "hits", "warnings"} and out["warnings"] == []
    h = out["hits"][0]
    assert h["asset"] == {"id": "notes", "path": str(good.root / "notes.md"), "type": "text"}
    assert set(h["unit"]) == {"id", "kind", "page", "bbox", "time"} and h["rank"] == 1
    assert "bm25" in h["signals"]


def test_human_output_and_filters(cli_index):
    idx, _, _ = cli_index
    p = run("search", "receipt", "--index", idx, "--type", "pdf", check=True)
    assert "scan" in p.stdout and "[pdf]" in p.stdout and "page 1" in p.stdout
    p = run("search", "zzzqqq nothing matches", "--index", idx, "--signal", "bm25", check=True)
    assert "no results" in p.stdout


def test_batch_queries_and_trec_run(cli_index, tmp_path):
    idx, _, _ = cli_index
    q = tmp_path / "q.jsonl"
    q.write_text('{"id": "q1", "text": "aphids"}\n{"id": "q2", "text": "green tea"}\n{"id": "q3", "image": "missing.png"}\n')
    trec = tmp_path / "run.txt"
    p = run("search", "--queries", q, "--index", idx, "-k", "5", "--trec", trec, check=True)
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["q1", "q2", "q3"]
    assert lines[0]["hits"][0]["asset"]["id"] == "notes" and "error" in lines[2]
    rows = [r.split() for r in trec.read_text().splitlines()]
    assert rows[0][:4] == ["q1", "Q0", "notes", "1"] and rows[0][5] == "polyseek"
    assert {r[0] for r in rows} == {"q1", "q2"}


def test_status_lists_failures_and_exit_codes(tmp_path):
    from tests.fixtures import make_bad_corpus

    bad = make_bad_corpus(tmp_path / "bad")
    idx = tmp_path / "idx"
    p = run("index", bad.root, "--index", idx, "--max-pixels", "50000")
    assert p.returncode == 1, p.stderr  # nothing could be indexed
    assert "encrypted PDF" in p.stderr
    st = run("status", "--index", idx, "--json", check=True)
    failed = {Path(f["path"]).name: f["reason"] for f in json.loads(st.stdout)["failed"]}
    assert "truncated PNG" in failed["truncated.png"]
    (tmp_path / "bad" / "ok.md").write_text("# Fine\n\nA good file among bad ones.\n")
    p = run("index", bad.root, "--index", idx)
    assert p.returncode == 0 and "indexed 1" in p.stdout
    p = run("index", bad.root, "--index", idx, "--strict")
    assert p.returncode == 1
    assert run("index").returncode == 2
    assert run("search", "--index", idx).returncode == 2
    assert run("search", "x", "--index", tmp_path / "nope").returncode == 1
    assert run("remove", "nonexistent-id", "--index", idx).returncode == 1


def test_help_has_examples():
    for verb in ("index", "search", "status", "remove", "eval"):
        p = run(verb, "--help", check=True)
        assert "Example" in p.stdout, verb


@pytest.mark.slow
def test_kill_9_mid_run_leaves_a_consistent_index_that_the_next_run_completes(tmp_path):
    corpus = tmp_path / "many"
    corpus.mkdir()
    n = 400
    for i in range(n):
        (corpus / f"doc{i:04d}.md").write_text(f"# Note {i}\n\nThis note is about topic number {i} and word w{i}x.\n")
    idx = tmp_path / "idx"
    proc = subprocess.Popen([PY, "-m", "polyseek.serve.cli.main", "index", str(corpus), "--index", str(idx)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    versions = idx / "lance" / "assets.lance" / "_versions"
    deadline = time.time() + 300
    while time.time() < deadline:  # wait for the first committed batch, then kill mid-run
        if versions.is_dir() and len([v for v in versions.iterdir() if v.suffix == ".manifest"]) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    mid = polyseek.open(idx, create=False)
    st = mid.status()
    assert 0 < st["assets"] < n, st["assets"]  # something committed, not everything
    hits = mid.search("w0x", k=1)  # what was committed is searchable right away
    assert hits and hits[0].asset.id == "doc0000"
    p = run("index", corpus, "--index", idx, "--json", check=True)
    rep = json.loads(p.stdout)
    assert rep["indexed"] + rep["skipped"] == n
    done = polyseek.open(idx, create=False)
    assert done.status()["assets"] == n
    ids = done.store.scan_units(["id"]).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == n
    for i in (0, n // 2, n - 1):
        assert done.search(f"w{i}x", k=1)[0].asset.id == f"doc{i:04d}"


def test_demo_indexes_the_examples_and_shows_what_stands_out(tmp_path):
    """The README's first command: every example query finds its file first, and the printed `polyseek search`
    shows what that command shows (cutoff auto), not k hits padded with noise."""
    repo = Path(__file__).resolve().parents[2]
    p = run("demo", "--index", tmp_path / "idx", cwd=repo, check=True)
    shown: dict[str, list[str]] = {}
    query = None
    for line in p.stdout.splitlines():
        if line.startswith("$ polyseek search "):
            query = line.split('"')[1]
            shown[query] = []
        elif query and line[:5].strip().rstrip(".").isdigit():
            shown[query].append(line.split()[1])
    assert shown["invoice total"][0] == "invoice-2024-117"
    assert shown["maple avenue"][0] == "street-sign"
    assert shown["how do I keep my sourdough starter alive"][0] == "sourdough"
    assert shown["bike chain maintenance"] == ["bicycle-maintenance"]
    assert all(hits for hits in shown.values()), shown
