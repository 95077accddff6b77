#!/usr/bin/env bash
# One command: install, start a local single-node SLURM where this machine can
# (root with apt), then run the tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    bash scripts/slurm.sh start || echo "local SLURM could not start; its tests will say why they skip" >&2
    trap 'bash scripts/slurm.sh stop' EXIT
fi
.venv/bin/python -m pytest "$@"
