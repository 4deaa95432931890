#!/usr/bin/env bash
# Set up everything Polyseek needs in ./.venv (idempotent; fast when nothing changed).
# torch is pinned first to the CPU build (torch==2.13.0): an unpinned torch pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.polyseek-setup
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1) ${1:-}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q "torch==${POLYSEEK_TORCH:-2.13.0}"
  if [ "${1:-}" = "dev" ]; then
    .venv/bin/python -m pip install -q -e ".[dev]"
  else
    .venv/bin/python -m pip install -q -e "."
  fi
  echo "$want" > "$stamp"
fi
