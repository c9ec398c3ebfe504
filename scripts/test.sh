#!/usr/bin/env bash
# The test command: installs everything the tests need into ./.venv, then runs pytest.
# README's test command and .ci/run both call exactly this script. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# The HTML report is checked in a real headless browser: Debian's chromium and its driver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "note: chromium/chromedriver missing and cannot be installed here; browser tests will skip" >&2
    fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# pip's output goes to a log, shown only if the install fails.
log=$(mktemp)
install() {
    if ! .venv/bin/python -m pip install --quiet "$@" >"$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
}
install --upgrade pip
# torch==2.13.0 is a CPU build (pinned in the demo extra; an open range could pull a CUDA build).
install -e '.[test,demo,transformers,lightning,keras,mlflow]'
rm -f "$log"

# Lint and types first: they take seconds and fail fast.
.venv/bin/ruff check footprint tests scripts benchmarks
.venv/bin/ruff format --check --quiet footprint tests scripts benchmarks
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
