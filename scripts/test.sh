#!/usr/bin/env bash
# One command: install, start a local single-node SLURM and install a headless chromium where
# this machine can (root with apt-get), then run the tests. Extra arguments go to pytest; the
# default run leaves out tests marked slow (pyproject addopts), `.ci/run` adds them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"   # rules run `python -m stylegan.cli` and `torchrun`
if bash scripts/slurm.sh status >/dev/null 2>&1; then
    echo "test.sh: using the SLURM that is already running (left running)" >&2
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    if bash scripts/slurm.sh start; then
        export SLURM_CONF="$(bash scripts/slurm.sh conf)"
        trap 'bash scripts/slurm.sh stop' EXIT  # stop only what this run started
    else
        echo "test.sh: local SLURM could not start; its tests will say why they skip" >&2
    fi
else
    echo "test.sh: not root with apt-get, so no local SLURM; its tests will say why they skip" >&2
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    bash scripts/browser.sh >/dev/null || echo "test.sh: no headless chromium; the review page's browser tests will say why they skip" >&2
fi
python -m pytest "$@"
