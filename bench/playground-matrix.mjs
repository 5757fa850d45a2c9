// How long the playground takes to compute and draw a 100 identities x 200
// endpoints access matrix (x 2 methods = 40,000 cells: the most the page draws
// at once), in Debian's headless Chromium, and how long `mtls-authz matrix`
// takes for the same policy in a terminal. Not a test: it prints figures.
//
//   bash scripts/build.sh && bash policy-tests/browser/setup.sh
//   node bench/playground-matrix.mjs [ROUNDS]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { chromium } = await import(pathToFileURL(path.join(ROOT, 'policy-tests/browser/node_modules/playwright-core/index.mjs')).href);
const { bigPolicy } = await import(pathToFileURL(path.join(ROOT, 'policy-tests/browser/big-policy.mjs')).href);
const CLI = process.env.MTLS_AUTHZ || path.join(ROOT, 'target/release/mtls-authz');
const ROUNDS = Number(process.argv[2] || 9);
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const policy = bigPolicy(100);
const file = path.join(mkdtempSync(path.join(tmpdir(), 'mtls-authz-bench-')), 'policy.json');
writeFileSync(file, policy);

// The terminal: the whole process, reading the policy to printing 40,000 cells as JSON.
const cliMs = [];
for (let r = 0; r < ROUNDS; r++) {
  const t0 = process.hrtime.bigint();
  const run = spawnSync(CLI, ['matrix', file, '--format', 'json'], { maxBuffer: 1 << 28 });
  if (run.status !== 0) throw new Error(String(run.stderr));
  cliMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
}

// PLAYGROUND_URL: time a copy of target/playground on another static server instead.
const server = process.env.PLAYGROUND_URL ? null : spawn(CLI, ['playground', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const url = process.env.PLAYGROUND_URL || await new Promise((resolve) => {
  let seen = '';
  server.stdout.on('data', (d) => { seen += d; const m = seen.match(/http:\/\/127\.0\.0\.1:\d+\//); if (m) resolve(m[0]); });
});
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS });
const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
await page.goto(url);
await page.waitForSelector('body[data-ready="true"]');
await page.$eval('#policy', (t, v) => { t.value = v; }, policy);
const rounds = [];
for (let r = 0; r < ROUNDS; r++) {
  rounds.push(await page.evaluate(async () => {
    const t0 = performance.now();
    window.playground.refresh();
    const t1 = performance.now();
    // Layout and paint happen after the script: wait for the next frame.
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    return { compute: window.playground.timings.compute_ms, render: window.playground.timings.render_ms, script: t1 - t0, paint: performance.now() - t0, cells: window.playground.shown.cells.length };
  }));
}
await browser.close();
if (server) server.kill();

const cells = rounds[0].cells;
const m = (k) => median(rounds.map((x) => x[k])).toFixed(0);
console.log(`matrix ${cells} cells (100 identities x 200 endpoints x 2 methods), median of ${ROUNDS} rounds:`);
console.log(`  browser compute (engine in wasm + JSON.parse): ${m('compute')} ms`);
console.log(`  browser render  (table HTML + DOM):            ${m('render')} ms`);
console.log(`  browser script in all (refresh, incl. above):  ${m('script')} ms`);
 console.log(`  browser input -> next frame (layout, paint):  ${m('paint')} ms`);
console.log(`  mtls-authz matrix --format json (process):     ${median(cliMs).toFixed(0)} ms`);
