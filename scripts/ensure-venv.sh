#!/usr/bin/env bash
# Creates (or updates) the Python environment for the trainer and the reference runtime.
# Usage: ensure-venv.sh VENV STAMP — STAMP names the requirements hash it was built for.
set -euo pipefail
venv=$1
stamp=$2
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$venv/bin/python" ]; then
  echo "creating Python environment in $venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
fi
# --no-cache-dir: torch and its CUDA wheels alone are ~4 GB; a second copy in pip's cache
# is what filled CI's disk on a fresh machine.
echo "installing pinned trainer, test and AWS-tool requirements into $venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir \
  -r "$root/trainer/requirements.txt" -r "$root/trainer/requirements-test.txt" \
  -r "$root/infra/requirements.txt"
rm -f "$venv"/.opti-req-*
touch "$stamp"
