"""A new user's first minutes, as subprocesses: a search that imports no torch, usage errors before any model
loads, skipped is not failed, and failures that `remove` can clear."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PY = sys.executable
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args, cwd=None, importtime=False):
    cmd = [PY] + (["-X", "importtime"] if importtime else []) + ["-m", "polyseek.serve.cli.main", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=600)


def imported(stderr: str) -> set[str]:
    """Top-level package names from `-X importtime` output."""
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


@pytest.fixture(scope="module")
def examples_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("first")
    shutil.copytree(EXAMPLES / "pdfs", root / "examples" / "pdfs")
    shutil.copytree(EXAMPLES / "articles", root / "examples" / "articles")
    p = run("index", root / "examples", "--index", root / "idx", "--no-ocr", "--json")
    assert p.returncode == 0, p.stderr
    return root / "idx"


def test_search_imports_no_torch_and_finds_the_invoice(examples_index):
    p = run("search", "invoice total", "--index", examples_index, "--json", importtime=True)
    assert p.returncode == 0, p.stderr[-2000:]
    mods = imported(p.stderr)
    assert "onnxruntime" in mods  # the dense signal ran
    assert not mods & {"torch", "transformers", "sentence_transformers"}
    assert json.loads(p.stdout)["hits"][0]["asset"]["id"] == "invoice-2024-117"


def test_several_words_are_one_query(examples_index):
    p = run("search", "invoice", "total", "--index", examples_index, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["hits"][0]["asset"]["id"] == "invoice-2024-117"


@pytest.mark.parametrize("args, message", [
    (["search", "--image", "nope.jpg"], "nope.jpg: no such file"),
    (["search", "   "], "the query is empty"),
    (["search", ""], "the query is empty"),
    (["search", "cat", "--crop", "1,2,3,4"], "--crop needs --image"),
    (["search", "--queries", "missing.jsonl"], "no such file"),
    (["index", "/nonexistent-polyseek-path"], "no such file or folder"),
])
def test_usage_errors_exit_2_before_any_model_loads(examples_index, tmp_path, args, message):
    p = run(*args, "--index", examples_index, cwd=tmp_path, importtime=True)
    assert p.returncode == 2, (p.stdout, p.stderr[-2000:])
    assert message in p.stderr
    assert not imported(p.stderr) & {"onnxruntime", "torch", "lancedb"}


def test_unsupported_is_skipped_not_failed_and_remove_clears_failures(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "data.xyz").write_bytes(b"\x00\x01 not a format anyone knows")
    (folder / "empty.pdf").write_bytes(b"")
    (folder / "note.txt").write_text("A note about self locking nuts and washers.\n")
    idx = tmp_path / "idx"
    first = run("index", folder, "--index", idx, "--json")
    rep = json.loads(first.stdout)
    assert rep["indexed"] == 1 and rep["unsupported"] == {".xyz": 1}
    # Not a terminal: one line per phase on stderr, and the time of each phase in the report.
    for line in ("index: encode 1 units of 1 file(s)", "index: commit 1 asset(s)", "index: keyword/ANN upkeep"):
        assert line in first.stderr, first.stderr
    assert {"extract", "encode", "commit", "keyword/ANN upkeep"} <= set(rep["phases"])
    assert [f["path"] for f in rep["failed"]] == [str(folder / "empty.pdf")]
    st = json.loads(run("status", "--index", idx, "--json").stdout)
    assert st["skipped"] == [{"path": str(folder / "data.xyz"), "type": ".xyz"}]
    assert [(f["path"], f["reason"]) for f in st["failed"]] == [(str(folder / "empty.pdf"), "empty file (0 bytes)")]
    human = run("status", "--index", idx).stdout
    assert "skipped   1 file(s) of unsupported type (not retried): .xyz: 1" in human
    assert "empty.pdf: empty file (0 bytes)" in human

    second = json.loads(run("index", folder, "--index", idx, "--json").stdout)
    assert second["skipped"] == 1 and second["unsupported"] == {".xyz": 1}  # note.txt unchanged; .xyz not retried
    assert [f["path"] for f in second["failed"]] == [str(folder / "empty.pdf")]

    p = run("remove", folder / "empty.pdf", "--index", idx)
    assert p.returncode == 0, p.stderr
    p = run("remove", "/no/such/typo", "--index", idx)
    assert p.returncode == 1 and "neither an asset id nor an indexed, failed or skipped path" in p.stderr
    st = json.loads(run("status", "--index", idx, "--json").stdout)
    assert st["failed"] == [] and st["assets"] == 1


def test_records_csv_indexed_with_records_is_not_failed_or_skipped(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "parts.csv").write_text("id,title,text\nn1,Nut,self locking nut M6\nw1,Washer,flat washer M6\n")
    (folder / "readme.md").write_text("Parts catalogue.\n")
    idx = tmp_path / "idx"
    assert run("index", folder / "parts.csv", "--records", "--text-field", "title", "--text-field", "text",
               "--index", idx).returncode == 0
    rep = json.loads(run("index", folder, "--index", idx, "--json").stdout)
    assert rep["failed"] == [] and rep["unsupported"] == {}
    st = json.loads(run("status", "--index", idx, "--json").stdout)
    assert st["failed"] == [] and st["skipped"] == [] and st["assets"] == 3


@pytest.mark.slow
def test_eval_writes_runs_to_the_cache_not_the_working_directory(tmp_path):
    import os

    from tests.eval.conftest import DOCS, QRELS, QUERIES, write_jsonl

    bench = tmp_path / "tiny"
    write_jsonl(bench / "corpus.jsonl", [{"id": k, "title": t, "text": x} for k, (t, x) in DOCS.items()])
    write_jsonl(bench / "queries.jsonl", [{"id": k, "text": v} for k, v in QUERIES.items()])
    (bench / "qrels.tsv").write_text("".join(f"{q} 0 {d} {r}\n" for q, docs in QRELS.items() for d, r in docs.items()))
    work = tmp_path / "work"
    work.mkdir()
    from polyseek.config import cache_root

    (tmp_path / "cache").mkdir()
    (cache_root() / "onnx").mkdir(parents=True, exist_ok=True)
    (tmp_path / "cache" / "onnx").symlink_to(cache_root() / "onnx")  # the exported model, not exported again
    env = {**os.environ, "POLYSEEK_CACHE_DIR": str(tmp_path / "cache")}
    p = subprocess.run([PY, "-m", "polyseek.serve.cli.main", "eval", str(bench), "--json"], capture_output=True,
                       text=True, cwd=work, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "eval hybrid (1/1): ndcg@10=" in p.stderr  # progress per config (a bar per query on a terminal)
    assert list(work.iterdir()) == []
    assert json.loads(p.stdout)["run_dir"].startswith(str(tmp_path / "cache" / "runs"))


def test_dupes_reports_its_phases(examples_index):
    p = run("dupes", "--index", examples_index, "--json")
    assert p.returncode == 0, p.stderr
    assert "dupes: hash images" in p.stderr and "dupes: find near pairs" in p.stderr
    assert "groups" in json.loads(p.stdout)


def test_search_json_warns_when_text_targets_images_without_a_visual_encoder(tmp_path):
    from tests.fixtures import textured_image

    folder = tmp_path / "pics"
    folder.mkdir()
    textured_image(3).save(folder / "street.png")
    (folder / "note.md").write_text("Zebra crossings are painted white on dark asphalt.\n")
    idx = tmp_path / "idx"
    assert run("index", folder, "--index", idx, "--no-ocr").returncode == 0
    p = run("search", "zebra", "--type", "image", "--index", idx, "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["hits"] == []  # nothing is padded in
    assert len(out["warnings"]) == 1 and "no visual encoder" in out["warnings"][0]
    p = run("search", "zebra", "--type", "image", "--index", idx)
    assert "note: This index has no visual encoder" in p.stderr
    out = json.loads(run("search", "zebra", "--index", idx, "--json").stdout)
    assert [h["asset"]["id"] for h in out["hits"]] == ["note"] and out["warnings"] == []
