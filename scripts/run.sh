#!/usr/bin/env bash
# Serve the registry: gunicorn, the background-job worker (Geti imports) and the webhook sender side by side.
# Stopping the server (Ctrl+C, SIGTERM) stops the worker too, and the other way round.
# Usage: scripts/run.sh HOST:PORT   (BIN names the venv's bin directory, default .venv/bin)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
BIND=${1:-127.0.0.1:8000}

pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Fail imports whose worker died (silent for GETI_IMPORT_STALE_SECONDS); safe beside other workers.
"$BIN/python" manage.py fail_stale_geti_imports
"$BIN/python" manage.py db_worker --no-reload &
pids+=($!)
"$BIN/python" manage.py deliver_webhooks --loop &
pids+=($!)
"$BIN/gunicorn" --config registry_project/gunicorn.conf.py --bind "$BIND" &
pids+=($!)

# Return when either stops; the EXIT trap then stops the other.
wait -n || true
