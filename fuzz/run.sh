#!/usr/bin/env bash
# Run every cargo-fuzz target for a bounded time and summarise.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, every target)
#
# CI runs `fuzz/run.sh 5` as a smoke run; `fuzz/run.sh 600` is the longer
# session (see fuzz/README.md). Installs cargo-fuzz when it is missing, builds
# all targets once, then runs each with libFuzzer's -max_total_time, reading
# the committed seeds in fuzz/corpus/<target>/ and writing what it finds to a
# temporary corpus, so the repository is never modified. Crash inputs go to
# fuzz/artifacts/<target>/ and full logs to fuzz/target/run-logs/ (both
# ignored by git). Exits non-zero if any target crashed or failed to run.
#
# Environment:
#   FUZZ_SANITIZER   address (default) or none
#   FUZZ_BUILD       release (default) or dev: dev builds in about 60% of the CPU
#                    time but fuzzes several times slower; fine for a smoke run
#   FUZZ_TARGET_DIR  cargo target directory (default fuzz/target); point it
#                    outside the checkout to reuse builds across fresh clones
#   FUZZ_KEEP_CORPUS directory to keep the grown corpora in (default: discarded)
#   FUZZ_ARGS        extra libFuzzer flags for every target, e.g. "-jobs=2 -workers=2"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SECONDS_PER_TARGET=${1:-60}
[ $# -gt 0 ] && shift
if ! [[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi

# cargo-fuzz passes nightly-only rustc flags (-Zsanitizer=address). Only the
# stable toolchain can be installed here, and RUSTC_BOOTSTRAP=1 makes stable
# rustc accept -Z flags; it also makes cargo-fuzz treat the compiler as
# nightly. Harmless on a nightly toolchain.
export RUSTC_BOOTSTRAP=1
SANITIZER=${FUZZ_SANITIZER:-address}
CARGO_FUZZ_VERSION=0.13.2

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION (once per machine)"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

if [ $# -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo fuzz list)
fi
if [ "${#TARGETS[@]}" -eq 0 ]; then
    echo "fuzz: no targets found (cargo fuzz list)" >&2
    exit 1
fi

TARGET_DIR=${FUZZ_TARGET_DIR:-fuzz/target}
# Cargo caches rustc's answers in target/.rustc_info.json without keying them
# on RUSTC_BOOTSTRAP: one earlier `cargo fuzz` run without it leaves a cached
# "-Z is only accepted on nightly" failure behind. Start from a fresh probe.
rm -f "$TARGET_DIR/.rustc_info.json"

# Debug assertions on (overflow checks, debug_assert!) in either profile.
BUILD_FLAGS=(--sanitizer "$SANITIZER" --debug-assertions)
case "${FUZZ_BUILD:-release}" in
    release) ;;
    dev) BUILD_FLAGS+=(--dev) ;;
    *) echo "fuzz: FUZZ_BUILD must be release or dev" >&2; exit 2 ;;
esac
[ -n "${FUZZ_TARGET_DIR:-}" ] && BUILD_FLAGS+=(--target-dir "$FUZZ_TARGET_DIR")
build_start=$(date +%s)
echo "fuzz: building (${FUZZ_BUILD:-release}, sanitizer $SANITIZER)"
cargo fuzz build "${BUILD_FLAGS[@]}"
echo "fuzz: build took $(( $(date +%s) - build_start )) s"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mtls-authz-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
LOGS=$TARGET_DIR/run-logs
mkdir -p "$LOGS"

passed=0
failed=0
SUMMARY=()
for target in "${TARGETS[@]}"; do
    seeds=fuzz/corpus/$target
    mkdir -p "$WORK/$target"
    args=(-max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -timeout=20 -rss_limit_mb=2048)
    [ -f "fuzz/dict/$target.dict" ] && args+=(-dict="fuzz/dict/$target.dict")
    # shellcheck disable=SC2206  # FUZZ_ARGS is a list of flags on purpose
    [ -n "${FUZZ_ARGS:-}" ] && args+=(${FUZZ_ARGS})
    corpora=("$WORK/$target")
    # The first corpus directory is where libFuzzer writes new inputs; the
    # committed seeds come second and are only read.
    [ -d "$seeds" ] && corpora+=("$seeds")
    log=$LOGS/$target.log
    echo "fuzz: $target for ${SECONDS_PER_TARGET} s"
    rc=0
    # The outer timeout only guards against a wedged process; libFuzzer stops itself.
    timeout --signal=INT --kill-after=30 $(( SECONDS_PER_TARGET * 2 + 120 )) \
        cargo fuzz run "${BUILD_FLAGS[@]}" "$target" "${corpora[@]}" -- "${args[@]}" >"$log" 2>&1 || rc=$?

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    status_line=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status_line")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status_line")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$status_line")
    if [ "$rc" -eq 0 ]; then
        result=ok
        passed=$((passed + 1))
    else
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        result="FAILED (exit $rc${artifact:+, input $artifact})"
        failed=$((failed + 1))
        echo "---- $target: end of $log"
        # The panic message (or sanitizer report), not the stack traces.
        grep -v -E '^\s+(#?[0-9]+:? |at )|^stack backtrace|^note: ' "$log" \
            | grep -E -A6 "panicked at|ERROR: AddressSanitizer|^SUMMARY|^error|^Error" | head -30 || true
        echo "---- reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run ${BUILD_FLAGS[*]} $target ${artifact:-<input>}"
    fi
    if [ -n "${FUZZ_KEEP_CORPUS:-}" ]; then
        mkdir -p "$FUZZ_KEEP_CORPUS/$target"
        cp -n "$WORK/$target"/* "$FUZZ_KEEP_CORPUS/$target"/ 2>/dev/null || true
    fi
    SUMMARY+=("$(printf '%-13s runs=%-9s exec/s=%-6s cov=%-5s ft=%-6s corpus=%-5s %s' \
        "$target" "${runs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result")")
done

echo
echo "fuzz summary (${SECONDS_PER_TARGET} s per target, sanitizer $SANITIZER; logs in $LOGS):"
printf '  %s\n' "${SUMMARY[@]}"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
