#!/usr/bin/env bash
# Build everything the demo and the tests need: the Envoy filter
# (target/wasm32-wasip1/release/mtls_authz_filter.wasm), the browser playground
# (target/playground) and the `mtls-authz` CLI, which embeds the playground.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/setup.sh
cargo build --release -p mtls-authz-filter --target wasm32-wasip1
# Envoy calls every callback a module exports on every request; drop the ones
# the filter leaves to the SDK's defaults (a few thousand instructions each).
python3 filter/trim-wasm.py target/wasm32-wasip1/release/mtls_authz_filter.wasm
# The playground page before the CLI, which embeds it (cli/build.rs).
bash scripts/build-playground.sh
cargo build --release -p mtls-authz-cli
ls -l target/wasm32-wasip1/release/mtls_authz_filter.wasm target/release/mtls-authz >&2
