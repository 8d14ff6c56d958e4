#!/usr/bin/env bash
# Installs the Rust components the build needs (rust-toolchain.toml pins the toolchain), only when missing.
set -euo pipefail
have() { rustup component list --installed 2>/dev/null | grep -q "^$1"; }
for c in rustfmt clippy; do
  have "$c" || rustup component add "$c"
done
