#!/usr/bin/env bash
# Make sure skopeo is installed: the OCI tests (tests/models_app/test_oci_skopeo.py) drive it and
# fail without it. As root, install it from the distribution's packages; otherwise say how.
set -euo pipefail

if command -v skopeo >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq skopeo >/dev/null
    exit 0
fi
echo "skopeo is missing: install it (Debian/Ubuntu: sudo apt-get install skopeo; Fedora: sudo dnf install skopeo)." >&2
exit 1
