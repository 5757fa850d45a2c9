// The playground page. Every answer (validation, certificate fields, decisions,
// the matrix and its diff, exported cases) comes from the engine compiled to
// WebAssembly (pkg/, built from playground/src/lib.rs); this file only draws
// them and keeps the page's state. Nothing leaves the browser: the share link
// carries the state in its fragment, which browsers never send.
import init, * as engine from './pkg/mtls_authz_playground.js';

const $ = (id) => document.getElementById(id);
const FALLBACK_POLICY = `{
  "version": 1,
  "default_action": "deny",
  "rules": [
    {"name": "orders-create-payment", "action": "allow",
     "principals": [{"uri_san": "spiffe://shop.test/ns/prod/sa/order"}, {"cn": "order-service"}],
     "paths": ["/api/payment/create"], "methods": ["POST"]}
  ]
}
`;
// The most rows and endpoints the engine computes and the page draws at once
// (a 1,000-rule policy has about 1,000 and 2,000): the filters pick which.
// bench/README.md has what a matrix of this size costs.
const MAX_ROWS = 100;
const MAX_COLUMNS = 200;

const state = {
  identities: [], // {spec, label}: what the user added
  endpoints: [],
  selected: new Set(),
  shown: null, // the matrix on screen
  flips: new Map(), // cell index -> flip, in diff mode
  ruleChanges: new Map(), // cell index -> same decision, another rule
  callers: [],
  timings: {},
};
// For tests and the benchmark: what the page last computed, and how long it took.
window.playground = state;
// The benchmark (bench/playground-matrix.mjs) calls this to time one recompute and draw.
state.refresh = () => refresh();

const json = (text) => JSON.parse(text);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const extraSpec = () => JSON.stringify({
  identities: state.identities.map((i) => i.spec),
  endpoints: state.endpoints,
  window: { rows: $('row-filter').value.trim(), columns: $('col-filter').value.trim(), max_rows: MAX_ROWS, max_columns: MAX_COLUMNS },
});

// ---- editors: line numbers, errors at their line, jump to an error ----
function drawGutter(textarea, gutter, badLines) {
  const lines = textarea.value.split('\n').length;
  let html = '';
  for (let n = 1; n <= lines; n++) {
    html += badLines.has(n) ? `<span class="bad" data-line="${n}">${n}!</span>\n` : `${n}\n`;
  }
  gutter.innerHTML = html;
  gutter.scrollTop = textarea.scrollTop;
}

function jumpTo(textarea, line, column) {
  const lines = textarea.value.split('\n');
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  offset += Math.max(0, column - 1);
  textarea.focus();
  textarea.setSelectionRange(offset, offset + 1);
}

function showValidation(prefix, result) {
  const textarea = $(prefix), gutter = $(`${prefix}-gutter`), status = $(`${prefix}-status`), list = $(`${prefix}-errors`);
  const errors = result.ok ? [] : result.errors || [];
  drawGutter(textarea, gutter, new Set(errors.map((e) => e.line)));
  if (result.ok) {
    status.innerHTML = `<span class="ok">✓ valid: ${result.rules} rule${result.rules === 1 ? '' : 's'}${result.revision ? `, revision ${esc(result.revision)}` : ''}, mode ${esc(result.mode)}</span>`;
    list.innerHTML = '';
    return;
  }
  status.innerHTML = `<span class="bad-text">✗ ${errors.length} error${errors.length === 1 ? '' : 's'}</span>`;
  list.innerHTML = errors
    .map((e, i) => `<li><button type="button" data-i="${i}">line ${e.line}, column ${e.column}${e.path ? `: ${esc(e.path)}` : ''}: ${esc(e.message)}</button></li>`)
    .join('');
  list.querySelectorAll('button').forEach((b) => {
    const e = errors[Number(b.dataset.i)];
    b.addEventListener('click', () => jumpTo(textarea, e.line, e.column));
  });
}

// ---- identities ----
function derToPem(bytes) {
  let bin = '';
  bytes.forEach((b) => { bin += String.fromCharCode(b); });
  const b64 = btoa(bin).replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
}

function showIdentity(result) {
  const view = $('identity-view');
  if (!result.ok) {
    $('identity-status').innerHTML = `<span class="bad-text">✗ ${esc(result.error)}</span>`;
    view.innerHTML = '';
    return false;
  }
  $('identity-status').innerHTML = `<span class="ok">✓ read as ${esc(result.label)}</span>`;
  const rows = result.rows.map(([k, text]) => `<tr><th scope="row">${esc(k)}</th><td data-field="${esc(k)}">${esc(text)}</td></tr>`);
  rows.unshift(`<tr><th scope="row">x-mtls-authz-principal</th><td data-field="principal">${esc(result.principal)}</td></tr>`);
  view.innerHTML = `<table class="fields" aria-label="Fields the filter sees">${rows.join('')}</table>`;
  return true;
}

function addIdentity(spec) {
  const result = json(engine.identity(JSON.stringify(spec)));
  if (!showIdentity(result)) return;
  if (!state.identities.some((i) => i.label === result.label)) state.identities.push({ spec, label: result.label });
  drawUserIdentities();
  refresh();
}

function drawUserIdentities() {
  const ul = $('user-identities');
  ul.innerHTML = state.identities.length
    ? state.identities.map((i, n) => `<li>${esc(i.label)} (${i.spec.pem ? 'certificate' : 'fields'}) <button type="button" data-n="${n}" aria-label="Remove ${esc(i.label)}">remove</button></li>`).join('')
    : '<li class="hint">none yet</li>';
  ul.querySelectorAll('button').forEach((b) => b.addEventListener('click', () => {
    state.identities.splice(Number(b.dataset.n), 1);
    drawUserIdentities();
    refresh();
  }));
}

function fieldsSpec() {
  const fields = {};
  const single = new Set(['cn', 'issuer_cn', 'serial', 'sha256']);
  document.querySelectorAll('#fields input').forEach((input) => {
    const v = input.value.trim();
    if (!v) return;
    fields[input.name] = single.has(input.name) ? v : v.split(',').map((s) => s.trim()).filter(Boolean);
  });
  return { fields };
}

// ---- request panel ----
function drawCallers(matrix) {
  const select = $('caller');
  const previous = select.value;
  state.callers = [{ label: 'no client certificate', spec: null }];
  if (matrix) {
    matrix.identities.forEach((row) => {
      const mine = state.identities.find((i) => i.label === row.label);
      state.callers.push({ label: row.label, spec: mine ? mine.spec : { fields: row.identity } });
    });
  }
  select.innerHTML = state.callers.map((c, i) => `<option value="${i}">${esc(c.label)}</option>`).join('');
  const keep = state.callers.findIndex((c) => c.label === previous);
  select.value = String(keep >= 0 ? keep : Math.min(1, state.callers.length - 1));
  select.dataset.label = state.callers[Number(select.value)].label;
}

function decideRequest() {
  const out = $('decision');
  const caller = state.callers[Number($('caller').value)] || state.callers[0];
  $('caller').dataset.label = caller ? caller.label : '';
  const r = json(engine.decide($('policy').value, JSON.stringify(caller ? caller.spec : null), $('method').value, $('path').value));
  if (!r.ok) {
    out.innerHTML = `<p class="bad-text">${esc(r.error || 'the policy has errors: fix them first')}</p>`;
    return;
  }
  const rows = [
    ['decision', `<span id="verdict" class="verdict-${r.decision}">${r.decision === 'allow' ? '✓ allow' : '✗ deny'}</span>`],
    ['enforced', r.enforced === r.decision ? esc(r.enforced) : `${esc(r.enforced)} (dry run: reported, not enforced)`],
    ['rule', `<span id="rule">${esc(r.rule ?? (r.reason.startsWith('no rule') || r.reason.startsWith('default') ? 'default' : 'none (refused before any rule)'))}</span>`],
    ['reason', `<span id="reason">${esc(r.reason)}</span>`],
  ];
  const reading = r.reading;
  if (reading.accepted) {
    rows.push(['path read as', `<span id="canonical">${esc(reading.path)}</span> (segments: ${reading.segments.map((s) => JSON.stringify(s)).map(esc).join(', ') || 'none'})`]);
    (reading.alternatives || []).forEach((a) => rows.push(['also', `/${esc(a.join('/'))} (another name the backend may resolve: it must be allowed too)`]));
  } else {
    const by = reading.refusal.accepted_by ? `; accepted with ${esc(reading.refusal.accepted_by)}` : '';
    rows.push(['path', `<span id="canonical" class="bad-text">refused [${esc(reading.refusal.code)}]: ${esc(reading.refusal.message)}${by}</span>`]);
  }
  if (r.outcome.upstream_headers) {
    const h = r.outcome.upstream_headers.map(([n, v]) => `${esc(n)}: ${esc(v)}`).join('<br>');
    rows.push(['Envoy', `forwards upstream with <span id="upstream">${h || '(no filter headers)'}</span>`]);
  }
  if (r.outcome.response) {
    rows.push(['Envoy', `answers <span id="status">${r.outcome.response.status}</span> <span id="body">${esc(r.outcome.response.body)}</span>`]);
  }
  if (r.outcome.log_line) rows.push(['log', esc(r.outcome.log_line)]);
  out.innerHTML = `<dl>${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

// ---- the matrix ----
function cellIndex(m, i, e, k) {
  return (i * m.endpoints.length + e) * m.methods.length + k;
}

function drawMatrix(m) {
  const t0 = performance.now();
  const shownRows = m.identities.map((r, i) => i), shownCols = m.endpoints.map((e, i) => i);
  const M = m.methods.length;
  const parts = ['<thead><tr><th class="row" rowspan="2" scope="col">identity</th>'];
  for (const e of shownCols) parts.push(`<th colspan="${M}" scope="colgroup" data-e="${e}">${esc(m.endpoints[e])}</th>`);
  parts.push('</tr><tr>');
  for (let n = 0; n < shownCols.length; n++) for (const method of m.methods) parts.push(`<th scope="col">${esc(method)}</th>`);
  parts.push('</tr></thead><tbody>');
  let first = true;
  for (const i of shownRows) {
    parts.push(`<tr><th class="row" scope="row" title="${esc(m.identities[i].label)}">${esc(m.identities[i].label)}</th>`);
    for (const e of shownCols) {
      for (let k = 0; k < M; k++) {
        const c = cellIndex(m, i, e, k);
        const cell = m.cells[c];
        const allow = cell.verdict === 'allow';
        const cls = (allow ? 'a' : 'd') + (state.flips.has(c) ? ' f' : state.ruleChanges.has(c) ? ' rc' : '') + (state.selected.has(c) ? ' sel' : '');
        parts.push(`<td class="${cls}" data-c="${c}" data-r="${esc(cell.rule ?? '')}" tabindex="${first ? 0 : -1}">${allow ? '✓' : '✗'}</td>`);
        first = false;
      }
    }
    parts.push('</tr>');
  }
  parts.push('</tbody>');
  $('matrix').innerHTML = parts.join('');
  $('cell-detail').textContent = '';
  const allowed = m.cells.filter((c) => c.verdict === 'allow').length;
  const s = m.shown;
  const filtered = s && (s.matching_identities < s.identities || s.matching_endpoints < s.endpoints)
    ? ` The filters match ${s.matching_identities} of ${s.identities} identities and ${s.matching_endpoints} of ${s.endpoints} endpoints.` : '';
  const cut = s && (m.identities.length < s.matching_identities || m.endpoints.length < s.matching_endpoints)
    ? ` Showing the first ${m.identities.length} identities and ${m.endpoints.length} endpoints: filter to see the others${state.flips.size || $('proposal').value.trim() ? ' (flips are counted in what is shown; mtls-authz diff counts them all)' : ''}.` : '';
  const flips = state.flips.size ? ` ${state.flips.size} cell${state.flips.size === 1 ? '' : 's'} flip in the proposal (marked Δ).` : '';
  const others = state.ruleChanges.size ? ` ${state.ruleChanges.size} keep their decision, from another rule (dashed).` : '';
  $('matrix-status').textContent = `${m.identities.length} identities × ${m.endpoints.length} endpoints × ${M} methods = ${m.cells.length} cells, ${allowed} allow.${flips}${others}${filtered}${cut}`;
  state.timings.render_ms = performance.now() - t0;
}

function describeCell(c) {
  const m = state.shown;
  const cell = m.cells[c];
  const who = m.identities[cell.identity].label;
  const text = `${who} ${m.methods[cell.method]} ${cell.path}: ${cell.verdict} (rule ${cell.rule ?? 'default'}; ${cell.reason})`;
  const flip = state.flips.get(c) || state.ruleChanges.get(c);
  return flip ? `${text}; was ${flip.old} (rule ${flip.old_rule ?? 'default'}) before the proposal` : text;
}

function onCellFocus(event) {
  const td = event.target.closest('td[data-c]');
  if (!td || !state.shown) return;
  const text = describeCell(Number(td.dataset.c));
  td.title = text;
  $('cell-detail').textContent = text;
}

function moveFocus(event) {
  const td = event.target.closest('td[data-c]');
  if (!td) return;
  const tr = td.parentElement;
  let next = null;
  const col = Array.prototype.indexOf.call(tr.children, td);
  if (event.key === 'ArrowRight') next = td.nextElementSibling;
  else if (event.key === 'ArrowLeft') next = td.previousElementSibling;
  else if (event.key === 'ArrowDown') next = tr.nextElementSibling && tr.nextElementSibling.children[col];
  else if (event.key === 'ArrowUp') next = tr.previousElementSibling && tr.previousElementSibling.children[col];
  else if (event.key === ' ' || event.key === 'Enter') {
    toggleSelected(td);
    event.preventDefault();
    return;
  }
  if (next && next.dataset && next.dataset.c !== undefined) {
    td.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
    event.preventDefault();
  }
}

function toggleSelected(td) {
  const c = Number(td.dataset.c);
  if (state.selected.has(c)) state.selected.delete(c); else state.selected.add(c);
  td.classList.toggle('sel', state.selected.has(c));
  $('selected-count').textContent = `${state.selected.size} selected`;
}

function drawFlips(flips, ruleChanges) {
  const item = (f) => `<li>${esc(f.identity)} ${esc(f.method)} ${esc(f.path)}: ${f.old} (${esc(f.old_rule ?? 'default')}) → ${f.new} (${esc(f.new_rule ?? 'default')})</li>`;
  const parts = [];
  if (flips.length) parts.push(`<h3>Cells the proposal flips (${flips.length})</h3><ul id="flip-list">${flips.slice(0, 500).map(item).join('')}</ul>`);
  else if ($('proposal').value.trim()) parts.push('<p>The proposal flips no cell.</p>');
  if (ruleChanges.length) parts.push(`<h3>Same decision, another rule (${ruleChanges.length}, outlined dashed)</h3><ul id="rule-change-list">${ruleChanges.slice(0, 500).map(item).join('')}</ul>`);
  $('flips').innerHTML = parts.join('');
}

// ---- recompute on every change ----
function refresh() {
  clearTimeout(timer);
  state.pending = false;
  const policy = $('policy').value;
  const proposal = $('proposal').value;
  const valid = json(engine.validate(policy));
  showValidation('policy', valid);
  const diffing = proposal.trim() !== '';
  const proposed = diffing ? json(engine.validate(proposal)) : null;
  if (diffing) showValidation('proposal', proposed); else { $('proposal-status').textContent = ''; $('proposal-errors').innerHTML = ''; drawGutter($('proposal'), $('proposal-gutter'), new Set()); }
  if (!valid.ok || (diffing && !proposed.ok)) {
    $('matrix-status').textContent = 'The matrix waits for a valid policy.';
    decideRequest();
    return;
  }
  const t0 = performance.now();
  let m;
  state.flips = new Map();
  state.ruleChanges = new Map();
  if (diffing) {
    const d = json(engine.diff(policy, proposal, extraSpec()));
    if (!d.ok) { $('matrix-status').textContent = d.error; return; }
    m = d.new;
    d.flips.forEach((f) => state.flips.set(f.cell, f));
    d.rule_changes.forEach((f) => state.ruleChanges.set(f.cell, f));
    drawFlips(d.flips, d.rule_changes);
  } else {
    m = json(engine.matrix(policy, extraSpec()));
    if (!m.ok) { $('matrix-status').textContent = m.error; return; }
    drawFlips([], []);
  }
  state.timings.compute_ms = performance.now() - t0;
  // Selected cells are kept by index, which only means the same cell on the same axes.
  const axes = JSON.stringify([m.identities.map((r) => r.label), m.endpoints, m.methods]);
  if (axes !== state.axes) state.selected.clear();
  state.axes = axes;
  state.shown = m;
  drawMatrix(m);
  drawCallers(m);
  decideRequest();
  $('selected-count').textContent = `${state.selected.size} selected`;
}

let timer = null;
function refreshSoon() {
  clearTimeout(timer);
  state.pending = true; // tests wait for this to clear
  timer = setTimeout(refresh, 120);
}

// ---- export and share ----
function exportCases(selectedOnly) {
  const policy = $('policy').value, proposal = $('proposal').value.trim() ? $('proposal').value : '';
  const selected = selectedOnly ? JSON.stringify([...state.selected].sort((a, b) => a - b)) : 'null';
  const doc = json(engine.cases(policy, proposal, extraSpec(), selected));
  if (doc.ok === false) { $('export').value = doc.error || 'fix the policy first'; return; }
  const text = `${JSON.stringify(doc, null, 1)}\n`;
  $('export').value = text;
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  a.download = 'cases.json';
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

async function pack(obj) {
  const stream = new Blob([JSON.stringify(obj)]).stream().pipeThrough(new CompressionStream('deflate-raw'));
  const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  let bin = '';
  bytes.forEach((b) => { bin += String.fromCharCode(b); });
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function unpack(text) {
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  return JSON.parse(await new Response(stream).text());
}

function snapshot() {
  return {
    v: 1,
    policy: $('policy').value,
    proposal: $('proposal').value,
    identities: state.identities,
    endpoints: state.endpoints,
    filters: { rows: $('row-filter').value, columns: $('col-filter').value },
    request: { caller: $('caller').dataset.label || '', method: $('method').value, path: $('path').value },
  };
}

async function share() {
  const url = `${location.href.split('#')[0]}#s=${await pack(snapshot())}`;
  history.replaceState(null, '', url);
  let copied = false;
  try { await navigator.clipboard.writeText(url); copied = true; } catch (_) { /* no clipboard permission: the address bar has it */ }
  $('share-status').textContent = copied ? 'Link copied: it holds the whole state, and nothing was sent anywhere.' : 'The address bar now holds the whole state: copy it from there.';
}

async function restore() {
  const m = location.hash.match(/^#s=([A-Za-z0-9_-]+)$/);
  if (!m) return false;
  try {
    const s = await unpack(m[1]);
    $('policy').value = s.policy || '';
    $('proposal').value = s.proposal || '';
    if (s.proposal) $('proposal-panel').open = true;
    state.identities = Array.isArray(s.identities) ? s.identities : [];
    state.endpoints = Array.isArray(s.endpoints) ? s.endpoints : [];
    $('row-filter').value = (s.filters && s.filters.rows) || '';
    $('col-filter').value = (s.filters && s.filters.columns) || '';
    if (s.request) {
      $('method').value = s.request.method || 'GET';
      $('path').value = s.request.path || '/';
      $('caller').dataset.label = s.request.caller || '';
      state.restoredCaller = s.request.caller;
    }
    return true;
  } catch (e) {
    $('share-status').textContent = `The link's state could not be read (${e.message}); starting fresh.`;
    return false;
  }
}

// ---- examples ----
async function loadExamples() {
  try {
    const list = await (await fetch('examples/index.json')).json();
    $('example').innerHTML = '<option value="">choose…</option>' + list.map((x) => `<option value="${esc(x.file)}">${esc(x.name)}</option>`).join('');
    return list;
  } catch (_) {
    $('example').disabled = true;
    return [];
  }
}

// The demo's client certificates (envoy/gen-certs.sh), bundled by the build.
async function loadExampleCerts() {
  try {
    const list = await (await fetch('certs/index.json')).json();
    $('example-cert').innerHTML = '<option value="">choose…</option>' + list.map((x) => `<option value="${esc(x.file)}">${esc(x.name)}</option>`).join('');
  } catch (_) {
    $('example-cert').disabled = true;
  }
}

async function loadExample(file) {
  const text = await (await fetch(file)).text();
  $('policy').value = text;
  refresh();
}

// ---- wiring ----
async function main() {
  await init();
  for (const id of ['policy', 'proposal']) {
    $(id).addEventListener('input', refreshSoon);
    $(id).addEventListener('scroll', () => { $(`${id}-gutter`).scrollTop = $(id).scrollTop; });
  }
  $('proposal-copy').addEventListener('click', () => { $('proposal').value = $('policy').value; refresh(); $('proposal').focus(); });
  $('proposal-clear').addEventListener('click', () => { $('proposal').value = ''; refresh(); });
  $('pem-add').addEventListener('click', () => addIdentity({ pem: $('pem').value }));
  $('fields-add').addEventListener('click', () => addIdentity(fieldsSpec()));
  const drop = $('pem');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer.files[0];
    if (!file) return;
    const bytes = new Uint8Array(await file.arrayBuffer());
    const text = new TextDecoder().decode(bytes);
    drop.value = text.includes('-----BEGIN') ? text : derToPem(bytes);
    addIdentity({ pem: drop.value });
  });
  for (const id of ['caller', 'method', 'path']) $(id).addEventListener('input', decideRequest);
  $('endpoint-add').addEventListener('click', () => {
    const v = $('endpoint').value.trim();
    if (v && !state.endpoints.includes(v)) state.endpoints.push(v);
    $('endpoint').value = '';
    refresh();
  });
  $('endpoint').addEventListener('keydown', (e) => { if (e.key === 'Enter') $('endpoint-add').click(); });
  for (const id of ['row-filter', 'col-filter']) $(id).addEventListener('input', refreshSoon);
  const table = $('matrix');
  table.addEventListener('mouseover', onCellFocus);
  table.addEventListener('focusin', onCellFocus);
  table.addEventListener('keydown', moveFocus);
  table.addEventListener('click', (e) => { const td = e.target.closest('td[data-c]'); if (td) toggleSelected(td); });
  $('export-all').addEventListener('click', () => exportCases(false));
  $('export-selected').addEventListener('click', () => exportCases(true));
  $('share').addEventListener('click', share);
  $('example').addEventListener('change', (e) => { if (e.target.value) loadExample(e.target.value); });
  $('example-cert').addEventListener('change', async (e) => {
    if (!e.target.value) return;
    $('pem').value = await (await fetch(e.target.value)).text();
    addIdentity({ pem: $('pem').value });
    e.target.value = '';
  });
  window.addEventListener('hashchange', async () => { if (await restore()) { drawUserIdentities(); refresh(); } });

  const examples = await loadExamples();
  await loadExampleCerts();
  if (!(await restore())) {
    const first = examples.find((x) => x.name === 'microservices') || examples[0];
    $('policy').value = first ? await (await fetch(first.file)).text() : FALLBACK_POLICY;
    $('path').value = '/api/payment/create';
    $('method').value = 'POST';
  }
  drawUserIdentities();
  refresh();
  if (state.restoredCaller) {
    const i = state.callers.findIndex((c) => c.label === state.restoredCaller);
    if (i >= 0) { $('caller').value = String(i); decideRequest(); }
  }
  document.body.dataset.ready = 'true';
}

main().catch((e) => {
  document.body.dataset.ready = 'error';
  $('policy-status').textContent = `The engine could not start: ${e.message}`;
});
