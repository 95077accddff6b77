#!/usr/bin/env bash
# A headless browser for the review page's tests (tests/test_review.py): Debian's chromium
# and its chromium-driver, driven by Selenium with no browser or driver download.
#   bash scripts/browser.sh    install both (as root, with apt-get) if missing; print their paths
set -euo pipefail

PACKAGES=(chromium chromium-driver)
COMMANDS=(chromium chromedriver)

die() { echo "browser.sh: $*" >&2; exit 1; }

missing=()
for i in "${!COMMANDS[@]}"; do
    command -v "${COMMANDS[$i]}" >/dev/null || missing+=("${PACKAGES[$i]}")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "needs root to install ${missing[*]}"
    command -v apt-get >/dev/null || die "needs apt-get to install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Update the package lists only when an install from the present ones fails.
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi
command -v chromium chromedriver
