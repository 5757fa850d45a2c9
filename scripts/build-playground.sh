#!/usr/bin/env bash
# Build the browser playground into target/playground: the engine for
# wasm32-unknown-unknown through wasm-bindgen (pkg/: the JS glue and the
# .wasm), the page (playground/web), the example policies (examples/) and
# the dev certificates' public halves (envoy/gen-certs.sh; never the keys).
# The result is a static site any file server can host; `mtls-authz
# playground` embeds it, so build.sh runs this before building the CLI.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT="$ROOT/target/playground"

cargo build --release -p mtls-authz-playground --target wasm32-unknown-unknown
rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp/pkg" "$OUT.tmp/examples"
wasm-bindgen --target web --no-typescript --out-dir "$OUT.tmp/pkg" \
    target/wasm32-unknown-unknown/release/mtls_authz_playground.wasm
cp playground/web/index.html playground/web/style.css playground/web/app.js "$OUT.tmp/"
# The examples menu: every examples/NAME/policy.json, as examples/NAME.json.
python3 - "$OUT.tmp/examples" <<'PY'
import json, pathlib, shutil, sys
out = pathlib.Path(sys.argv[1])
index = []
for policy in sorted(pathlib.Path("examples").glob("*/policy.json")):
    name = policy.parent.name
    shutil.copyfile(policy, out / f"{name}.json")
    index.append({"name": name, "file": f"examples/{name}.json"})
(out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
PY
# Example certificates: the demo's client certificates, public parts only.
bash envoy/gen-certs.sh "$ROOT/target/playground-certs" >/dev/null
mkdir -p "$OUT.tmp/certs"
python3 - "$ROOT/target/playground-certs" "$OUT.tmp/certs" <<'PY'
import json, pathlib, shutil, sys
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
index = []
for name in ["order-service", "report-service", "unknown-service", "confused", "expired"]:
    shutil.copyfile(src / f"{name}.crt", out / f"{name}.crt")
    index.append({"name": name, "file": f"certs/{name}.crt"})
(out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
PY
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
echo "build-playground: $(du -sh "$OUT" | cut -f1) in $OUT" >&2
