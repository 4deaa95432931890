"""The project around the code: setup script, packaging metadata, the README's snippet and hints."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _fake_repo(tmp_path: Path) -> Path:
    """A copy of setup.sh + pyproject.toml with a recording stand-in for .venv/bin/python (pip is never run)."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    shutil.copy2(ROOT / "pyproject.toml", repo / "pyproject.toml")
    bin_ = repo / ".venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "python").write_text(f'#!/bin/sh\necho "$*" >> "{tmp_path}/calls.log"\n')
    (bin_ / "python").chmod(0o755)
    return repo


def _setup(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(repo / "scripts" / "setup.sh"), *args], capture_output=True, text=True,
                          timeout=60)


def _installs(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return [l for l in log.read_text().splitlines() if "install" in l] if log.exists() else []


def test_alternating_the_quick_start_commands_installs_once(tmp_path):
    repo = _fake_repo(tmp_path)
    p = _setup(repo, "dev")  # scripts/test.sh
    assert p.returncode == 0, p.stderr
    assert "setup: [4/4] installing polyseek[dev]" in p.stderr and "setup: done" in p.stderr
    first = _installs(tmp_path)
    assert any("-e .[dev]" in l for l in first)
    for args in ((), ("dev",), ()):  # demo.sh, test.sh, demo.sh
        p = _setup(repo, *args)
        assert p.returncode == 0 and "up to date" in p.stderr
    assert _installs(tmp_path) == first


def test_base_then_dev_installs_the_extras_then_nothing(tmp_path):
    repo = _fake_repo(tmp_path)
    _setup(repo)
    n = len(_installs(tmp_path))
    _setup(repo, "dev")
    assert any("-e .[dev]" in l for l in _installs(tmp_path)[n:])
    m = len(_installs(tmp_path))
    _setup(repo)
    assert len(_installs(tmp_path)) == m


def test_packaging_metadata_has_no_licence_deprecation(tmp_path):
    """setuptools warns about `license = {text = ...}` (a TOML table) since 77; the SPDX string form is silent."""
    import setuptools

    if tuple(int(x) for x in setuptools.__version__.split(".")[:2]) < (77, 0):
        pytest.skip(f"setuptools {setuptools.__version__} predates PEP 639 licence strings")
    repo = tmp_path / "pkg"
    repo.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, repo / name)
    shutil.copytree(ROOT / "polyseek", repo / "polyseek", ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import setuptools.build_meta as b, sys; out = sys.argv[1]; d = b.prepare_metadata_for_build_wheel(out); "
            "print(open(out + '/' + d + '/METADATA').read())")  # setuptools rewrites sys.argv
    (tmp_path / "meta").mkdir()
    p = subprocess.run([sys.executable, "-W", "always", "-c", code, str(tmp_path / "meta")], cwd=repo,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "License-Expression: Apache-2.0" in p.stdout
    assert not re.search(r"license.*deprecat|deprecat.*license", p.stderr, re.I | re.S), p.stderr[-3000:]


def test_readme_snippet_indexes_the_examples_without_their_readme(tmp_path):
    text = (ROOT / "README.md").read_text()
    snippet = re.search(r"```python\n(import polyseek\n.*?)```", text, re.S).group(1)
    shutil.copytree(ROOT / "examples" / "articles", tmp_path / "examples" / "articles")
    shutil.copy2(ROOT / "examples" / "README.md", tmp_path / "examples" / "README.md")
    code = snippet + "\nprint('ASSETS', sorted(a for a in idx.store.asset_index()))\n"
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr[-3000:]
    assets = p.stdout.split("ASSETS", 1)[1]
    assert "sourdough" in assets and "README" not in assets


def test_readme_says_how_to_run_the_shared_data_tests():
    text = (ROOT / "README.md").read_text()
    assert "trec-eval-reference" in text and "POLYSEEK_SHARED=" in text
