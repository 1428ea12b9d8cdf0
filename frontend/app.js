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
 * The address names the job shown (`?job=ID`, job-url.js): opening it
 * follows that job's stream from the start, as Start would.
 *
 * Endpoints used (same origin, relative to this page):
 *   GET  api/domains, GET api/demo/cids?n=N (404: not a demo database),
 *   GET openapi.json (the CID limit), GET api/trace/job/{id} (a shared job),
 *   POST api/trace/job, GET <links.stream>?format=arrays[&since=T],
 *   GET <links.self>/export.csv?domain=D (the "Download CSV" links),
 *   the exports (export-panel.js).
 */

import { KEY_NEEDED, askForKeyOn401, authHeaders, httpError, keyAccepted, wireApiKey } from './access.js';
import { showAggregations, clearAggregations } from './aggregations.js';
import { downloadWithKey } from './downloads.js';
import { ExportPanel } from './export-panel.js';
import { FORMATS } from './exports.js';
import { JobState, duplicateKeys } from './job-state.js';
import { domainCsv, jobLinks } from './job-links.js';
import { jobOf, withJob } from './job-url.js';
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
  clearJob,
  columnsChanged,
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
  columnsChanged,
  domainStarted: (d) => {
    if (page.activeTab === null) showTab(d.name);
  },
  rowsAdded: (d) => {
    if (d.name === page.activeTab) d.table.schedule();
  },
  aggregation: (data) => {
    showAggregations(ui.aggregations, data);
    query.filters.suggest(data);
  },
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
  if (!domains.length) {
    if (!query.catalogError) return say('Choose at least one domain.');
    return say(query.catalogError.includes('unauthorized') ? KEY_NEEDED : `The domain list did not load: ${query.catalogError}`);
  }
  const check = query.check();
  if (check.tooMany) return say(`Too many CIDs: ${formatCount(check.count)}, ${check.text}.`);
  const filter = query.filters.where(domains);
  if (filter.errors.length) {
    ui.filters.open = true;
    return say(`Check the filters: ${filter.errors.join('; ')}`);
  }
  stopCurrent();
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
      where: filter.where,
      text: query.text(),
      headers: authHeaders(),
    });
    if (reply.status !== 201 && reply.status !== 200) throw httpError(reply.status, reply.body);
    job = reply.body;
  } catch (err) {
    ui.start.disabled = false;
    noJob('No job: the last Start failed (see the message under Start).');
    setConn({ state: 'failed', attempt: 0, error: /** @type {any} */ (err) });
    return say(`Could not create the job: ${errText(err)}`);
  }
  keyAccepted();
  ui.start.disabled = false;
  follow(job, clickedAt);
}

/** The previous stream, if any, stops: its late messages must not reach what comes next. */
function stopCurrent() {
  worker.discardStream();
  page.state.running = false;
  clearInterval(page.ticker);
  say('');
}

/**
 * No job on screen: a failed Start or an unavailable shared job must not leave
 * the previous job's rows, counts and downloads looking current.
 * @param {string} why what the empty table area says
 */
function noJob(why) {
  clearJob(page.state.domains.values(), why);
  clearAggregations(ui.aggregations);
  page.state = new JobState(jobEvents, null);
  page.job = null;
  page.activeTab = null;
  exportPanel.reset(false);
  ui.stop.disabled = true;
  ui.drop.disabled = true;
  history.replaceState(null, '', withJob(location.href, null));
  markDirty();
}

/**
 * Show `job` (just created, or named by the address) and follow its stream from the start.
 * @param {any} job `JobCreated` or `JobDescription`: job_id, cid_count, domains, links, where
 * @param {number} clickedAt
 */
function follow(job, clickedAt) {
  page.job = { ...job, ...jobLinks(job, document.baseURI) };
  history.replaceState(null, '', withJob(location.href, job.job_id));

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
  page.ticker = setInterval(markDirty, 500); // keeps rates, ETA and elapsed moving
}

/**
 * Open the job the address names (a shared link, a reload).
 * @param {string} id
 * @returns {Promise<boolean>} false: not shown (no such job, or a key is needed first)
 */
async function openJob(id) {
  const clickedAt = performance.now();
  stopCurrent();
  setConn({ state: 'opening job', attempt: 0 });
  let job;
  try {
    const res = await fetch(absolute(`api/trace/job/${encodeURIComponent(id)}`), { headers: authHeaders() });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw httpError(res.status, body);
    job = body;
  } catch (err) {
    const e = /** @type {any} */ (err);
    setConn({ state: 'idle', attempt: 0 });
    if (e.status === 401) {
      say(`${KEY_NEEDED} Job ${id} opens once it is accepted.`);
      return false;
    }
    noJob(`Job ${id} is not available.`);
    say(
      e.code === 'job_not_found'
        ? `Job ${id} does not exist any more: it expired, or it was made with another API key. Start a new one.`
        : `Could not open job ${id}: ${errText(err)}`,
    );
    return true;
  }
  keyAccepted();
  follow(job, clickedAt);
  return true;
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
  let pendingJob = jobOf(location.href);
  const openPending = async () => {
    if (pendingJob && (await openJob(pendingJob))) pendingJob = null;
  };
  wireApiKey(() => {
    void query.loadDomains();
    void query.probeDemo();
    void query.loadLimits();
    void openPending();
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
  void query.loadLimits();
  query.updateCount();
  void openPending();
}
