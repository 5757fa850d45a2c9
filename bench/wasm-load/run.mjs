// Run the wasm32-wasip1 build of bench/wasm-load under Node's WASI:
//   node bench/wasm-load/run.mjs POLICY.json [ROUNDS]
// The policy's folder is the guest's only directory.
import { WASI } from 'node:wasi';
import { readFileSync } from 'node:fs';
import { dirname, basename, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// One round unless told: only a single round's linear memory is the filter's.
const [policy, rounds = '1'] = process.argv.slice(2);
if (!policy) {
  console.error('usage: node bench/wasm-load/run.mjs POLICY.json [ROUNDS]');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const module = resolve(here, '../../target/wasm-load/wasm32-wasip1/release/bench-wasm-load.wasm');
const wasi = new WASI({
  version: 'preview1',
  args: ['wasm-load', `/policy/${basename(policy)}`, rounds],
  preopens: { '/policy': resolve(dirname(policy)) },
});
const instance = await WebAssembly.instantiate(await WebAssembly.compile(readFileSync(module)), wasi.getImportObject());
process.exitCode = wasi.start(instance);
