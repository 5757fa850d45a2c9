#!/usr/bin/env bash
# The project's test command: set up, build, then every test stage:
#   1. lints: rustfmt (rustfmt.toml) and clippy with warnings denied (the filter and engine deny unwrap/expect/panic);
#   2. the engine builds for the browser target (wasm32-unknown-unknown);
#   3. cargo test --workspace (unit, property, CLI and example tests);
#   4. the end-to-end suite against a real Envoy running the built filter, with
#      the differential path suite against real backends (policy-tests/differential);
#   5. the compose stack: envoy/docker-compose.yaml as users run it (the e2e
#      suite as the `tests` service, the ECDS profile), under
#      scripts/with-docker.sh, which starts a Docker engine when none answers
#      and stops it after; images are pulled, or built as local stand-ins;
#   6. the browser playground in Debian's headless Chromium (playwright-core),
#      checked against the CLI; screenshots in .work/browser;
#   7. a fuzz smoke run: every cargo-fuzz target for 5 s on its seed corpus
#      (the longer run is `fuzz/run.sh 600`, see fuzz/README.md).
# Every stage runs even if an earlier one fails, so one CI run reports
# everything; the exit status is non-zero if any failed. Extra arguments go to
# pytest (e.g. -k dry_run, -x) and then leave out the compose stack. Envoy logs and configs of the e2e run are kept
# in .work/e2e for inspection.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/build.sh
# The differential suite's real backends (Go, Java + Tomcat and Jetty, Node +
# Express 4 and 5): only the tests need them, not the demo.
bash policy-tests/differential/setup.sh
# etcd and mosquitto from Debian, for the suites that put real services behind Envoy.
bash scripts/setup-services.sh
# The browser tests' Chromium, Node and playwright-core.
bash policy-tests/browser/setup.sh

status=0
failed=()
stage() {
    local name=$1; shift
    echo "test.sh: == $name" >&2
    local rc=0
    "$@" || rc=$?
    if [ "$rc" != 0 ]; then
        echo "test.sh: $name FAILED (exit $rc)" >&2
        failed+=("$name")
        status=$rc
    fi
}

stage "rustfmt" bash -c 'cargo fmt --all --check && for m in fuzz bench/empty-filter bench/probe-filter bench/wasm-load; do cargo fmt --manifest-path "$m/Cargo.toml" --all --check || exit 1; done'
stage "clippy" cargo clippy --workspace --all-targets -- -D warnings
stage "engine for wasm32-unknown-unknown" cargo build -p mtls-authz-policy --target wasm32-unknown-unknown
stage "cargo test" cargo test --workspace
mkdir -p .work
stage "end-to-end suite" .venv/bin/python -m pytest policy-tests/e2e -v -m "not docker" --basetemp "$ROOT/.work/e2e" "$@"
if [ "$#" = 0 ]; then
    # compose-images.sh first, outside pytest's capture, so its one line on building stand-ins shows in the log
    # (the tests' fixture calls it again: a no-op once the images exist, the failure's reason otherwise).
    stage "compose stack" bash scripts/with-docker.sh bash -c 'if docker info >/dev/null 2>&1; then bash scripts/compose-images.sh; fi;
        exec .venv/bin/python -m pytest policy-tests/e2e/test_compose.py -v -m docker --basetemp "$0"' "$ROOT/.work/compose"
else
    echo "test.sh: compose stack left out (pytest arguments given: $*)" >&2
fi
stage "browser playground" bash -c 'cd policy-tests/browser && SCREENSHOTS="$0" npm test --silent' "$ROOT/.work/browser"
stage "fuzz smoke" env FUZZ_BUILD=dev bash fuzz/run.sh 5

if [ "$status" = 0 ]; then
    echo "test.sh: all tests passed" >&2
else
    echo "test.sh: FAILED stages: ${failed[*]} (Envoy logs in .work/e2e)" >&2
fi
exit "$status"
