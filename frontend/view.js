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
import { describeWhere } from './filters.js';
import { shownColumns, tableTools } from './table-tools.js';
import { newDomain } from './job-state.js';
import { formatCount } from './progress.js';

/**
 * @typedef {import('./job-state.js').DomainState & {table: VirtualTable, ui: Record<string, HTMLElement>,
 *   setColumns: (columns: string[]) => void}} DomainView
 *   one domain of the job: its numbers and rows (job-state.js), its table and elements
 */

/**
 * @typedef {object} PaintState what `paint` shows
 * @property {Map<string, DomainView>} domains
 * @property {number} startedAt performance.now() of the job's start (0: none yet)
 * @property {number} endedAt (0: still running)
 * @property {{state: string, attempt: number, connections: number, since: string|null}} conn
 * @property {number} resumes
 * @property {string} phase the connection's state, or `aggregating` (job-state.js)
 */

export const ui = {
  cids: /** @type {HTMLTextAreaElement} */ (byId('cids')),
  cidCount: byId('cid-count'),
  cidFile: /** @type {HTMLInputElement} */ (byId('cid-file')),
  cidFileButton: /** @type {HTMLButtonElement} */ (byId('cid-file-button')),
  cidCheck: byId('cid-check'),
  filters: /** @type {HTMLDetailsElement} */ (byId('filters')),
  filterList: byId('filter-list'),
  filterCount: byId('filter-count'),
  jobWhere: byId('job-where'),
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
  if (s.state === 'aggregating') {
    text = 'computing aggregations…';
    ui.conn.title = 'every record is in; the database is computing the aggregations';
  } else if (s.state === 'reconnecting' || (s.state === 'connecting' && s.attempt > 0)) {
    text = `reconnecting (attempt ${s.attempt})`;
    kind = 'reconnecting';
  } else if (s.state === 'aborted') {
    text = 'stopped';
  } else if (s.state === 'failed' && s.error?.code) {
    text = `failed: ${s.error.code}`;
  }
  if (s.state !== 'aggregating') ui.conn.title = s.error?.message ?? '';
  ui.conn.dataset.state = kind;
  ui.conn.dataset.attempt = String(s.attempt);
  ui.connText.textContent = text;
  ui.drop.disabled = s.state !== 'streaming' && s.state !== 'aggregating';
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
 * Remove a job's elements (its tables, progress rows, tabs) and its facts:
 * a new job replaces it, or a failed Start must not leave it looking current.
 * @param {Iterable<DomainView>} previous
 * @param {string} [placeholder] what the empty table area says
 */
export function clearJob(previous, placeholder = 'Start a job to see its rows here.') {
  for (const d of previous) d.table.destroy();
  ui.progress.replaceChildren();
  ui.tabs.replaceChildren();
  for (const t of [...ui.tables.children]) if (t !== ui.placeholder) t.remove();
  ui.placeholder.textContent = placeholder;
  ui.placeholder.hidden = false;
  for (const e of [ui.jobId, ui.jobCids, ui.jobRecords, ui.jobElapsed, ui.jobConns, ui.jobResumes, ui.jobSince, ui.jobWhere]) {
    e.textContent = '—';
  }
  ui.jobRecords.dataset.count = '0';
  ui.download.removeAttribute('href');
  ui.download.classList.add('disabled');
  ui.download.setAttribute('aria-disabled', 'true');
}

/**
 * Clear the previous job's elements and show the new job's facts.
 * @param {Iterable<DomainView>} previous
 * @param {{job_id: string, cid_count: number, where?: any}} job
 * @param {string} downloadUrl
 */
export function showJob(previous, job, downloadUrl) {
  clearJob(previous);
  ui.placeholder.hidden = true;

  ui.jobId.textContent = job.job_id;
  ui.jobCids.textContent = formatCount(job.cid_count);
  ui.jobWhere.textContent = describeWhere(job.where);
  ui.jobWhere.title = ui.jobWhere.textContent;
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
  tab.id = `tab-${name}`;
  tab.setAttribute('aria-controls', `panel-${name}`);
  tab.addEventListener('click', onSelect);
  tab.addEventListener('keydown', (e) => {
    // The tabs pattern: arrows move between tabs (only the selected one is in the Tab order).
    const step = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
    if (!step) return;
    const tabs = /** @type {HTMLElement[]} */ ([...ui.tabs.children]);
    const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
    next.click();
    next.focus();
    e.preventDefault();
  });
  ui.tabs.append(tab);

  const wrap = document.createElement('div');
  wrap.className = 'table-wrap';
  wrap.dataset.domain = name;
  wrap.dataset.testid = `table-${name}`;
  wrap.setAttribute('role', 'tabpanel');
  wrap.id = `panel-${name}`;
  wrap.setAttribute('aria-labelledby', tab.id);
  wrap.hidden = true;
  /** @type {DomainView} */
  let view;
  const tools = tableTools(name, { table: () => view.table, store: () => view.store, columns: () => view.columns });
  const csvLink = tools.csv;
  csvLink.href = csv.href;
  csvLink.download = csv.filename;
  csvLink.dataset.testid = `csv-${name}`;
  csvLink.title = `All ${name} records of this job as one CSV file (UTF-8 with a BOM, for Excel; a new request)`;
  const host = document.createElement('div');
  wrap.append(host, tools.bar);
  ui.tables.append(wrap);

  const domain = newDomain(name, columns);
  const table = new VirtualTable(host, { testId: `grid-${name}`, label: `${name} records` });
  table.setData(domain.store, columns, shownColumns(name, columns));
  tools.setColumns(columns);

  view = {
    ...domain,
    table,
    ui: {
      row,
      fill: q('.prog-fill'),
      bar: q('.prog-bar'),
      count,
      rate: q('.prog-rate'),
      eta: q('.prog-eta'),
      status: q('.prog-status'),
      tab,
      tabCount: /** @type {HTMLElement} */ (tab.querySelector('.tab-count')),
      wrap,
      note: tools.note,
      csv: csvLink,
    },
    setColumns: tools.setColumns,
  };
  return view;
}

/**
 * The domain's columns are known (or changed): its table and column choice follow.
 * @param {DomainView} d
 */
export function columnsChanged(d) {
  d.table.setData(d.store, d.columns, shownColumns(d.name, d.columns));
  d.setColumns(d.columns);
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
    <span class="prog-bar" role="progressbar" aria-valuemin="0"><span class="prog-fill"></span></span>
    <span class="prog-count mono">— / —</span>
    <span class="prog-rate mono">— rec/s</span>
    <span class="prog-eta mono">ETA —</span>
    <span class="prog-status">idle</span>`;
  /** @type {HTMLElement} */ (row.querySelector('.prog-name')).textContent = name;
  /** @type {HTMLElement} */ (row.querySelector('.prog-bar')).setAttribute('aria-label', `${name} records received`);
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
    d.ui.tab.tabIndex = on ? 0 : -1;
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
  const c = state.conn;
  const paused = c.state === 'reconnecting' || (c.state === 'connecting' && c.attempt > 0);
  for (const d of state.domains.values()) {
    total += d.progress.received;
    paintDomain(d, now, paused);
  }
  if (state.phase === 'aggregating' && ui.conn.dataset.state !== 'aggregating') {
    setConn({ state: 'aggregating', attempt: c.attempt });
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

/** @param {DomainView} d @param {number} now @param {boolean} paused reconnecting */
function paintDomain(d, now, paused) {
  const u = d.ui;
  const text = d.progress.text(now, paused);
  u.fill.style.transform = `scaleX(${text.fraction})`;
  const total = d.progress.total;
  const max = String(total ?? (d.progress.status === 'done' ? d.progress.received : ''));
  if (max) {
    if (u.bar.getAttribute('aria-valuemax') !== max) u.bar.setAttribute('aria-valuemax', max);
    u.bar.setAttribute('aria-valuenow', String(Math.min(d.progress.received, Number(max))));
  } else {
    u.bar.removeAttribute('aria-valuenow'); // not counted yet: indeterminate
  }
  u.bar.setAttribute('aria-valuetext', `${text.count} records, ${text.status}`);
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
