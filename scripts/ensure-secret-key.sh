#!/usr/bin/env bash
# Create the file a SECRET_KEY is kept in (`make run`: var/secret-key; the Docker image: its
# /data volume) unless it exists, readable by its owner only. Usage: scripts/ensure-secret-key.sh FILE
set -euo pipefail
file=$1
if [ ! -s "$file" ]; then
    mkdir -p "$(dirname "$file")"
    (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(50))' >"$file")
fi
