#!/usr/bin/env bash
# Create .venv and install ailedger with the given extras (default: ml, which `ailedger demo`
# needs to train its scikit-learn model).
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh test (includes ml); "" for none
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1-ml}"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if [ -n "$extras" ]; then
    .venv/bin/python -m pip install --quiet -e ".[$extras]"
else
    .venv/bin/python -m pip install --quiet -e .
fi
