#!/usr/bin/env bash
# Find the Chromium the browser tests drive, and get one where there is none, so `make test` runs
# them on a fresh machine instead of failing (they are never skipped).
#
# Looks, in order, for $CHROMIUM_PATH, Debian's `chromium`, Google Chrome, and the Chromium of the
# installed Playwright (~/.cache/ms-playwright). With none: as root with apt-get, installs Debian's
# `chromium`; otherwise `python -m playwright install chromium`. When that fails it stops with one
# line saying what to install.
#
# Usage: scripts/ensure-browser.sh [--find] [--dry-run]
#   (no flag)  find or install, then say which browser the tests use
#   --find     only look; print the browser's path, or the one line and exit 1 (the tests' fixture)
#   --dry-run  say which install command would run instead of running it
# BIN names the venv's bin directory (default .venv/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
mode=ensure
dry_run=""
for arg in "$@"; do
    case $arg in
        --find) mode=find ;;
        --dry-run) dry_run=1 ;;
        *) echo "usage: $0 [--find] [--dry-run]" >&2; exit 2 ;;
    esac
done

find_browser() {
    if [ -n "${CHROMIUM_PATH:-}" ]; then
        # A browser named explicitly is the only one to use.
        if [ -x "$CHROMIUM_PATH" ]; then echo "$CHROMIUM_PATH"; fi
        return 0
    fi
    local name path
    for name in chromium google-chrome google-chrome-stable chrome; do
        path=$(command -v "$name" 2>/dev/null) && { echo "$path"; return; }
    done
    # Playwright knows where its own Chromium lives (and which build it expects).
    path=$("$BIN/python" -c 'from playwright.sync_api import sync_playwright
with sync_playwright() as p: print(p.chromium.executable_path)' 2>/dev/null) || return 0
    if [ -x "$path" ]; then echo "$path"; fi
}

missing="no Chromium for the browser tests: install Debian's chromium (apt-get install chromium, as root)"
missing+=" or Playwright's ($BIN/python -m playwright install chromium), or set CHROMIUM_PATH"

browser=$(find_browser)
if [ -z "$browser" ] && [ "$mode" = ensure ]; then
    if [ -n "${CHROMIUM_PATH:-}" ]; then
        install=()  # the named browser is missing: installing another would not be used
    elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        install=(sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium")
    else
        install=("$BIN/python" -m playwright install chromium)
    fi
    if [ ${#install[@]} -gt 0 ]; then
        echo "No Chromium found for the browser tests; installing one: ${install[*]}" >&2
        if [ -n "$dry_run" ]; then
            exit 0
        fi
        "${install[@]}" >&2 && browser=$(find_browser)
    fi
fi

if [ -z "$browser" ]; then
    echo "$missing${CHROMIUM_PATH:+ (CHROMIUM_PATH=$CHROMIUM_PATH is not an executable)}" >&2
    exit 1
fi
if [ "$mode" = find ]; then
    echo "$browser"
else
    echo "Browser tests use $browser"
fi
