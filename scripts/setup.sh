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
# The tests of ailedger.fl need Flower (the fl extra). Its pins would move typer, rich,
# fastapi, starlette, uvicorn, protobuf and packaging back for the whole suite, so the test
# setup installs flwr and Ray beside the test extra without resolving their pins, with the few
# packages they need that the test extra does not bring.
if [[ ",$extras," == *",test,"* ]]; then
    .venv/bin/python -m pip install --quiet --no-deps "flwr==1.42.0" "ray==2.55.1" \
        "grpcio>=1.70,<2" "grpcio-health-checking>=1.70,<2" "iterators==0.0.2" \
        "tomli>=2.0.1,<3" "tomli-w>=1,<2" "prompt-toolkit>=3.0.52,<4" wcwidth \
        "httpx>=0.28.1,<1" httpcore msgpack filelock
fi
