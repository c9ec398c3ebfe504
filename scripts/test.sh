#!/usr/bin/env bash
# The test command: installs everything the tests need into ./.venv, then runs pytest.
# README's test command and .ci/run both call exactly this script. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch==2.13.0 is a CPU build (pinned in the demo extra; an open range could pull a CUDA build).
.venv/bin/python -m pip install --quiet -e '.[test,demo]'

exec .venv/bin/python -m pytest "$@"
