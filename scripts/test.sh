#!/usr/bin/env bash
# Set up everything the tests need (Python packages, npm packages) and run them:
# lint, type-check, then the whole pytest suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
if [ -f package.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
.venv/bin/ruff check src tests benchmarks examples
.venv/bin/ruff format --check src tests benchmarks examples
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest -n 2 "$@"
