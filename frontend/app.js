// @ts-check
/**
 * The demo page: build a job from pasted or random demo CIDs, follow its
 * stream in a Worker (stream-worker.js: fetch, decode, parse, encode columns),
 * and paint progress and virtual tables once per animation frame.
 *
 * The main thread never parses the stream nor holds a large CID list: one
 * long-lived Worker picks or reads CIDs, creates the job and follows the
 * stream. Its messages only append typed-array chunks to a `ColumnStore` and
 * mark things dirty; `paint()` runs in `requestAnimationFrame` and touches only
 * text that changed.
 *
 * Endpoints used (same origin, relative to this page):
 *   GET  api/domains, GET api/demo/cids?n=N (404: not a demo database),
 *   POST api/trace/job, GET <links.stream>?format=arrays[&since=T].
 */

import { ColumnStore } from './columns.js';
import { VirtualTable } from './table.js';
import { parseCids } from './cids.js';

/** @typedef {import('./columns.js').EncodedBatch} EncodedBatch */

/**
 * @typedef {object} DomainView
 * @property {string} name
 * @property {string[]} columns
 * @property {number|null} total
 * @property {number} received
 * @property {number|null} reportedEnd total_records of domain_end
 * @property {'waiting'|'streaming'|'done'|'stopped'} status
 * @property {number} startedAt performance.now() of its first records
 * @property {number} endedAt
 * @property {{t: number, n: number}[]} samples recent (time, received) pairs for the rate
 * @property {ColumnStore} store
 * @property {VirtualTable|null} table
 * @property {Record<string, HTMLElement>} ui
 */

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const fmt = new Intl.NumberFormat('en-US');
const RATE_WINDOW_MS = 3000;
/** Lists longer than this stay in the worker, out of the textarea: Chromium takes ~5 s to lay out 115k lines. */
const TEXTAREA_MAX_CIDS = 5000;

const ui = {
  cids: /** @type {HTMLTextAreaElement} */ ($('cids')),
  cidCount: $('cid-count'),
  cidFile: /** @type {HTMLInputElement} */ ($('cid-file')),
  random: $('random'),
  randomN: /** @type {HTMLInputElement} */ ($('random-n')),
  randomButton: /** @type {HTMLButtonElement} */ ($('random-button')),
  randomNote: $('random-note'),
  domainList: $('domain-list'),
  apiKey: /** @type {HTMLInputElement} */ ($('api-key')),
  access: /** @type {HTMLDetailsElement} */ ($('access')),
  start: /** @type {HTMLButtonElement} */ ($('start')),
  stop: /** @type {HTMLButtonElement} */ ($('stop')),
  message: $('message'),
  conn: $('conn'),
  connText: $('conn-text'),
  drop: /** @type {HTMLButtonElement} */ ($('drop')),
  download: /** @type {HTMLAnchorElement} */ ($('download')),
  jobId: $('job-id'),
  jobCids: $('job-cids'),
  jobRecords: $('job-records'),
  jobElapsed: $('job-elapsed'),
  jobConns: $('job-conns'),
  jobResumes: $('job-resumes'),
  jobSince: $('job-since'),
  progress: $('progress'),
  tabs: $('tabs'),
  tables: $('tables'),
  placeholder: $('placeholder'),
  log: $('log'),
};

const app = {
  /** @type {{name: string, columns: string[]}[]} */
  domainCatalog: [],
  /** @type {{count: number}|null} a CID list held by the worker, too long for the textarea */
  kept: null,
  /** the stream generation: messages of an older stream are ignored */
  gen: 0,
  running: false,
  /** @type {any} */
  job: null,
  /** @type {Map<string, DomainView>} */
  domains: new Map(),
  /** @type {string|null} */
  activeTab: null,
  conn: { state: 'idle', attempt: 0, connections: 0, since: /** @type {string|null} */ (null) },
  resumes: 0,
  drops: 0,
  startedAt: 0,
  endedAt: 0,
  /**
   * performance.now() of: Start pressed, job created (stream requested), the
   * stream's first line (`meta`) and first `records` reached the page, first
   * rows painted, `complete` received.
   * @type {{clickedAt: number, startedAt: number, firstLineAt: number|null, firstRecordsAt: number|null, firstRowsAt: number|null, doneAt: number|null}}
   */
  metrics: { clickedAt: 0, startedAt: 0, firstLineAt: null, firstRecordsAt: null, firstRowsAt: null, doneAt: null },
  dirty: false,
  raf: 0,
  /** @type {ReturnType<typeof setInterval>|undefined} */
  ticker: undefined,
};

// ---------------------------------------------------------------- query panel

// ---------------------------------------------------------------- the worker

const worker = new Worker(new URL('./stream-worker.js', import.meta.url), { type: 'module' });
let nextRequest = 1;
/** @type {Map<number, {resolve: (m: any) => void, reject: (e: Error) => void}>} */
const pending = new Map();

/**
 * Ask the worker for something; resolves with its reply, rejects on `failed`.
 * @param {string} type
 * @param {Record<string, unknown>} payload
 * @returns {Promise<any>}
 */
function request(type, payload) {
  const id = nextRequest++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ type, id, ...payload });
  });
}

worker.onmessage = (e) => {
  const msg = e.data;
  if (typeof msg.id === 'number' && pending.has(msg.id)) {
    const p = /** @type {{resolve: (m: any) => void, reject: (e: Error) => void}} */ (pending.get(msg.id));
    pending.delete(msg.id);
    if (msg.type === 'failed') p.reject(Object.assign(new Error(msg.error?.message), msg.error));
    else p.resolve(msg);
    return;
  }
  if (msg.gen === app.gen) onWorkerMessage(msg);
};
worker.onerror = (e) => {
  log(`worker error: ${e.message}`, 'error');
  for (const p of pending.values()) p.reject(new Error(`worker error: ${e.message}`));
  pending.clear();
  if (app.running) {
    setConn({ state: 'failed', attempt: 0 });
    finish();
  }
};

/** @param {string} path @returns {string} an absolute URL, as the worker needs */
function absolute(path) {
  return new URL(path, document.baseURI).href;
}

// ---------------------------------------------------------------- query panel

function cidCount() {
  return app.kept ? app.kept.count : parseCids(ui.cids.value).length;
}

let countTimer = 0;
function updateCidCount() {
  clearTimeout(countTimer);
  countTimer = window.setTimeout(() => {
    ui.cidCount.textContent = fmt.format(cidCount());
  }, 120);
}

ui.cids.addEventListener('input', () => {
  if (app.kept) {
    app.kept = null;
    ui.cids.classList.remove('summary');
    void request('clear', {});
  }
  updateCidCount();
});

/** @param {string} text @param {'error'|'info'} [kind] */
function say(text, kind = 'error') {
  ui.message.textContent = text;
  ui.message.dataset.kind = kind;
}

const KEY_STORAGE = 'trace.apiKey';
ui.apiKey.value = sessionStorage.getItem(KEY_STORAGE) ?? '';
ui.access.open = Boolean(ui.apiKey.value);
$('access-form').addEventListener('submit', (e) => {
  e.preventDefault();
  ui.apiKey.dispatchEvent(new Event('change'));
});
ui.apiKey.addEventListener('change', () => {
  sessionStorage.setItem(KEY_STORAGE, ui.apiKey.value.trim());
  void loadDomains();
  void probeDemo();
});

/** @returns {Record<string, string>} the headers every API request carries */
function authHeaders() {
  const key = ui.apiKey.value.trim();
  return key ? { authorization: `Bearer ${key}` } : {};
}

/**
 * @param {string} url
 * @param {RequestInit & {headers?: Record<string, string>}} [init]
 * @returns {Promise<any>}
 */
async function api(url, init = {}) {
  const res = await fetch(url, { ...init, headers: { ...authHeaders(), ...init.headers } });
  const type = res.headers.get('content-type') ?? '';
  const body = type.includes('json') ? await res.json().catch(() => null) : null;
  if (!res.ok) {
    const err = /** @type {Error & {status?: number, code?: string}} */ (
      new Error(body?.detail || body?.title || `HTTP ${res.status}`)
    );
    err.status = res.status;
    err.code = body?.code ?? `http_${res.status}`;
    if (res.status === 401) ui.access.open = true;
    throw err;
  }
  return body;
}

async function loadDomains() {
  try {
    const body = await api('api/domains');
    app.domainCatalog = body.domains ?? [];
  } catch (err) {
    ui.domainList.textContent = `could not load domains: ${errText(err)}`;
    return;
  }
  ui.domainList.replaceChildren(
    ...app.domainCatalog.map((d) => {
      const label = document.createElement('label');
      label.className = 'check';
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.name = 'domain';
      box.value = d.name;
      box.checked = true;
      box.dataset.testid = `domain-${d.name}`;
      const name = document.createElement('span');
      name.textContent = d.name;
      const cols = document.createElement('span');
      cols.className = 'muted';
      cols.textContent = `${d.columns.length} columns`;
      label.append(box, name, cols);
      return label;
    }),
  );
  // Blank progress rows hold the space that a job's rows will take: no jump at Start.
  if (!app.job) ui.progress.replaceChildren(...app.domainCatalog.map((d) => progressRow(d.name)));
}

async function probeDemo() {
  try {
    await api('api/demo/cids?n=1');
    ui.randomN.disabled = false;
    ui.randomButton.disabled = false;
    ui.random.classList.remove('unavailable');
    ui.randomNote.textContent = 'from the demo database';
  } catch (err) {
    // 404: not running on the demo database. Keep the space, explain, disable.
    ui.randomN.disabled = true;
    ui.randomButton.disabled = true;
    ui.random.classList.add('unavailable');
    ui.randomNote.textContent =
      /** @type {any} */ (err).status === 404 ? 'not available: not the demo database' : `not available: ${errText(err)}`;
  }
}

ui.randomButton.addEventListener('click', async () => {
  const n = Math.floor(Number(ui.randomN.value));
  if (!(n > 0)) {
    say('Enter how many random demo CIDs to pick.');
    return;
  }
  ui.randomButton.disabled = true;
  try {
    const url = absolute(`api/demo/cids?n=${n}`);
    const reply = await request('pick', { url, headers: authHeaders(), inlineMax: TEXTAREA_MAX_CIDS });
    useCids(reply, 'random demo CIDs');
    say(`Picked ${fmt.format(reply.count)} random demo CIDs.`, 'info');
  } catch (err) {
    if (/** @type {any} */ (err).status === 401) ui.access.open = true;
    say(`Could not pick demo CIDs: ${errText(err)}`);
  } finally {
    ui.randomButton.disabled = false;
  }
});

ui.cidFile.addEventListener('change', async () => {
  const file = ui.cidFile.files?.[0];
  if (!file) return;
  try {
    const reply = await request('file', { file, inlineMax: TEXTAREA_MAX_CIDS });
    useCids(reply, `CIDs from ${file.name}`);
    say(`Read ${fmt.format(reply.count)} CIDs from ${file.name}.`, 'info');
  } catch (err) {
    say(`Could not read ${file.name}: ${errText(err)}`);
  } finally {
    ui.cidFile.value = '';
  }
});

/**
 * Show the worker's reply to a pick or a file. A short list goes into the
 * textarea; a long one stays in the worker and the textarea shows a summary:
 * Chromium takes seconds to lay out 100k lines of text.
 * @param {{count: number, preview: string[], list: string[]|null}} reply
 * @param {string} what
 */
function useCids(reply, what) {
  if (reply.list) {
    app.kept = null;
    ui.cids.classList.remove('summary');
    ui.cids.value = reply.list.join('\n');
  } else {
    app.kept = { count: reply.count };
    const head = reply.preview.join('\n');
    ui.cids.value = `${fmt.format(reply.count)} ${what}\n${head}\n…\n(typing here replaces them)`;
    ui.cids.classList.add('summary');
  }
  updateCidCount();
}

ui.start.addEventListener('click', () => void startJob());

// A link cannot carry an Authorization header: with a key, download through fetch.
ui.download.addEventListener('click', async (event) => {
  const headers = authHeaders();
  if (!headers.authorization || !app.job) return;
  event.preventDefault();
  try {
    const res = await fetch(app.job.downloadUrl, { headers });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = ui.download.download;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    say(`Download failed: ${errText(err)}`);
  }
});
ui.stop.addEventListener('click', () => {
  if (app.running) worker.postMessage({ type: 'stop' });
});
ui.drop.addEventListener('click', () => {
  if (!app.running) return;
  app.drops += 1;
  log(`drop requested by the user (${app.drops})`, 'warn');
  worker.postMessage({ type: 'drop' });
});

// ---------------------------------------------------------------- job lifecycle

async function startJob() {
  const domains = [...ui.domainList.querySelectorAll('input[name=domain]:checked')].map(
    (b) => /** @type {HTMLInputElement} */ (b).value,
  );
  if (!cidCount()) return say('Paste some container IDs or pick random demo CIDs first.');
  if (!domains.length) return say('Choose at least one domain.');
  stopStream();
  say('');
  ui.start.disabled = true;
  const clickedAt = performance.now();
  let job;
  try {
    setConn({ state: 'creating job', attempt: 0 });
    // The worker serialises and sends the CIDs: 115k of them cost ~100 ms.
    const reply = await request('create', {
      url: absolute('api/trace/job'),
      domains,
      text: app.kept ? undefined : ui.cids.value,
      headers: authHeaders(),
    });
    if (reply.status !== 201 && reply.status !== 200) {
      const b = reply.body;
      if (reply.status === 401) ui.access.open = true;
      throw Object.assign(new Error(b?.detail || b?.title || `HTTP ${reply.status}`), {
        status: reply.status,
        code: b?.code ?? `http_${reply.status}`,
      });
    }
    job = reply.body;
  } catch (err) {
    setConn({ state: 'failed', attempt: 0 });
    ui.start.disabled = false;
    return say(`Could not create the job: ${errText(err)}`);
  }
  const streamPath = job.links?.stream ?? `api/trace/job/${encodeURIComponent(job.job_id)}/stream`;
  const streamUrl = new URL(streamPath, document.baseURI);
  const download = new URL(streamUrl);
  download.searchParams.delete('format');
  streamUrl.searchParams.set('format', 'arrays');
  app.job = { ...job, streamUrl: streamUrl.href, downloadUrl: download.href };
  resetView(job);
  log(`job ${job.job_id}: ${fmt.format(job.cid_count)} CIDs, ${job.domains.join(', ')}`);

  app.startedAt = performance.now();
  app.metrics = { clickedAt, startedAt: app.startedAt, firstLineAt: null, firstRecordsAt: null, firstRowsAt: null, doneAt: null };
  app.gen += 1;
  app.running = true;
  worker.postMessage({ type: 'start', gen: app.gen, url: app.job.streamUrl, headers: authHeaders() });
  ui.stop.disabled = false;
  ui.start.disabled = false;
  clearInterval(app.ticker);
  app.ticker = setInterval(markDirty, 500); // keeps rates, ETA and elapsed moving
}

/** Stop the current stream, if any; its late messages are ignored from now on. */
function stopStream() {
  if (app.running) worker.postMessage({ type: 'stop' });
  app.running = false;
  app.gen += 1;
  clearInterval(app.ticker);
}

function finish() {
  app.running = false;
  app.endedAt = performance.now();
  ui.stop.disabled = true;
  ui.drop.disabled = true;
  clearInterval(app.ticker);
  markDirty();
}

/** @param {any} job */
function resetView(job) {
  for (const d of app.domains.values()) d.table?.destroy();
  app.domains.clear();
  app.resumes = 0;
  app.drops = 0;
  app.endedAt = 0;
  app.conn = { state: 'connecting', attempt: 0, connections: 0, since: null };
  ui.log.replaceChildren();
  ui.progress.replaceChildren();
  ui.tabs.replaceChildren();
  for (const t of [...ui.tables.children]) if (t !== ui.placeholder) t.remove();
  ui.placeholder.hidden = true;

  ui.jobId.textContent = job.job_id;
  ui.jobCids.textContent = fmt.format(job.cid_count);
  ui.download.href = app.job.downloadUrl;
  ui.download.download = `trace-${job.job_id}.ndjson`;
  ui.download.classList.remove('disabled');
  ui.download.removeAttribute('aria-disabled');

  for (const name of job.domains) {
    const known = app.domainCatalog.find((d) => d.name === name);
    addDomain(name, known?.columns ?? []);
  }
  selectTab(job.domains[0] ?? null);
  markDirty();
}

/**
 * @param {string} name
 * @param {string[]} columns
 * @returns {DomainView}
 */
function addDomain(name, columns) {
  const row = progressRow(name);
  const q = (/** @type {string} */ s) => /** @type {HTMLElement} */ (row.querySelector(s));
  const count = q('.prog-count');
  count.dataset.testid = `count-${name}`;
  count.dataset.count = '0';
  ui.progress.append(row);

  const tab = document.createElement('button');
  tab.type = 'button';
  tab.className = 'tab';
  tab.setAttribute('role', 'tab');
  tab.dataset.testid = `tab-${name}`;
  tab.dataset.domain = name;
  tab.innerHTML = '<span class="tab-name"></span> <span class="tab-count mono"></span>';
  /** @type {HTMLElement} */ (tab.querySelector('.tab-name')).textContent = name;
  tab.addEventListener('click', () => selectTab(name));
  ui.tabs.append(tab);

  const wrap = document.createElement('div');
  wrap.className = 'table-wrap';
  wrap.dataset.domain = name;
  wrap.dataset.testid = `table-${name}`;
  wrap.hidden = true;
  const tools = document.createElement('div');
  tools.className = 'table-tools';
  tools.innerHTML = `<span class="muted rows-note"></span>
    <label class="check small"><input type="checkbox" data-testid="follow-${name}"> follow new rows</label>`;
  const host = document.createElement('div');
  wrap.append(host, tools);
  ui.tables.append(wrap);

  const store = new ColumnStore(columns);
  const table = new VirtualTable(host, { testId: `grid-${name}` });
  table.setData(store, columns);
  const follow = /** @type {HTMLInputElement} */ (tools.querySelector('input'));
  follow.addEventListener('change', () => table.setFollow(follow.checked));

  /** @type {DomainView} */
  const view = {
    name,
    columns,
    total: null,
    received: 0,
    reportedEnd: null,
    status: 'waiting',
    startedAt: 0,
    endedAt: 0,
    samples: [],
    store,
    table,
    ui: {
      row,
      fill: q('.prog-fill'),
      count,
      rate: q('.prog-rate'),
      eta: q('.prog-eta'),
      status: q('.prog-status'),
      tab,
      tabCount: /** @type {HTMLElement} */ (tab.querySelector('.tab-count')),
      wrap,
      note: /** @type {HTMLElement} */ (tools.querySelector('.rows-note')),
    },
  };
  app.domains.set(name, view);
  return view;
}

/**
 * One progress row, blank ('idle'); `paintDomain` fills it.
 * @param {string} name
 * @returns {HTMLElement}
 */
function progressRow(name) {
  const row = document.createElement('div');
  row.className = 'prog';
  row.dataset.domain = name;
  row.dataset.testid = `progress-${name}`;
  row.dataset.status = 'idle';
  row.innerHTML = `
    <span class="prog-name"></span>
    <span class="prog-bar"><span class="prog-fill"></span></span>
    <span class="prog-count mono">— / —</span>
    <span class="prog-rate mono">— rec/s</span>
    <span class="prog-eta mono">ETA —</span>
    <span class="prog-status">idle</span>`;
  /** @type {HTMLElement} */ (row.querySelector('.prog-name')).textContent = name;
  return row;
}

/** @param {string|null} name */
function selectTab(name) {
  app.activeTab = name;
  for (const d of app.domains.values()) {
    const on = d.name === name;
    d.ui.wrap.hidden = !on;
    d.ui.tab.setAttribute('aria-selected', String(on));
    if (on) d.table?.schedule();
  }
}

// ---------------------------------------------------------------- worker messages

/** @param {any} msg */
function onWorkerMessage(msg) {
  switch (msg.type) {
    case 'records':
      onRecords(msg.domain, msg.batch);
      break;
    case 'line':
      onLine(msg.line);
      break;
    case 'state':
      onState(msg);
      break;
    case 'end':
      if (!msg.ok) {
        if (msg.error?.name !== 'AbortError') {
          log(`failed: ${msg.error?.code ?? ''} ${msg.error?.message ?? ''}`, 'error');
        }
        for (const d of app.domains.values()) if (d.status !== 'done') d.status = 'stopped';
      }
      finish();
      break;
  }
  markDirty();
}

/** @param {string} name @param {EncodedBatch} batch */
function onRecords(name, batch) {
  const d = app.domains.get(name) ?? addDomain(name, []);
  if (app.metrics.firstRecordsAt === null) app.metrics.firstRecordsAt = performance.now();
  d.store.append(batch);
  d.received += batch.n;
  const now = performance.now();
  if (!d.startedAt) d.startedAt = now;
  d.status = 'streaming';
  d.samples.push({ t: now, n: d.received });
  while (d.samples.length > 2 && now - d.samples[0].t > RATE_WINDOW_MS) d.samples.shift();
  if (name === app.activeTab) d.table?.schedule();
}

/** @param {any} line */
function onLine(line) {
  if (app.metrics.firstLineAt === null) app.metrics.firstLineAt = performance.now();
  switch (line.type) {
    case 'meta':
      if (line.resumed) {
        app.resumes += 1;
        log(`resumed (${app.resumes}): the server continues after the last since token`, 'ok');
      } else {
        log(`stream opened: ${fmt.format(line.cid_count)} CIDs, ${line.domains?.join(', ')}`);
      }
      break;
    case 'domain_start': {
      let d = app.domains.get(line.domain);
      if (!d) d = addDomain(line.domain, line.columns);
      const sameColumns = d.columns.join('\u0000') === (line.columns ?? []).join('\u0000');
      if (!sameColumns) {
        // First sight of the real columns (or a changed schema before any row).
        if (d.received) log(`${d.name}: columns changed mid-stream; starting the table again`, 'warn');
        d.columns = line.columns;
        d.store = new ColumnStore(line.columns);
        d.received = 0;
        d.samples = [];
        d.table?.setData(d.store, d.columns);
      }
      const again = d.status !== 'waiting' || d.total !== null;
      const counted = d.total === null && typeof line.total === 'number';
      d.total = typeof line.total === 'number' ? line.total : d.total;
      if (d.status === 'waiting') d.status = 'streaming';
      // After a resume the current domain starts "again": it continues.
      if (!again) {
        log(`${d.name}: ${d.total === null ? 'counting' : fmt.format(d.total)} records in ${line.total_batches ?? '?'} batches`);
      } else if (counted) {
        // A count that took longer than the server's wait arrives in a repeated domain_start.
        log(`${d.name}: counted ${fmt.format(d.total)} records in ${line.total_batches} batches`);
      }
      if (app.activeTab === null) selectTab(d.name);
      break;
    }
    case 'domain_end': {
      const d = app.domains.get(line.domain);
      if (!d || d.status === 'done') break;
      d.status = 'done';
      d.endedAt = performance.now();
      d.reportedEnd = line.total_records ?? null;
      const ok = d.reportedEnd === null || d.reportedEnd === d.received;
      log(
        `${d.name}: done, ${fmt.format(d.received)} records` +
          (ok ? '' : ` but the server counted ${fmt.format(d.reportedEnd ?? 0)}`),
        ok ? 'ok' : 'error',
      );
      break;
    }
    case 'reconnect':
      log(`server asked to reconnect (${line.reason ?? 'no reason'})`, 'warn');
      break;
    case 'error':
      log(`stream error ${line.code}: ${line.message} (${line.retryable ? 'retrying' : 'not retryable'})`, line.retryable ? 'warn' : 'error');
      break;
    case 'complete': {
      app.metrics.doneAt = performance.now();
      const total = [...app.domains.values()].reduce((n, d) => n + d.received, 0);
      log(
        `complete: ${fmt.format(total)} records` +
          (typeof line.elapsed_seconds === 'number'
            ? `, server time ${line.elapsed_seconds.toFixed(1)} s${app.resumes ? ' (last connection)' : ''}`
            : ''),
        'ok',
      );
      for (const d of app.domains.values()) {
        if (d.status !== 'done') {
          d.status = 'done';
          d.endedAt = performance.now();
        }
      }
      break;
    }
    case 'aggregation':
      break;
    default:
      break;
  }
}

/** @param {any} s */
function onState(s) {
  const prev = app.conn.state;
  app.conn = { state: s.state, attempt: s.attempt, connections: s.connections, since: s.since };
  if (s.state === 'reconnecting') {
    const why = s.error ? `${s.error.code}` : 'unknown';
    log(`connection ended (${why}); reconnecting in ${(s.delayMs / 1000).toFixed(2)} s, attempt ${s.attempt}`, 'warn');
  } else if (s.state === 'failed' && prev !== 'failed') {
    say(`Stream failed: ${s.error?.code ?? ''} ${s.error?.message ?? ''}`.trim());
  } else if (s.state === 'aborted') {
    log('stopped by the user', 'warn');
  }
  setConn(s);
}

// ---------------------------------------------------------------- painting

/** @param {{state: string, attempt: number, delayMs?: number, error?: any}} s */
function setConn(s) {
  let text = s.state;
  let kind = s.state;
  if (s.state === 'reconnecting' || (s.state === 'connecting' && s.attempt > 0)) {
    text = `reconnecting (attempt ${s.attempt})`;
    kind = 'reconnecting';
  } else if (s.state === 'aborted') {
    text = 'stopped';
  } else if (s.state === 'failed' && s.error?.code) {
    text = `failed: ${s.error.code}`;
  }
  ui.conn.title = s.error?.message ?? '';
  ui.conn.dataset.state = kind;
  ui.conn.dataset.attempt = String(s.attempt);
  ui.connText.textContent = text;
  ui.drop.disabled = s.state !== 'streaming';
}

function markDirty() {
  if (app.raf) return;
  app.raf = requestAnimationFrame(paint);
}

function paint() {
  app.raf = 0;
  const now = performance.now();
  let total = 0;
  for (const d of app.domains.values()) {
    total += d.received;
    paintDomain(d, now);
  }
  setText(ui.jobRecords, fmt.format(total));
  ui.jobRecords.dataset.count = String(total);
  if (app.startedAt) {
    const end = app.endedAt || now;
    setText(ui.jobElapsed, `${((end - app.startedAt) / 1000).toFixed(1)} s`);
  }
  setText(ui.jobConns, String(app.conn.connections || '—'));
  setText(ui.jobResumes, String(app.resumes));
  setText(ui.jobSince, app.conn.since ?? '—');
  ui.jobSince.title = app.conn.since ?? '';
  if (total && app.metrics.firstRowsAt === null) {
    app.metrics.firstRowsAt = now;
    performance.mark('trace:first-rows');
  }
}

/** @param {DomainView} d @param {number} now */
function paintDomain(d, now) {
  const u = d.ui;
  const frac = d.total ? Math.min(1, d.received / d.total) : d.status === 'done' ? 1 : 0;
  u.fill.style.transform = `scaleX(${frac})`;
  const countText = `${fmt.format(d.received)} / ${d.total === null ? '—' : fmt.format(d.total)}`;
  setText(u.count, countText);
  u.count.dataset.count = String(d.received);
  setText(u.tabCount, fmt.format(d.received));

  let rate = 0;
  if (d.status === 'done' && d.startedAt) {
    rate = d.received / Math.max(0.001, (d.endedAt - d.startedAt) / 1000);
  } else if (d.samples.length >= 2) {
    const a = d.samples[0];
    const b = d.samples[d.samples.length - 1];
    // A stalled stream shows its rate falling, not frozen at the last value.
    const span = Math.max(b.t, now) - a.t;
    rate = span > 0 ? ((b.n - a.n) * 1000) / span : 0;
  }
  setText(u.rate, rate ? `${fmt.format(Math.round(rate))} rec/s` : '— rec/s');
  let eta = '';
  if (d.status === 'done') {
    eta = d.startedAt ? `took ${((d.endedAt - d.startedAt) / 1000).toFixed(1)} s` : '';
  } else if (d.total !== null && rate > 0) {
    eta = `ETA ${duration((d.total - d.received) / rate)}`;
  } else {
    eta = 'ETA —';
  }
  setText(u.eta, eta);
  const status = d.status === 'done' ? (d.reportedEnd !== null && d.reportedEnd !== d.received ? 'mismatch' : 'done') : d.status;
  setText(u.status, status);
  u.row.dataset.status = status;
  setText(
    u.note,
    `${fmt.format(d.store.length)} rows in ${fmt.format(d.store.chunks.length)} batches · ${d.columns.length} columns`,
  );
}

/** @param {number} seconds */
function duration(seconds) {
  if (!Number.isFinite(seconds)) return '—';
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - m * 60)} s`;
}

/** @param {HTMLElement} e @param {string} text */
function setText(e, text) {
  if (e.textContent !== text) e.textContent = text;
}

/** @param {string} text @param {'info'|'ok'|'warn'|'error'} [kind] */
function log(text, kind = 'info') {
  const li = document.createElement('li');
  li.dataset.kind = kind;
  const t = document.createElement('time');
  const secs = app.startedAt ? (performance.now() - app.startedAt) / 1000 : 0;
  t.textContent = `${secs.toFixed(2).padStart(7)} s`;
  const span = document.createElement('span');
  span.textContent = text;
  li.append(t, span);
  ui.log.append(li);
  while (ui.log.childElementCount > 300) ui.log.firstElementChild?.remove();
  ui.log.scrollTop = ui.log.scrollHeight;
}

/** @param {unknown} err */
function errText(err) {
  const e = /** @type {any} */ (err);
  return e?.code ? `${e.code}: ${e.message}` : String(e?.message ?? e);
}

// ---------------------------------------------------------------- test hooks

/**
 * Read-only hooks for end-to-end tests and the console:
 * `traceApp.rowCount('history')`, `traceApp.column('history', 'CONTAINERID')`,
 * `traceApp.duplicateKeys('history', ['CONTAINERID', 'SEQ'])`, `traceApp.metrics`.
 */
const hooks = {
  get metrics() {
    return { ...app.metrics };
  },
  get state() {
    return app.conn.state;
  },
  get job() {
    return app.job;
  },
  /** @param {string} domain */
  rowCount(domain) {
    return app.domains.get(domain)?.store.length ?? 0;
  },
  /** @param {string} domain @param {string} column */
  column(domain, column) {
    return app.domains.get(domain)?.store.column(column) ?? [];
  },
  /**
   * How many rows repeat an earlier row's key.
   * @param {string} domain @param {string[]} keyColumns
   */
  duplicateKeys(domain, keyColumns) {
    const d = app.domains.get(domain);
    if (!d) return 0;
    const idx = keyColumns.map((c) => d.store.columns.indexOf(c));
    if (idx.some((i) => i < 0)) throw new Error(`unknown key column in ${keyColumns}`);
    const seen = new Set();
    let dup = 0;
    for (let r = 0; r < d.store.length; r++) {
      const key = idx.map((j) => String(d.store.get(r, j))).join('\u0000');
      if (seen.has(key)) dup += 1;
      else seen.add(key);
    }
    return dup;
  },
  /** @param {string} domain how each column is stored */
  storeStats(domain) {
    return app.domains.get(domain)?.store.stats() ?? [];
  },
  dropConnection() {
    ui.drop.click();
  },
};
/** @type {any} */ (window).traceApp = hooks;

loadDomains();
probeDemo();
updateCidCount();
