#!/usr/bin/env bash
# Smoke test of the zero-set-up path: SQLite and local files, a real server, curl as the client.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
work=$(mktemp -d)
port=$($BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export REGISTRY_VAR_DIR="$work/var" SECRET_KEY_FILE="$work/var/secret-key"
unset DATABASE_URL S3_BUCKET S3_ENDPOINT_URL
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

bash scripts/ensure-secret-key.sh "$SECRET_KEY_FILE"
$BIN/python manage.py migrate --noinput --verbosity 0
$BIN/python manage.py ensure_admin --url "$base" >/dev/null
token=$($BIN/python manage.py issue_token admin)
$BIN/gunicorn --config registry_project/gunicorn.conf.py --bind "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.2; done
curl -fs "$base/readyz" >/dev/null

head -c 5000000 /dev/urandom >"$work/model.zip"
id=$(curl -fsS -H "Authorization: Token $token" -F "file=@$work/model.zip" -F registered_model=smoke \
      -F version=1 -F precision=INT8 "$base/api/v1/artifacts/" | $BIN/python -c 'import json,sys; print(json.load(sys.stdin)["id"])')
count=$(curl -fsS "$base/api/v1/artifacts/?registered_model=smoke&precision=int8" | $BIN/python -c 'import json,sys; print(json.load(sys.stdin)["count"])')
[ "$count" = 1 ] || { echo "smoke: expected 1 artifact in the list, got $count"; exit 1; }
curl -fsS -o "$work/back.zip" "$base/api/v1/artifacts/$id/download/"
cmp "$work/model.zip" "$work/back.zip"
[ "$(find "$work/var/media" -type f | wc -l)" = 1 ] || { echo "smoke: expected one stored file"; exit 1; }
curl -fsS -X PUT -H "Authorization: Token $token" -H "Content-Type: application/json" -d '{"version": "1"}' \
    "$base/api/v1/registered-models/smoke/aliases/production/" >/dev/null
curl -fsS -o "$work/aliased.zip" "$base/api/v1/registered-models/smoke/aliases/production/download/?precision=INT8"
cmp "$work/model.zip" "$work/aliased.zip"
curl -fsS -X DELETE -H "Authorization: Token $token" "$base/api/v1/registered-models/smoke/?force=true"
[ "$(find "$work/var/media" -type f | wc -l)" = 0 ] || { echo "smoke: file left after delete"; exit 1; }
echo "smoke: upload, list, download (byte-identical, also through an alias) and delete work on SQLite + local files"
