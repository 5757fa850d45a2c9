#!/usr/bin/env bash
# The project's test command: set up, build, Rust tests, then the end-to-end
# suite against a real Envoy running the built filter. Both test stages run
# even if the first fails, so one CI run reports everything; the exit status
# is non-zero if either (or the build) failed. Extra arguments go to pytest
# (e.g. -k dry_run, -x). Envoy logs and configs of the e2e run are kept in
# .work/e2e for inspection.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/build.sh

status=0
cargo test --workspace || { status=$?; echo "test.sh: cargo test --workspace FAILED (exit $status)" >&2; }

mkdir -p .work
e2e=0
.venv/bin/python -m pytest policy-tests/e2e -v --basetemp "$ROOT/.work/e2e" "$@" || e2e=$?
if [ "$e2e" != 0 ]; then
    echo "test.sh: end-to-end suite FAILED (exit $e2e); Envoy logs in .work/e2e" >&2
    status=$e2e
fi
[ "$status" = 0 ] && echo "test.sh: all tests passed" >&2
exit "$status"
