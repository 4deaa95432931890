#!/usr/bin/env bash
# Main job: set up, index the bundled examples/ into the embedded default index (./.polyseek), search them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/polyseek demo "$@"
