#!/usr/bin/env bash
# Installs what building the web UI needs, each only when missing: the wasm32 target,
# trunk 0.21 and the wasm-bindgen CLI at exactly the wasm-bindgen version in Cargo.lock
# (trunk is configured in web/Trunk.toml to use that one and never to download tools).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

if ! command -v trunk >/dev/null || ! trunk --version | grep -q ' 0\.21\.'; then
  cargo install trunk --version '^0.21' --locked
fi

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$want" ]; then
  echo "wasm-bindgen not found in Cargo.lock" >&2
  exit 1
fi
if ! grep -q "^wasm_bindgen = \"$want\"$" web/Trunk.toml; then
  echo "web/Trunk.toml [tools] wasm_bindgen must be \"$want\" (the version in Cargo.lock)" >&2
  exit 1
fi
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  # --locked first; if the lock file pins a crate the registry no longer offers, resolve afresh.
  cargo install wasm-bindgen-cli --version "=$want" --locked --force ||
    cargo install wasm-bindgen-cli --version "=$want" --force
fi
