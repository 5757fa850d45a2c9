#!/usr/bin/env bash
# The project's test command: set up, build, Rust tests, then the end-to-end
# suite against a real Envoy running the built filter. Exits non-zero on any
# failure. Extra arguments go to pytest (e.g. -k dry_run, -x).
# Envoy logs and configs of the e2e run are kept in .work/e2e.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/build.sh
cargo test --workspace
mkdir -p .work
.venv/bin/python -m pytest policy-tests/e2e -v --basetemp "$ROOT/.work/e2e" "$@"
