#!/usr/bin/env bash
# Set up everything the tests need (Python packages, npm packages) and run them:
# lint, type-check, then the whole pytest suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
if [ -f package.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
# Go and golang.org/x/mod (Debian: golang-go, golang-golang-x-mod-dev) for
# tests/log/test_go_note_interop.py, which skips without them. Installed only where apt-get
# runs as root and they are missing; a failure leaves the test skipped, not the run broken.
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] \
    && ! { command -v go >/dev/null && [ -d /usr/share/gocode/src/golang.org/x/mod/sumdb/note ]; }; then
    apt-get install -y -qq golang-go golang-golang-x-mod-dev >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 \
            && apt-get install -y -qq golang-go golang-golang-x-mod-dev >/dev/null 2>&1; } \
        || echo "note: could not install Go; the Go interop tests will be skipped" >&2
fi
.venv/bin/ruff check src tests benchmarks examples
.venv/bin/ruff format --check src tests benchmarks examples
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest -n 2 "$@"
