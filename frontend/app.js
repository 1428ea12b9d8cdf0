// @ts-check
/**
 * The demo page's wiring: build a job from pasted or random demo CIDs, follow
 * its stream in a Worker (stream-worker.js: fetch, decode, parse, encode
 * columns), and paint progress and virtual tables once per animation frame.
 *
 * The main thread never parses the stream nor holds a large CID list: one
 * long-lived Worker picks or reads CIDs, creates the job and follows the
 * stream. Its messages go to the job's state (job-state.js), which appends
 * typed-array chunks to a `ColumnStore`; `paint()` (view.js) runs in
 * `requestAnimationFrame`. This module connects the controls, the worker
 * (worker-client.js), the job's state and the DOM; nothing runs until
 * `main()`, which index.html calls.
 *
 * Endpoints used (same origin, relative to this page):
 *   GET  api/domains, GET api/demo/cids?n=N (404: not a demo database),
 *   POST api/trace/job, GET <links.stream>?format=arrays[&since=T],
 *   GET <links.self>/export.csv?domain=D (the "Download CSV" links),
 *   the exports (export-panel.js).
 */

import { askForKeyOn401, authHeaders, httpError, wireApiKey } from './access.js';
import { showAggregations, clearAggregations } from './aggregations.js';
import { downloadWithKey } from './downloads.js';
import { ExportPanel } from './export-panel.js';
import { FORMATS } from './exports.js';
import { JobState, duplicateKeys } from './job-state.js';
import { domainCsv, jobLinks } from './job-links.js';
import { formatCount } from './progress.js';
import { QueryPanel } from './query-panel.js';
import { WorkerClient } from './worker-client.js';
import {
  ui,
  say,
  log,
  restartLog,
  errText,
  setConn,
  checkedDomains,
  showJob,
  exportRow,
  createDomainView,
  selectTab,
  paint,
} from './view.js';

/** @typedef {import('./view.js').DomainView} DomainView */

/** @type {import('./job-state.js').JobEvents<DomainView>} what the job's state changes do to the page */
const jobEvents = {
  addDomain: domainView,
  log,
  say,
  columnsChanged: (d) => d.table.setData(d.store, d.columns),
  domainStarted: (d) => {
    if (page.activeTab === null) showTab(d.name);
  },
  rowsAdded: (d) => {
    if (d.name === page.activeTab) d.table.schedule();
  },
  aggregation: (data) => showAggregations(ui.aggregations, data),
  connChanged: setConn,
};

const page = {
  /** @type {any} the created job, with its links (job-links.js) */
  job: null,
  /** @type {JobState<DomainView>} the current job's state; before any, an idle one */
  state: new JobState(jobEvents, null),
  /** @type {string|null} */
  activeTab: null,
  raf: 0,
  /** @type {ReturnType<typeof setInterval>|undefined} */
  ticker: undefined,
};

/** @type {WorkerClient} the page's one Worker, started by main() */
let worker;
/** @type {QueryPanel} */
let query;
/** @type {ExportPanel} */
let exportPanel;

/** @param {string} path @returns {string} an absolute URL, as the worker needs */
function absolute(path) {
  return new URL(path, document.baseURI).href;
}

// ---------------------------------------------------------------- downloads

/**
 * With an API key, `link` downloads through fetch (a link cannot carry the header).
 * @param {HTMLAnchorElement} link
 * @param {() => string} fileName what the file is saved as
 */
function keyedLink(link, fileName) {
  downloadWithKey(link, {
    headers: () => (page.job ? authHeaders() : {}), // before the first job no link has a file
    fileName,
    onError(err) {
      askForKeyOn401(err);
      say(`Download failed: ${errText(err)}`);
    },
  });
}

// ---------------------------------------------------------------- job lifecycle

async function startJob() {
  const domains = checkedDomains();
  if (!query.count()) return say('Paste some container IDs or pick random demo CIDs first.');
  if (!domains.length) return say('Choose at least one domain.');
  worker.discardStream(); // a previous stream's late messages must not reach the new job
  page.state.running = false;
  clearInterval(page.ticker);
  say('');
  ui.start.disabled = true;
  const clickedAt = performance.now();
  let job;
  try {
    setConn({ state: 'creating job', attempt: 0 });
    // The worker serialises and sends the CIDs, off the main thread
    // (docs/benchmarks.md#long-cid-lists-stay-in-the-worker).
    const reply = await worker.request('create', {
      url: absolute('api/trace/job'),
      domains,
      text: query.text(),
      headers: authHeaders(),
    });
    if (reply.status !== 201 && reply.status !== 200) throw httpError(reply.status, reply.body);
    job = reply.body;
  } catch (err) {
    setConn({ state: 'failed', attempt: 0 });
    ui.start.disabled = false;
    return say(`Could not create the job: ${errText(err)}`);
  }
  page.job = { ...job, ...jobLinks(job, document.baseURI) };

  const startedAt = performance.now();
  showJob(page.state.domains.values(), job, page.job.downloadUrl);
  restartLog(startedAt);
  clearAggregations(ui.aggregations);
  page.state = new JobState(jobEvents, { clickedAt, startedAt });
  for (const name of job.domains) page.state.addDomain(name, query.columnsOf(name));
  showTab(job.domains[0] ?? null);
  markDirty();
  exportPanel.reset();
  log(`job ${job.job_id}: ${formatCount(job.cid_count)} CIDs, ${job.domains.join(', ')}`);
  page.state.running = true;
  worker.startStream(page.job.streamUrl, authHeaders());
  ui.stop.disabled = false;
  ui.start.disabled = false;
  page.ticker = setInterval(markDirty, 500); // keeps rates, ETA and elapsed moving
}

/** The stream is over: the controls and the clock stop. */
function finish() {
  ui.stop.disabled = true;
  ui.drop.disabled = true;
  clearInterval(page.ticker);
  markDirty();
}

/**
 * A domain's state with its progress row, tab and table (`JobEvents.addDomain`).
 * @param {string} name
 * @param {string[]} columns
 * @returns {DomainView}
 */
function domainView(name, columns) {
  const csv = domainCsv(page.job, name);
  const view = createDomainView(name, columns, () => showTab(name), csv);
  keyedLink(/** @type {HTMLAnchorElement} */ (view.ui.csv), () => csv.filename);
  return view;
}

/** @param {string|null} name */
function showTab(name) {
  page.activeTab = name;
  selectTab(page.state.domains.values(), name);
}

/** @param {any} msg a stream message of the current stream (stream-worker.js) */
function onWorkerMessage(msg) {
  const now = performance.now();
  switch (msg.type) {
    case 'records':
      page.state.onRecords(msg.domain, msg.batch, msg.since, now);
      break;
    case 'line':
      page.state.onLine(msg.line, now);
      break;
    case 'state':
      page.state.onState(msg);
      break;
    case 'end':
      page.state.onEnd(msg, now);
      finish();
      break;
  }
  markDirty();
}

/** @param {string} message */
function onWorkerCrash(message) {
  log(`worker error: ${message}`, 'error');
  if (page.state.running) {
    setConn({ state: 'failed', attempt: 0 });
    page.state.finish(performance.now());
    finish();
  }
}

/** Paint at the next animation frame, once however many changes come before it. */
function markDirty() {
  if (page.raf) return;
  page.raf = requestAnimationFrame(() => {
    page.raf = 0;
    const now = performance.now();
    const total = paint(page.state, now);
    if (total && page.state.metrics.firstRowsAt === null) {
      page.state.metrics.firstRowsAt = now;
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
function testHooks() {
  const domain = (/** @type {string} */ name) => page.state.domains.get(name);
  return {
    get metrics() {
      return { ...page.state.metrics };
    },
    get state() {
      return page.state.conn.state;
    },
    get job() {
      return page.job;
    },
    /** the stream's `aggregation` line's data, once it arrived */
    get aggregation() {
      return page.state.aggregation;
    },
    /** @param {string} name */
    rowCount: (name) => domain(name)?.store.length ?? 0,
    /** @param {string} name @param {string} column */
    column: (name, column) => domain(name)?.store.column(column) ?? [],
    /** How many rows repeat an earlier row's key. @param {string} name @param {string[]} keyColumns */
    duplicateKeys(name, keyColumns) {
      const d = domain(name);
      return d ? duplicateKeys(d.store, keyColumns) : 0;
    },
    /** @param {string} name how each column is stored */
    storeStats: (name) => domain(name)?.store.stats() ?? [],
    dropConnection: () => ui.drop.click(),
  };
}

// ---------------------------------------------------------------- start

/** Start the worker, wire the controls, load what the query panel shows. */
export function main() {
  worker = new WorkerClient(new URL('./stream-worker.js', import.meta.url), {
    onStream: onWorkerMessage,
    onCrash: onWorkerCrash,
  });
  exportPanel = new ExportPanel({ job: () => page.job, headers: authHeaders, absolute });

  query = new QueryPanel(worker, () => page.job !== null);
  wireApiKey(() => {
    void query.loadDomains();
    void query.probeDemo();
  });

  ui.start.addEventListener('click', () => void startJob());
  ui.stop.addEventListener('click', () => {
    if (page.state.running) worker.stopStream();
  });
  ui.drop.addEventListener('click', () => {
    if (!page.state.running) return;
    page.state.drop();
    worker.dropConnection();
  });
  keyedLink(ui.download, () => ui.download.download);
  for (const format of FORMATS) {
    const ext = format === 'csv.zip' ? 'zip' : format;
    keyedLink(exportRow(format).link, () => `trace-${page.job?.job_id ?? 'export'}.${ext}`);
  }

  /** @type {any} */ (window).traceApp = testHooks();
  void query.loadDomains();
  void query.probeDemo();
  query.updateCount();
}
