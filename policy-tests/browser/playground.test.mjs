// The playground in a real browser (Debian's Chromium, driven by
// playwright-core), served by the real `mtls-authz playground`, checked
// against the real CLI: every matrix cell against `mtls-authz matrix`, the
// highlighted diff against `mtls-authz diff`, the pasted certificate's fields
// against `mtls-authz explain`, the export against `mtls-authz test`.
// Screenshots go to $SCREENSHOTS (default .work/browser). The tests share one
// page and run in order, each building on the state the one before left
// (the certificate pasted in one is a matrix row in the next).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { bigPolicy } from './big-policy.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = process.env.MTLS_AUTHZ || path.join(ROOT, 'target/release/mtls-authz');
const SHOTS = process.env.SCREENSHOTS || path.join(ROOT, '.work/browser');
const POLICY = path.join(ROOT, 'examples/microservices/policy.json');
// The flags environment.md lists for Debian's Chromium here.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const work = mkdtempSync(path.join(tmpdir(), 'mtls-authz-browser-'));
let server, browser, page, base;

function cli(...args) {
  const r = spawnSync(CLI, args, { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A real certificate from openssl: CN, OU, O, a SPIFFE URI SAN and a DNS SAN. */
function makeCert() {
  const key = path.join(work, 'client.key'), cert = path.join(work, 'client.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30',
    '-keyout', key, '-out', cert, '-subj', '/O=shop/OU=reporting/CN=report-service',
    '-addext', 'subjectAltName=URI:spiffe://shop.test/ns/prod/sa/report,DNS:Report.Shop.Test'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return cert;
}

async function settle() {
  // The page recomputes 120 ms after the last keystroke; wait until it has.
  await page.waitForFunction(() => !window.playground.pending);
}

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function setEditor(id, text) {
  await page.fill(`#${id}`, text);
  await settle();
}

/** Every rendered cell as "label|endpoint|method" -> {verdict, rule, flipped}, read from the DOM. */
async function domCells() {
  return page.evaluate(() => {
    const table = document.getElementById('matrix');
    const endpoints = [...table.querySelectorAll('thead tr:first-child th[data-e]')].map((th) => [th.textContent, Number(th.colSpan)]);
    const methods = [...table.querySelectorAll('thead tr:nth-child(2) th')].map((th) => th.textContent);
    const columns = [];
    let k = 0;
    for (const [endpoint, span] of endpoints) for (let n = 0; n < span; n++) columns.push([endpoint, methods[k++]]);
    const out = {};
    for (const tr of table.querySelectorAll('tbody tr')) {
      const label = tr.querySelector('th').textContent;
      [...tr.querySelectorAll('td')].forEach((td, i) => {
        const [endpoint, method] = columns[i];
        out[`${label}|${endpoint}|${method}`] = {
          verdict: td.textContent === '✓' ? 'allow' : td.textContent === '✗' ? 'deny' : `?${td.textContent}`,
          rule: td.dataset.r || null,
          flipped: td.classList.contains('f'),
        };
      });
    }
    return out;
  });
}

/** `mtls-authz matrix --format json` as the same "label|endpoint|method" map. */
function cliCells(matrix) {
  const out = {};
  for (const c of matrix.cells) {
    out[`${matrix.identities[c.identity].label}|${matrix.endpoints[c.endpoint]}|${matrix.methods[c.method]}`] = { verdict: c.verdict, rule: c.rule, flipped: false };
  }
  return out;
}

/** The identity lines `mtls-authz explain` prints for a certificate, as [field, text] in its order. */
function explainedFields(certFile) {
  const out = cli('explain', '--policy', POLICY, '--cert', certFile, '--path', '/').stdout;
  const lines = out.split('\n');
  const start = lines.findIndex((l) => l.startsWith('caller:'));
  return lines.slice(start + 1).filter((l) => l.startsWith('  ')).map((l) => {
    const m = l.match(/^ {2}([a-z0-9_-]+): +(.*)$/);
    return [m[1] === 'x-mtls-authz-principal' ? 'principal' : m[1], m[2]];
  });
}

let cert, fieldsFile;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  cert = makeCert();
  fieldsFile = path.join(work, 'audit.json');
  writeFileSync(fieldsFile, JSON.stringify({ cn: 'audit-service', o: ['shop'] }));
  server = spawn(CLI, ['playground', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  base = await new Promise((resolve, reject) => {
    let seen = '';
    server.stdout.on('data', (d) => {
      seen += d;
      const m = seen.match(/http:\/\/127\.0\.0\.1:\d+\//);
      if (m) resolve(m[0]);
    });
    server.on('exit', (code) => reject(new Error(`mtls-authz playground exited ${code}: ${seen}`)));
  });
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
  page.on('pageerror', (e) => { throw e; });
  await page.goto(base);
  await page.waitForSelector('body[data-ready="true"]');
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill();
});

test('the page opens on the example policy, valid, with its matrix', async () => {
  await page.selectOption('#example', 'examples/microservices.json');
  await settle();
  assert.equal(await page.inputValue('#policy'), readFileSync(POLICY, 'utf8'));
  assert.match(await page.textContent('#policy-status'), /valid: 3 rules/);
  assert.match(await page.textContent('#matrix-status'), /4 identities × 4 endpoints × 3 methods = 48 cells/);
});

test('an invalid policy shows its error at the line and column the engine gives', async () => {
  const good = readFileSync(POLICY, 'utf8');
  const bad = good.replace('"methods": ["POST"]', '"methods": ["post"]');
  const line = bad.split('\n').findIndex((l) => l.includes('"post"')) + 1;
  await setEditor('policy', bad);
  const badFile = path.join(work, 'bad.json');
  writeFileSync(badFile, bad);
  const check = cli('check', badFile);
  assert.equal(check.status, 1);
  const [, cliLine, cliColumn, jsonPath] = check.stdout.match(/bad\.json:(\d+):(\d+): ([^:]+):/) || check.stderr.match(/bad\.json:(\d+):(\d+): ([^:]+):/);
  assert.equal(Number(cliLine), line);
  const error = await page.textContent('#policy-errors li');
  assert.ok(error.startsWith(`line ${line}, column ${cliColumn}: ${jsonPath}:`), error);
  assert.deepEqual(await page.$$eval('#policy-gutter .bad', (s) => s.map((x) => x.dataset.line)), [String(line)]);
  assert.match(await page.textContent('#matrix-status'), /waits for a valid policy/);
  await shot('invalid-policy');
  // Clicking the error puts the cursor on it.
  await page.click('#policy-errors li button');
  const caret = await page.$eval('#policy', (t) => t.value.slice(0, t.selectionStart).split('\n').length);
  assert.equal(caret, line);
  await setEditor('policy', good);
  assert.match(await page.textContent('#policy-status'), /valid/);
});

test('a pasted certificate shows every field the filter sees, as explain reads them', async () => {
  await page.fill('#pem', readFileSync(cert, 'utf8'));
  await page.click('#pem-add');
  await settle();
  const shown = await page.$$eval('#identity-view td[data-field]', (tds) => tds.map((td) => [td.dataset.field, td.textContent]));
  assert.deepEqual(shown, explainedFields(cert));
  const field = Object.fromEntries(shown);
  assert.equal(field.cn, 'report-service');
  assert.equal(field.ou, 'reporting');
  assert.equal(field.uri_san, 'spiffe://shop.test/ns/prod/sa/report');
  assert.equal(field.dns_san, 'report.shop.test', 'DNS SANs lower-cased, as the filter reads them');
  assert.match(field.sha256, /^[0-9a-f]{64}$/);
  assert.match(await page.textContent('#user-identities'), /uri=spiffe:\/\/shop\.test\/ns\/prod\/sa\/report \(certificate\)/);
  // Typed fields make a row too.
  await page.fill('#fields input[name=cn]', 'audit-service');
  await page.fill('#fields input[name=o]', 'shop');
  await page.click('#fields-add');
  await settle();
  assert.match(await page.textContent('#user-identities'), /cn=audit-service \(fields\)/);
  await shot('certificate');
});

test('an allowed and a denied request show the rule, the reason and what Envoy does', async () => {
  await page.selectOption('#caller', { label: 'cn=order-service' });
  await page.fill('#method', 'POST');
  await page.fill('#path', '/api/payment/create?amount=12');
  assert.equal(await page.textContent('#verdict'), '✓ allow');
  assert.equal(await page.textContent('#rule'), 'orders-create-payment');
  const upstream = await page.textContent('#upstream');
  assert.match(upstream, /x-mtls-authz-principal: cn=order-service/);
  assert.match(upstream, /x-mtls-authz-rule: orders-create-payment/);
  assert.equal(await page.textContent('#canonical'), '/api/payment/create');
  await shot('request-allowed');

  await page.fill('#method', 'GET');
  assert.equal(await page.textContent('#verdict'), '✗ deny');
  assert.equal(await page.textContent('#status'), '403');
  const body = JSON.parse(await page.textContent('#body'));
  const cliBody = JSON.parse(cli('explain', '--policy', POLICY, '--identity', writeFields({ cn: 'order-service' }), '--method', 'GET', '--path', '/api/payment/create?amount=12', '--format', 'json').stdout).outcome.response.body;
  assert.deepEqual(body, JSON.parse(cliBody));
  assert.equal(body.reason, 'no rule matched; default_action is deny');

  // The path preview: a dot segment is refused, and says so.
  await page.fill('#path', '/api/payment/query/%2e%2e/admin');
  assert.match(await page.textContent('#canonical'), /refused \[path\.dot_segment\]/);
  assert.equal(await page.textContent('#verdict'), '✗ deny');
  await page.fill('#path', '/api/payment/create');
});

function writeFields(fields) {
  const file = path.join(work, `fields-${Object.values(fields).join('-')}.json`);
  writeFileSync(file, JSON.stringify(fields));
  return file;
}

test('every matrix cell equals mtls-authz matrix for the same inputs', async () => {
  const out = cli('matrix', POLICY, '--cert', cert, '--identity', fieldsFile, '--format', 'json');
  assert.equal(out.status, 0, out.stderr);
  const expected = cliCells(JSON.parse(out.stdout));
  const shown = await domCells();
  assert.equal(Object.keys(expected).length, 6 * 4 * 3);
  assert.deepEqual(shown, expected);
  // Hover shows the deciding rule.
  const cell = page.locator('#matrix td.a').first();
  await cell.hover();
  assert.match(await cell.getAttribute('title'), /: allow \(rule [a-z-]+;/);
  await shot('matrix');
});

test('an edit highlights exactly the cells mtls-authz diff reports', async () => {
  const old = readFileSync(POLICY, 'utf8');
  // Orders may also PUT, reporting loses HEAD (flips); the admin deny narrows to POST, so
  // GET there stays denied, by the default now (a rule change, not a flip).
  const proposal = old.replace('"methods": ["POST"]', '"methods": ["POST", "PUT"]').replace('"methods": ["GET", "HEAD"]', '"methods": ["GET"]')
    .replace('"paths": ["/api/payment/admin/**"]', '"paths": ["/api/payment/admin/**"], "methods": ["POST"]');
  await page.click('#proposal-panel summary');
  await page.click('#proposal-copy');
  await setEditor('proposal', proposal);
  const newFile = path.join(work, 'proposal.json');
  writeFileSync(newFile, proposal);
  const out = cli('diff', POLICY, newFile, '--cert', cert, '--identity', fieldsFile, '--format', 'json');
  assert.equal(out.status, 1, 'diff exits 1 when a cell flips');
  const diff = JSON.parse(out.stdout);
  const expected = diff.flips.map((f) => `${f.identity}|${f.endpoint}|${f.method}`).sort();
  const shown = Object.entries(await domCells()).filter(([, c]) => c.flipped).map(([k]) => k).sort();
  assert.ok(expected.length > 0);
  assert.deepEqual(shown, expected);
  // The shown matrix is the proposal's, cell for cell.
  const cells = await domCells();
  for (const [key, c] of Object.entries(cliCells(diff.new))) assert.equal(cells[key].verdict, c.verdict, key);
  assert.equal(await page.locator('#flip-list li').count(), expected.length);
  const ruleChanged = await page.$$eval('#matrix tbody tr', (trs) => trs.flatMap((tr) => [...tr.querySelectorAll('td.rc')].map((td) => td.dataset.c)));
  assert.ok(diff.rule_changes.length > 0);
  // Same axes in the same order (user rows: the certificate, then the fields), so the same cell indices.
  assert.deepEqual(ruleChanged.map(Number).sort((a, b) => a - b), diff.rule_changes.map((f) => f.cell).sort((a, b) => a - b));
  assert.equal(await page.locator('#rule-change-list li').count(), diff.rule_changes.length);
  // Focus (as the keyboard gets there) shows the same detail as hover.
  await page.locator('#matrix td.f').first().focus();
  assert.match(await page.textContent('#cell-detail'), /before the proposal/);
  await shot('diff');
  // The README's picture (playground/screenshot.png is a copy): the matrix with a change's flips.
  await page.locator('#matrix-panel').screenshot({ path: path.join(SHOTS, 'diff-matrix.png') });
});

test('a share link restores the whole state in a fresh page', async () => {
  await page.click('#share');
  await page.waitForFunction(() => location.hash.startsWith('#s='));
  const link = await page.evaluate(() => location.href);
  assert.ok(link.startsWith(base));
  const before = { policy: await page.inputValue('#policy'), proposal: await page.inputValue('#proposal'), cells: await domCells(), who: await page.textContent('#user-identities'), verdict: await page.textContent('#verdict') };
  const fresh = await browser.newPage({ viewport: { width: 1366, height: 900 } });
  await fresh.goto(link);
  await fresh.waitForSelector('body[data-ready="true"]');
  const saved = page;
  page = fresh;
  try {
    assert.equal(await page.inputValue('#policy'), before.policy);
    assert.equal(await page.inputValue('#proposal'), before.proposal);
    assert.equal(await page.textContent('#user-identities'), before.who);
    assert.deepEqual(await domCells(), before.cells);
    assert.equal(await page.textContent('#verdict'), before.verdict);
    assert.equal(await page.inputValue('#method'), 'GET');
    await shot('shared');
  } finally {
    page = saved;
    await fresh.close();
  }
});

test('exported cells are a cases.json that mtls-authz test passes', async () => {
  await page.click('#proposal-clear');
  await settle();
  await page.click('#export-all');
  const all = await page.inputValue('#export');
  const cases = path.join(work, 'cases.json');
  writeFileSync(cases, all);
  const run = cli('test', POLICY, cases);
  assert.equal(run.status, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /72 passed, 0 failed/);
  // Selected cells, picked with the keyboard: focus the grid, Space, move right, Space.
  await page.locator('#matrix td[tabindex="0"]').focus();
  await page.keyboard.press('Space');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Space');
  assert.match(await page.textContent('#cell-detail'), /\((rule|was)/);
  await page.click('#export-selected');
  const picked = JSON.parse(await page.inputValue('#export'));
  assert.equal(picked.cases.length, 2);
  writeFileSync(cases, JSON.stringify(picked));
  const run2 = cli('test', POLICY, cases);
  assert.equal(run2.status, 0, run2.stdout + run2.stderr);
  assert.match(run2.stdout, /2 passed, 0 failed/);
  // And a wrong expectation fails there, so the pass above means something.
  picked.cases[0].expect = picked.cases[0].expect === 'allow' ? 'deny' : 'allow';
  writeFileSync(cases, JSON.stringify(picked));
  assert.equal(cli('test', POLICY, cases).status, 1);
});

test('a 1,000-rule policy works: the engine computes what is shown, the filters reach every row', async () => {
  const text = bigPolicy(1000);
  const file = path.join(work, 'big.json');
  writeFileSync(file, text);
  assert.equal(cli('check', file).status, 0);
  await page.click('#proposal-clear');
  await page.$eval('#policy', (t, v) => { t.value = v; t.dispatchEvent(new Event('input')); }, text);
  await page.waitForFunction(() => /1000 rules/.test(document.getElementById('policy-status').textContent));
  await page.waitForFunction(() => /Showing the first/.test(document.getElementById('matrix-status').textContent));
  const status = await page.textContent('#matrix-status');
  assert.match(status, /^100 identities × 200 endpoints × 2 methods = 40000 cells/);
  assert.match(status, /Showing the first 100 identities and 200 endpoints/);
  await shot('thousand-rules');
  // The last service, found by the filters, reaches its own endpoints and no one else's
  // (/api/svc-99 matches services 99 and 990-999: 22 endpoints).
  await page.fill('#row-filter', 'cn=svc-999');
  await page.fill('#col-filter', '/api/svc-99');
  await page.waitForFunction(() => /filters match 1 of \d+ identities and 22 of 2000 endpoints/.test(document.getElementById('matrix-status').textContent));
  const cells = await domCells();
  const own = cells['cn=svc-999|/api/svc-999/items|GET'];
  assert.deepEqual(own, { verdict: 'allow', rule: 'svc-999', flipped: false });
  assert.equal(cells['cn=svc-999|/api/svc-99/items|GET'].verdict, 'deny');
  const explained = JSON.parse(cli('explain', '--policy', file, '--identity', writeFields({ cn: 'svc-999' }), '--path', '/api/svc-999/items', '--format', 'json').stdout);
  assert.equal(explained.rule, own.rule);
  await page.fill('#row-filter', '');
  await page.fill('#col-filter', '');
});

test('an example certificate from the demo PKI adds its row, read as explain reads it', async () => {
  await page.selectOption('#example', 'examples/microservices.json');
  await settle();
  await page.selectOption('#example-cert', 'certs/order-service.crt');
  await page.waitForFunction(() => /order-service/.test(document.getElementById('identity-status').textContent) || /sa\/order/.test(document.getElementById('identity-status').textContent));
  await settle();
  const crt = path.join(ROOT, 'target/playground-certs/order-service.crt');
  const shown = await page.$$eval('#identity-view td[data-field]', (tds) => tds.map((td) => [td.dataset.field, td.textContent]));
  assert.deepEqual(shown, explainedFields(crt));
  assert.match(await page.textContent('#user-identities'), /uri=spiffe:\/\/shop\.test\/ns\/prod\/sa\/order \(certificate\)/);
  const out = cli('matrix', POLICY, '--cert', cert, '--identity', fieldsFile, '--cert', crt, '--format', 'json');
  assert.deepEqual(await domCells(), cliCells(JSON.parse(out.stdout)));
});
