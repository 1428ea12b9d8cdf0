// @ts-check
/**
 * The demo page: build a job from pasted or random demo CIDs, follow its
 * stream in a Worker (stream-worker.js: fetch, decode, parse, encode columns),
 * and paint progress and virtual tables once per animation frame.
 *
 * The main thread never parses the stream nor holds a large CID list: one
 * long-lived Worker picks or reads CIDs, creates the job and follows the
 * stream. Its messages only append typed-array chunks to a `ColumnStore` and
 * mark things dirty; `paint()` runs in `requestAnimationFrame`.
 *
 * This module holds the page's state and wires the controls, the worker
 * (worker-client.js) and the stream's lines to the progress model
 * (progress.js) and the DOM (view.js).
 *
 * Endpoints used (same origin, relative to this page):
 *   GET  api/domains, GET api/demo/cids?n=N (404: not a demo database),
 *   POST api/trace/job, GET <links.stream>?format=arrays[&since=T],
 *   GET <links.self>/export.csv?domain=D (the "Download CSV" links).
 */

import { ColumnStore } from './columns.js';
import { showAggregations, clearAggregations } from './aggregations.js';
import { parseCids } from './cids.js';
import { FORMATS, describeExport, followExport, startExport } from './exports.js';
import { problemError, readJsonBody } from './problem.js';
import { formatCount } from './progress.js';
import { WorkerClient } from './worker-client.js';
import {
  ui,
  say,
  log,
  restartLog,
  errText,
  setConn,
  showDomainList,
  checkedDomains,
  holdProgressSpace,
  showDemoPick,
  showJob,
  exportRow,
  createDomainView,
  selectTab,
  paint,
} from './view.js';

/** @typedef {import('./columns.js').EncodedBatch} EncodedBatch */
/** @typedef {import('./view.js').DomainView} DomainView */

/** Lists longer than this stay in the worker, out of the textarea: Chromium takes ~5 s to lay out 115k lines. */
const TEXTAREA_MAX_CIDS = 5000;

const app = {
  /** @type {{name: string, columns: string[]}[]} */
  domainCatalog: [],
  /** @type {{count: number}|null} a CID list held by the worker, too long for the textarea */
  kept: null,
  running: false,
  /** @type {any} */
  job: null,
  /** @type {import('./aggregation-model.js').JobAggregation|null} the stream's aggregation line */
  aggregation: null,
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
  raf: 0,
  /** @type {ReturnType<typeof setInterval>|undefined} */
  ticker: undefined,
};

const worker = new WorkerClient(new URL('./stream-worker.js', import.meta.url), {
  onStream: onWorkerMessage,
  onCrash(message) {
    log(`worker error: ${message}`, 'error');
    if (app.running) {
      setConn({ state: 'failed', attempt: 0 });
      finish();
    }
  },
});

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
    ui.cidCount.textContent = formatCount(cidCount());
  }, 120);
}

ui.cids.addEventListener('input', () => {
  if (app.kept) {
    app.kept = null;
    ui.cids.classList.remove('summary');
    void worker.request('clear', {});
  }
  updateCidCount();
});

const KEY_STORAGE = 'trace.apiKey';
ui.apiKey.value = sessionStorage.getItem(KEY_STORAGE) ?? '';
ui.access.open = Boolean(ui.apiKey.value);
ui.accessForm.addEventListener('submit', (e) => {
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
 * An HTTP error, as an Error with `status` and `code`; a 401 opens the API key field.
 * @param {number} status
 * @param {any} body
 */
function httpError(status, body) {
  if (status === 401) ui.access.open = true;
  return problemError(status, body);
}

/**
 * @param {string} url
 * @returns {Promise<any>} the JSON body of a successful GET
 */
async function api(url) {
  const res = await fetch(url, { headers: authHeaders() });
  const body = await readJsonBody(res);
  if (!res.ok) throw httpError(res.status, body);
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
  showDomainList(app.domainCatalog);
  if (!app.job) holdProgressSpace(app.domainCatalog.map((d) => d.name));
}

async function probeDemo() {
  try {
    await api('api/demo/cids?n=1');
    showDemoPick(true, 'from the demo database');
  } catch (err) {
    const status = /** @type {any} */ (err).status;
    showDemoPick(false, status === 404 ? 'not available: not the demo database' : `not available: ${errText(err)}`);
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
    const reply = await worker.request('pick', { url, headers: authHeaders(), inlineMax: TEXTAREA_MAX_CIDS });
    useCids(reply, 'random demo CIDs');
    say(`Picked ${formatCount(reply.count)} random demo CIDs.`, 'info');
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
    const reply = await worker.request('file', { file, inlineMax: TEXTAREA_MAX_CIDS });
    useCids(reply, `CIDs from ${file.name}`);
    say(`Read ${formatCount(reply.count)} CIDs from ${file.name}.`, 'info');
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
    ui.cids.value = `${formatCount(reply.count)} ${what}\n${head}\n…\n(typing here replaces them)`;
    ui.cids.classList.add('summary');
  }
  updateCidCount();
}

ui.start.addEventListener('click', () => void startJob());

/**
 * A link cannot carry an Authorization header: with a key, download through fetch.
 * A body cut short (a CSV download that failed part-way) rejects: no partial file.
 * @param {MouseEvent} event
 * @param {HTMLAnchorElement} link
 */
async function downloadWithKey(event, link) {
  const headers = authHeaders();
  if (!headers.authorization || !app.job) return;
  event.preventDefault();
  try {
    const res = await fetch(link.href, { headers });
    if (!res.ok) throw httpError(res.status, await readJsonBody(res));
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = link.download;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    say(`Download failed: ${errText(err)}`);
  }
}
ui.download.addEventListener('click', (event) => void downloadWithKey(event, ui.download));
ui.stop.addEventListener('click', () => {
  if (app.running) worker.stopStream();
});

// ---------------------------------------------------------------- exports

/** @type {AbortController|null} stops following the previous job's exports */
let exportsFollowed = null;

function resetExports() {
  exportsFollowed?.abort();
  exportsFollowed = new AbortController();
  for (const format of FORMATS) {
    const row = exportRow(format);
    row.button.disabled = false;
    row.state.textContent = '';
    row.link.hidden = true;
    row.link.removeAttribute('href');
  }
}

/** @param {string} format */
async function runExport(format) {
  if (!app.job) return;
  const row = exportRow(format);
  const signal = exportsFollowed?.signal;
  const jobUrl = absolute(`api/trace/job/${encodeURIComponent(app.job.job_id)}`);
  row.button.disabled = true;
  row.link.hidden = true;
  try {
    const queued = await startExport(jobUrl, format, { headers: authHeaders() });
    row.state.textContent = describeExport(queued);
    log(`export ${queued.export_id} (${format}) queued`);
    const status = await followExport(absolute(queued.links.self), {
      headers: authHeaders(),
      signal,
      onStatus: (s) => { row.state.textContent = describeExport(s); },
    });
    if (status.state === 'done') {
      row.link.href = absolute(status.links.file);
      row.link.download = '';
      row.link.hidden = false;
      log(`export ${status.export_id} done: ${status.size} bytes, sha256 ${status.sha256}`);
    } else {
      log(`export ${status.export_id} failed: ${status.error?.code}`, 'warn');
    }
  } catch (err) {
    if (/** @type {any} */ (err)?.name === 'AbortError') return;
    row.state.textContent = `failed: ${errText(err)}`;
  } finally {
    if (!signal?.aborted) row.button.disabled = false;
  }
}

for (const format of FORMATS) {
  const row = exportRow(format);
  row.button.addEventListener('click', () => void runExport(format));
  // A link cannot carry an Authorization header: with a key, download through fetch.
  row.link.addEventListener('click', async (event) => {
    const headers = authHeaders();
    if (!headers.authorization) return;
    event.preventDefault();
    try {
      const res = await fetch(row.link.href, { headers });
      if (!res.ok) throw httpError(res.status, await readJsonBody(res));
      const url = URL.createObjectURL(await res.blob());
      const a = document.createElement('a');
      a.href = url;
      a.download = `trace-${app.job?.job_id ?? 'export'}.${format === 'csv.zip' ? 'zip' : format}`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      say(`Download failed: ${errText(err)}`);
    }
  });
}
ui.drop.addEventListener('click', () => {
  if (!app.running) return;
  app.drops += 1;
  log(`drop requested by the user (${app.drops})`, 'warn');
  worker.dropConnection();
});

// ---------------------------------------------------------------- job lifecycle

async function startJob() {
  const domains = checkedDomains();
  if (!cidCount()) return say('Paste some container IDs or pick random demo CIDs first.');
  if (!domains.length) return say('Choose at least one domain.');
  worker.discardStream(); // a previous stream's late messages must not reach the new job
  app.running = false;
  clearInterval(app.ticker);
  say('');
  ui.start.disabled = true;
  const clickedAt = performance.now();
  let job;
  try {
    setConn({ state: 'creating job', attempt: 0 });
    // The worker serialises and sends the CIDs: 115k of them cost ~100 ms.
    const reply = await worker.request('create', {
      url: absolute('api/trace/job'),
      domains,
      text: app.kept ? undefined : ui.cids.value,
      headers: authHeaders(),
    });
    if (reply.status !== 201 && reply.status !== 200) throw httpError(reply.status, reply.body);
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
  // A domain's whole CSV file: GET <job>/export.csv?domain=D (see addDomain).
  const jobPath = job.links?.self ?? `api/trace/job/${encodeURIComponent(job.job_id)}`;
  const csvUrl = new URL(`${jobPath}/export.csv`, document.baseURI);
  app.job = { ...job, streamUrl: streamUrl.href, downloadUrl: download.href, csvUrl: csvUrl.href };

  app.startedAt = performance.now();
  resetJob(job);
  resetExports();
  log(`job ${job.job_id}: ${formatCount(job.cid_count)} CIDs, ${job.domains.join(', ')}`);
  app.metrics = { clickedAt, startedAt: app.startedAt, firstLineAt: null, firstRecordsAt: null, firstRowsAt: null, doneAt: null };
  app.running = true;
  worker.startStream(app.job.streamUrl, authHeaders());
  ui.stop.disabled = false;
  ui.start.disabled = false;
  clearInterval(app.ticker);
  app.ticker = setInterval(markDirty, 500); // keeps rates, ETA and elapsed moving
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
function resetJob(job) {
  showJob(app.domains.values(), job, app.job.downloadUrl);
  restartLog(app.startedAt);
  app.domains.clear();
  app.resumes = 0;
  app.drops = 0;
  app.endedAt = 0;
  app.aggregation = null;
  clearAggregations(ui.aggregations);
  app.conn = { state: 'connecting', attempt: 0, connections: 0, since: null };
  for (const name of job.domains) {
    const known = app.domainCatalog.find((d) => d.name === name);
    addDomain(name, known?.columns ?? []);
  }
  showTab(job.domains[0] ?? null);
  markDirty();
}

/**
 * @param {string} name
 * @param {string[]} columns
 * @returns {DomainView}
 */
function addDomain(name, columns) {
  const csv = new URL(app.job.csvUrl);
  csv.searchParams.set('domain', name);
  const file = `${app.job.job_id}-${name}.csv`;
  const view = createDomainView(name, columns, () => showTab(name), { href: csv.href, filename: file });
  const link = /** @type {HTMLAnchorElement} */ (view.ui.csv);
  link.addEventListener('click', (event) => void downloadWithKey(event, link));
  app.domains.set(name, view);
  return view;
}

/** @param {string|null} name */
function showTab(name) {
  app.activeTab = name;
  selectTab(app.domains.values(), name);
}

// ---------------------------------------------------------------- worker messages

/** @param {any} msg */
function onWorkerMessage(msg) {
  switch (msg.type) {
    case 'records':
      onRecords(msg.domain, msg.batch, msg.since);
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
        for (const d of app.domains.values()) d.progress.stop();
      }
      finish();
      break;
  }
  markDirty();
}

/**
 * @param {string} name
 * @param {EncodedBatch} batch
 * @param {string|undefined} since the token after this batch
 */
function onRecords(name, batch, since) {
  const d = app.domains.get(name) ?? addDomain(name, []);
  const now = performance.now();
  if (app.metrics.firstRecordsAt === null) app.metrics.firstRecordsAt = now;
  d.store.append(batch);
  d.progress.addRecords(batch.n, now);
  // Shown by the next paint, at most once per frame however fast batches come.
  if (typeof since === 'string') app.conn.since = since;
  if (name === app.activeTab) d.table.schedule();
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
        log(`stream opened: ${formatCount(line.cid_count)} CIDs, ${line.domains?.join(', ')}`);
      }
      break;
    case 'domain_start':
      onDomainStart(line);
      break;
    case 'domain_end': {
      const d = app.domains.get(line.domain);
      if (!d || !d.progress.end(performance.now(), line.total_records ?? null)) break;
      const p = d.progress;
      log(
        `${d.name}: done, ${formatCount(p.received)} records` +
          (p.mismatch ? ` but the server counted ${formatCount(p.reportedEnd ?? 0)}` : ''),
        p.mismatch ? 'error' : 'ok',
      );
      break;
    }
    case 'aggregation':
      if (app.aggregation === null) {
        app.aggregation = line.data;
        showAggregations(ui.aggregations, line.data);
        const n = Object.values(line.data?.aggregations ?? {}).reduce((k, d) => k + Object.keys(d).length, 0);
        log(`aggregations: ${n} computed over the whole job`, 'ok');
      }
      break;
    case 'reconnect':
      log(`server asked to reconnect (${line.reason ?? 'no reason'})`, 'warn');
      break;
    case 'error':
      log(`stream error ${line.code}: ${line.message} (${line.retryable ? 'retrying' : 'not retryable'})`, line.retryable ? 'warn' : 'error');
      break;
    case 'complete': {
      const now = performance.now();
      app.metrics.doneAt = now;
      const total = [...app.domains.values()].reduce((n, d) => n + d.progress.received, 0);
      log(
        `complete: ${formatCount(total)} records` +
          (typeof line.elapsed_seconds === 'number'
            ? `, server time ${line.elapsed_seconds.toFixed(1)} s${app.resumes ? ' (last connection)' : ''}`
            : ''),
        'ok',
      );
      for (const d of app.domains.values()) d.progress.end(now);
      break;
    }
  }
}

/** @param {any} line a `domain_start`: the first, a resume's repeat, or a late total */
function onDomainStart(line) {
  const d = app.domains.get(line.domain) ?? addDomain(line.domain, line.columns);
  const sameColumns = d.columns.join('\u0000') === (line.columns ?? []).join('\u0000');
  if (!sameColumns) {
    // First sight of the real columns (or a changed schema before any row).
    if (d.progress.received) log(`${d.name}: columns changed mid-stream; starting the table again`, 'warn');
    d.columns = line.columns;
    d.store = new ColumnStore(line.columns);
    d.progress.restart();
    d.table.setData(d.store, d.columns);
  }
  const seen = d.progress.begin(line.total);
  const total = d.progress.total;
  if (seen === 'first') {
    log(`${d.name}: ${total === null ? 'counting' : formatCount(total)} records in ${line.total_batches ?? '?'} batches`);
  } else if (seen === 'counted') {
    // A count that took longer than the server's wait arrives in a repeated domain_start.
    log(`${d.name}: counted ${formatCount(total ?? 0)} records in ${line.total_batches} batches`);
  }
  if (app.activeTab === null) showTab(d.name);
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

function markDirty() {
  if (app.raf) return;
  app.raf = requestAnimationFrame(() => {
    app.raf = 0;
    const now = performance.now();
    const total = paint(app, now);
    if (total && app.metrics.firstRowsAt === null) {
      app.metrics.firstRowsAt = now;
      performance.mark('trace:first-rows');
    }
  });
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
  /** the stream's `aggregation` line's data, once it arrived */
  get aggregation() {
    return app.aggregation;
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
