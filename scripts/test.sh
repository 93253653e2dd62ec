#!/usr/bin/env bash
# Set up everything the tests need (Python packages, npm packages) and run them:
# lint, type-check, then the whole pytest suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
if [ -f package.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
# Debian packages some tests need, installed only where apt-get runs as root and they are
# missing (a failure leaves those tests skipped, not the run broken):
# - Go and golang.org/x/mod (golang-go, golang-golang-x-mod-dev) for the Go note/tlog interop
#   tests (tests/log/test_go_note_interop.py, tests/service/test_witness_go.py);
# - the sqlite3 command-line tool for the backup step of docs/deploy.md (tests/test_deploy_docs.py);
# - Chromium for the explorer's browser tests (tests/service/test_explorer_browser.py), driven by
#   the playwright wheel of the test extra (never `playwright install`: no browser download).
need=()
command -v go >/dev/null && [ -d /usr/share/gocode/src/golang.org/x/mod/sumdb/note ] \
    || need+=(golang-go golang-golang-x-mod-dev)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 \
            && apt-get install -y -qq "${need[@]}" >/dev/null 2>&1; } \
        || echo "note: could not install ${need[*]}; the tests needing them will be skipped" >&2
fi
.venv/bin/ruff check src tests benchmarks examples
.venv/bin/ruff format --check src tests benchmarks examples
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest -n 2 "$@"
