#!/usr/bin/env bash
# `sam build` of infra/template.yaml: every function as an arm64 (provided.al2023) release
# binary, cross-compiled by cargo-lambda with zig (both from PyPI), no Docker. Installs
# what is missing (cargo-lambda + ziglang into the venv, the aarch64 Rust target), then
# builds into .aws-sam/build and prints the wall time and each artifact's size.
# All functions build in one cargo target dir (CARGO_TARGET_DIR, default target/), one
# after the other, so the dependencies are compiled once for all of them.
# Usage: scripts/sam-build.sh VENV
set -euo pipefail
venv=$1
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ ! -x "$venv/bin/cargo-lambda" ] || ! "$venv/bin/python" -c 'import ziglang' 2>/dev/null; then
  echo "installing cargo-lambda and ziglang into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    -r infra/requirements.txt -r infra/requirements-build.txt
fi
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  rustup target add aarch64-unknown-linux-gnu
fi
export PATH="$venv/bin:$PATH" SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
start=$(date +%s)
"$venv/bin/sam" build --beta-features -t infra/template.yaml --build-dir .aws-sam/build
echo "sam build: $(( $(date +%s) - start )) s"
for f in .aws-sam/build/*/bootstrap; do
  stat -c '%s %n' "$f" | awk '{ printf "%-46s %6.1f MB\n", $2, $1 / 1048576 }'
done
