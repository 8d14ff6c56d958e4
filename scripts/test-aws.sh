#!/usr/bin/env bash
# Runs the AWS-mode tests against a moto server (DynamoDB, S3, SageMaker, SNS emulated): starts
# `moto_server` from the venv on a free loopback port, waits for it, runs the given command
# (default: the AWS adapter's tests and the functions' tests) with AWS_ENDPOINT_URL and dummy
# credentials pointing at it, and stops the server whatever happens.
# Usage: scripts/test-aws.sh PYTHON_VENV [COMMAND...]
set -euo pipefail
venv=$1
shift
if [ $# -eq 0 ]; then
  set -- "${CARGO:-cargo}" test -p opti-store -p opti-lambda --features opti-store/aws
fi
log=$(mktemp)
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT
for _ in $(seq 1 150); do
  curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null || { cat "$log"; echo "moto_server did not start" >&2; exit 1; }
echo "moto server on 127.0.0.1:$port"
# Never real AWS: an endpoint override, dummy credentials, and no profile files.
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_EC2_METADATA_DISABLED=true
"$@"
