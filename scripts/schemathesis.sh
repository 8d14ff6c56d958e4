#!/usr/bin/env bash
# Fuzzes the running API from its own /openapi.json with schemathesis: a real `opti serve`
# on a free loopback port with a fresh data directory and the shipped model; the run fails
# if any generated request gets a 5xx.
# Usage: scripts/schemathesis.sh PATH/TO/opti PYTHON_VENV
set -euo pipefail
opti=$1
venv=$2
root=$(cd "$(dirname "$0")/.." && pwd)
data=$(mktemp -d)
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log="$data/serve.log"
"$opti" serve --data-dir "$data" --port "$port" --model "${OPTI_MODEL:-$root/models/default/model.onnx}" >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$log"; echo "opti serve did not start" >&2; exit 1; }
token=$(tr -d '[:space:]' < "$data/admin.token")
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" \
  --generation-deterministic \
  --request-timeout 30
