// @ts-check
/**
 * The page's DOM: the elements of index.html, what is built per job (progress
 * rows, tabs, tables), and `paint`, which writes the current numbers once per
 * animation frame and touches only text that changed.
 *
 * @module view
 */

import { VirtualTable } from './table.js';
import { byId, setText } from './dom.js';
import { newDomain } from './job-state.js';
import { formatCount } from './progress.js';

/**
 * @typedef {import('./job-state.js').DomainState & {table: VirtualTable, ui: Record<string, HTMLElement>}} DomainView
 *   one domain of the job: its numbers and rows (job-state.js), its table and elements
 */

/**
 * @typedef {object} PaintState what `paint` shows
 * @property {Map<string, DomainView>} domains
 * @property {number} startedAt performance.now() of the job's start (0: none yet)
 * @property {number} endedAt (0: still running)
 * @property {{connections: number, since: string|null}} conn
 * @property {number} resumes
 */

export const ui = {
  cids: /** @type {HTMLTextAreaElement} */ (byId('cids')),
  cidCount: byId('cid-count'),
  cidFile: /** @type {HTMLInputElement} */ (byId('cid-file')),
  random: byId('random'),
  randomN: /** @type {HTMLInputElement} */ (byId('random-n')),
  randomButton: /** @type {HTMLButtonElement} */ (byId('random-button')),
  randomNote: byId('random-note'),
  domainList: byId('domain-list'),
  apiKey: /** @type {HTMLInputElement} */ (byId('api-key')),
  accessForm: byId('access-form'),
  access: /** @type {HTMLDetailsElement} */ (byId('access')),
  start: /** @type {HTMLButtonElement} */ (byId('start')),
  stop: /** @type {HTMLButtonElement} */ (byId('stop')),
  message: byId('message'),
  conn: byId('conn'),
  connText: byId('conn-text'),
  drop: /** @type {HTMLButtonElement} */ (byId('drop')),
  download: /** @type {HTMLAnchorElement} */ (byId('download')),
  jobId: byId('job-id'),
  jobCids: byId('job-cids'),
  jobRecords: byId('job-records'),
  jobElapsed: byId('job-elapsed'),
  jobConns: byId('job-conns'),
  jobResumes: byId('job-resumes'),
  jobSince: byId('job-since'),
  progress: byId('progress'),
  tabs: byId('tabs'),
  tables: byId('tables'),
  placeholder: byId('placeholder'),
  log: byId('log'),
  aggregations: byId('aggregations'),
};

/**
 * @typedef {object} ExportRow one format's controls in the Exports box
 * @property {HTMLButtonElement} button
 * @property {HTMLElement} state
 * @property {HTMLAnchorElement} link
 */

/**
 * The Export button, state text and download link of `format`.
 * @param {string} format
 * @returns {ExportRow}
 */
export function exportRow(format) {
  const row = /** @type {HTMLElement} */ (byId('exports').querySelector(`[data-format="${format}"]`));
  return {
    button: /** @type {HTMLButtonElement} */ (row.querySelector('button')),
    state: /** @type {HTMLElement} */ (row.querySelector('.export-state')),
    link: /** @type {HTMLAnchorElement} */ (row.querySelector('a')),
  };
}

// ---------------------------------------------------------------- messages and log

/** @param {string} text @param {'error'|'info'} [kind] */
export function say(text, kind = 'error') {
  ui.message.textContent = text;
  ui.message.dataset.kind = kind;
}

/** performance.now() that log times count from */
let logStart = 0;

/**
 * Empty the log; its times count from `startedAt` on.
 * @param {number} startedAt
 */
export function restartLog(startedAt) {
  logStart = startedAt;
  ui.log.replaceChildren();
}

/** @param {string} text @param {'info'|'ok'|'warn'|'error'} [kind] */
export function log(text, kind = 'info') {
  const li = document.createElement('li');
  li.dataset.kind = kind;
  const t = document.createElement('time');
  const secs = logStart ? (performance.now() - logStart) / 1000 : 0;
  t.textContent = `${secs.toFixed(2).padStart(7)} s`;
  const span = document.createElement('span');
  span.textContent = text;
  li.append(t, span);
  ui.log.append(li);
  while (ui.log.childElementCount > 300) ui.log.firstElementChild?.remove();
  ui.log.scrollTop = ui.log.scrollHeight;
}

/** @param {unknown} err @returns {string} `code: message` when the error has a code */
export function errText(err) {
  const e = /** @type {any} */ (err);
  return e?.code ? `${e.code}: ${e.message}` : String(e?.message ?? e);
}

/** @param {{state: string, attempt: number, error?: any}} s */
export function setConn(s) {
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

// ---------------------------------------------------------------- query panel

/** @param {{name: string, columns: string[]}[]} catalog */
export function showDomainList(catalog) {
  ui.domainList.replaceChildren(
    ...catalog.map((d) => {
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
}

/** @returns {string[]} the domains ticked in the query panel */
export function checkedDomains() {
  return [...ui.domainList.querySelectorAll('input[name=domain]:checked')].map(
    (b) => /** @type {HTMLInputElement} */ (b).value,
  );
}

/**
 * Blank progress rows that hold the space a job's rows will take: no jump at Start.
 * @param {string[]} names
 */
export function holdProgressSpace(names) {
  ui.progress.replaceChildren(...names.map(progressRow));
}

/**
 * @param {boolean} available
 * @param {string} note why not, or where the CIDs come from
 */
export function showDemoPick(available, note) {
  // Unavailable (not the demo database): keep the space, explain, disable.
  ui.randomN.disabled = !available;
  ui.randomButton.disabled = !available;
  ui.random.classList.toggle('unavailable', !available);
  ui.randomNote.textContent = note;
}

// ---------------------------------------------------------------- a job's elements

/**
 * Clear the previous job's elements and show the new job's facts.
 * @param {Iterable<DomainView>} previous
 * @param {{job_id: string, cid_count: number}} job
 * @param {string} downloadUrl
 */
export function showJob(previous, job, downloadUrl) {
  for (const d of previous) d.table.destroy();
  ui.progress.replaceChildren();
  ui.tabs.replaceChildren();
  for (const t of [...ui.tables.children]) if (t !== ui.placeholder) t.remove();
  ui.placeholder.hidden = true;

  ui.jobId.textContent = job.job_id;
  ui.jobCids.textContent = formatCount(job.cid_count);
  ui.download.href = downloadUrl;
  ui.download.download = `trace-${job.job_id}.ndjson`;
  ui.download.classList.remove('disabled');
  ui.download.removeAttribute('aria-disabled');
}

/**
 * A domain's progress row, tab and table, with its "Download CSV" link.
 * @param {string} name
 * @param {string[]} columns
 * @param {() => void} onSelect its tab was clicked
 * @param {{href: string, filename: string}} csv the domain's export.csv
 * @returns {DomainView}
 */
export function createDomainView(name, columns, onSelect, csv) {
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
  tab.addEventListener('click', onSelect);
  ui.tabs.append(tab);

  const wrap = document.createElement('div');
  wrap.className = 'table-wrap';
  wrap.dataset.domain = name;
  wrap.dataset.testid = `table-${name}`;
  wrap.hidden = true;
  const tools = document.createElement('div');
  tools.className = 'table-tools';
  tools.innerHTML = `<span class="muted rows-note"></span>
    <span class="tools-end">
      <label class="check small"><input type="checkbox" data-testid="follow-${name}"> follow new rows</label>
      <a class="button small csv-link">Download CSV</a>
    </span>`;
  const csvLink = /** @type {HTMLAnchorElement} */ (tools.querySelector('.csv-link'));
  csvLink.href = csv.href;
  csvLink.download = csv.filename;
  csvLink.dataset.testid = `csv-${name}`;
  csvLink.title = `All ${name} records of this job as one CSV file (UTF-8 with a BOM, for Excel; a new request)`;
  const host = document.createElement('div');
  wrap.append(host, tools);
  ui.tables.append(wrap);

  const domain = newDomain(name, columns);
  const table = new VirtualTable(host, { testId: `grid-${name}` });
  table.setData(domain.store, columns);
  const follow = /** @type {HTMLInputElement} */ (tools.querySelector('input'));
  follow.addEventListener('change', () => table.setFollow(follow.checked));

  return {
    ...domain,
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
      csv: csvLink,
    },
  };
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

/**
 * Show the table of `name` (none: null) and hide the others.
 * @param {Iterable<DomainView>} domains
 * @param {string|null} name
 */
export function selectTab(domains, name) {
  for (const d of domains) {
    const on = d.name === name;
    d.ui.wrap.hidden = !on;
    d.ui.tab.setAttribute('aria-selected', String(on));
    if (on) d.table.schedule();
  }
}

// ---------------------------------------------------------------- painting

/**
 * @param {PaintState} state
 * @param {number} now performance.now()
 * @returns {number} the records received so far
 */
export function paint(state, now) {
  let total = 0;
  for (const d of state.domains.values()) {
    total += d.progress.received;
    paintDomain(d, now);
  }
  setText(ui.jobRecords, formatCount(total));
  ui.jobRecords.dataset.count = String(total);
  if (state.startedAt) {
    const end = state.endedAt || now;
    setText(ui.jobElapsed, `${((end - state.startedAt) / 1000).toFixed(1)} s`);
  }
  setText(ui.jobConns, String(state.conn.connections || '—'));
  setText(ui.jobResumes, String(state.resumes));
  const since = state.conn.since ?? '';
  setText(ui.jobSince, since || '—');
  if (ui.jobSince.title !== since) ui.jobSince.title = since;
  return total;
}

/** @param {DomainView} d @param {number} now */
function paintDomain(d, now) {
  const u = d.ui;
  const text = d.progress.text(now);
  u.fill.style.transform = `scaleX(${text.fraction})`;
  setText(u.count, text.count);
  u.count.dataset.count = String(d.progress.received);
  setText(u.tabCount, formatCount(d.progress.received));
  setText(u.rate, text.rate);
  setText(u.eta, text.eta);
  setText(u.status, text.status);
  u.row.dataset.status = text.status;
  setText(
    u.note,
    `${formatCount(d.store.length)} rows in ${formatCount(d.store.chunks.length)} batches · ${d.columns.length} columns`,
  );
}
