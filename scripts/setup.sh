#!/usr/bin/env bash
# Set up everything Polyseek needs in ./.venv (idempotent; fast when nothing changed).
# torch is pinned first to the CPU build (torch==2.13.0): an unpinned torch pulls a multi-GB CUDA build.
# `setup.sh dev` adds the test extras. The stamp records the inputs' hash and what was installed, so running
# `setup.sh` after `setup.sh dev` (the two Quick start commands, in either order) installs nothing again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
start=$SECONDS
phase() { echo "setup: [$1/4] $2" >&2; }
if [ ! -x .venv/bin/python ]; then
  phase 1 "creating .venv with $PY"
  "$PY" -m venv .venv
fi
stamp=.venv/.polyseek-setup
hash="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
want=${1:-base}
have_hash="" have_level=""
if [ -f "$stamp" ]; then read -r have_hash have_level < "$stamp" || true; fi
# dev includes base: a dev install satisfies both requests.
if [ "$have_hash" = "$hash" ] && { [ "$have_level" = "$want" ] || [ "$have_level" = "dev" ]; }; then
  echo "setup: up to date (.venv has polyseek, $have_level)" >&2
  exit 0
fi
# pip's own output and progress bars on a terminal; elsewhere one line per phase, pip's warnings and errors.
if [ -t 2 ]; then quiet=(); else quiet=(-q); fi
phase 2 "upgrading pip"
.venv/bin/python -m pip install "${quiet[@]}" --upgrade pip
phase 3 "installing torch ${POLYSEEK_TORCH:-2.13.0} (CPU build)"
.venv/bin/python -m pip install "${quiet[@]}" "torch==${POLYSEEK_TORCH:-2.13.0}"
if [ "$want" = "dev" ]; then
  phase 4 "installing polyseek[dev] (editable) and its dependencies"
  .venv/bin/python -m pip install "${quiet[@]}" -e ".[dev]"
else
  phase 4 "installing polyseek (editable) and its dependencies"
  .venv/bin/python -m pip install "${quiet[@]}" -e "."
fi
.venv/bin/python -c "import polyseek" || { echo "setup: polyseek does not import; see the pip output above" >&2; exit 1; }
echo "$hash $want" > "$stamp"
echo "setup: done in $((SECONDS - start)) s (polyseek $want in .venv)" >&2
