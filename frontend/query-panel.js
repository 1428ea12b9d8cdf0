// @ts-check
/**
 * The query panel: the CID list (typed, pasted, picked at random from the demo
 * database, or read from a file), checked as it comes (input-check.js), the
 * domain catalog with its checkboxes and the filters (filter-panel.js).
 * A long list stays in the worker: the textarea then shows a summary, and a
 * long paste goes straight there, never through the textarea.
 *
 * @module query-panel
 */

import { KEY_NEEDED, api, askForKeyOn401, authHeaders, keyAccepted } from './access.js';
import { parseCids } from './cids.js';
import { FilterPanel } from './filter-panel.js';
import { checkCids, checkPickSize, maxCidsOf } from './input-check.js';
import { formatCount } from './progress.js';
import { errText, holdProgressSpace, say, showDemoPick, showDomainList, ui } from './view.js';

/** @typedef {import('./worker-client.js').WorkerClient} WorkerClient */

/**
 * Lists longer than this stay in the worker, out of the textarea: Chromium lays out
 * long ones slowly (docs/benchmarks.md#long-cid-lists-stay-in-the-worker).
 */
const TEXTAREA_MAX_CIDS = 5000;
/**
 * A paste longer than this (characters) goes to the worker, not into the textarea
 * (docs/benchmarks.md#long-pastes-go-to-the-worker).
 */
const PASTE_MAX_CHARS = 100_000;

/** @typedef {import('./input-check.js').CidCheck} CidCheck */

export class QueryPanel {
  /**
   * @param {WorkerClient} worker holds long lists, picks and reads CIDs
   * @param {() => boolean} hasJob a job is shown (then no progress space is held)
   */
  constructor(worker, hasJob) {
    /** @private */
    this.worker = worker;
    /** @private */
    this.hasJob = hasJob;
    /** @type {import('./filters.js').DomainInfo[]} */
    this.catalog = [];
    /** @type {string} why the catalog is missing ('' when it loaded) */
    this.catalogError = 'loading';
    /** @private @type {{count: number, check: CidCheck}|null} a CID list held by the worker, too long for the textarea */
    this.kept = null;
    /** @private */
    this.countTimer = 0;
    /** the service's CID limit (from /openapi.json); null: unknown */
    this.maxCids = /** @type {number|null} */ (null);
    /** @type {string[]} keys of the database, whose shapes real CIDs share */
    this.samples = [];
    this.filters = new FilterPanel(ui.filterList);
    ui.filterList.addEventListener('input', () => this.showFilterCount());
    ui.cids.addEventListener('paste', (e) => {
      const text = e.clipboardData?.getData('text') ?? '';
      if (text.length <= PASTE_MAX_CHARS) return;
      // Chromium takes seconds to lay out 100k pasted lines: the worker parses and keeps them.
      e.preventDefault();
      const before = this.kept ? '' : ui.cids.value;
      void this.keepText(`${before}\n${text}`);
    });
    ui.cids.addEventListener('input', () => {
      if (this.kept) {
        this.kept = null;
        ui.cids.classList.remove('summary');
        void worker.request('clear', {});
      }
      this.updateCount();
    });
    ui.randomButton.addEventListener('click', () => void this.pickRandom());
    ui.randomN.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        void this.pickRandom();
      }
    });
    ui.randomN.addEventListener('input', () => this.checkPick());
    ui.cidFileButton.addEventListener('click', () => ui.cidFile.click());
    ui.cidFile.addEventListener('change', () => void this.readFile());
  }

  /** @returns {{max: number|null, samples: string[]}} what a CID list is checked against */
  known() {
    return { max: this.maxCids, samples: this.samples };
  }

  /** @returns {CidCheck} the current list's check */
  check() {
    return this.kept ? this.kept.check : checkCids(parseCids(ui.cids.value), this.known());
  }

  /** @private @param {string} text a long paste */
  async keepText(text) {
    try {
      const reply = await this.worker.request('text', { text, inlineMax: 0, known: this.known() });
      this.useCids(reply, 'pasted CIDs');
    } catch (err) {
      say(`Could not read the pasted text: ${errText(err)}`);
    }
  }

  /** The service's CID limit, from its OpenAPI document (absent: unknown, the server still checks). */
  async loadLimits() {
    try {
      this.maxCids = maxCidsOf(await api('openapi.json'));
      this.updateCount();
    } catch {
      this.maxCids = null;
    }
  }

  /** @private the pick size, checked as it is typed */
  checkPick() {
    const { error } = checkPickSize(ui.randomN.value, this.maxCids);
    ui.randomN.setAttribute('aria-invalid', String(Boolean(error)));
    if (error) ui.randomNote.textContent = error;
    else if (!ui.randomN.disabled) ui.randomNote.textContent = 'from the demo database';
  }

  /** @private */
  showFilterCount() {
    const n = this.filters.activeCount();
    ui.filterCount.textContent = n ? `(${n} set)` : '';
  }

  /** @returns {number} how many CIDs the job would get */
  count() {
    return this.kept ? this.kept.count : parseCids(ui.cids.value).length;
  }

  /** @returns {string|undefined} the textarea's CIDs; undefined: the worker's kept list */
  text() {
    return this.kept ? undefined : ui.cids.value;
  }

  /** @param {string} name @returns {string[]} its columns as the catalog lists them */
  columnsOf(name) {
    return this.catalog.find((d) => d.name === name)?.columns ?? [];
  }

  /** Show the count shortly after typing stops: parsing a long list on every key is slow. */
  updateCount() {
    clearTimeout(this.countTimer);
    this.countTimer = window.setTimeout(() => {
      const check = this.check();
      ui.cidCount.textContent = formatCount(check.count);
      ui.cidCheck.textContent = check.text ? ` · ${check.text}` : '';
      ui.cidCheck.dataset.level = check.level;
      ui.cids.setAttribute('aria-invalid', String(check.level === 'error'));
    }, 120);
  }

  async loadDomains() {
    try {
      const body = await api('api/domains');
      this.catalog = body.domains ?? [];
      this.catalogError = '';
    } catch (err) {
      this.catalogError = errText(err);
      const e = /** @type {any} */ (err);
      ui.domainList.textContent =
        e.status === 401 ? 'needs an API key (the field below)' : `could not load domains: ${errText(err)}`;
      ui.filterList.textContent = '';
      if (e.status === 401) say(KEY_NEEDED);
      return;
    }
    keyAccepted();
    showDomainList(this.catalog);
    this.filters.show(this.catalog);
    this.showFilterCount();
    if (!this.hasJob()) holdProgressSpace(this.catalog.map((d) => d.name));
  }

  /** Enable the random pick when the service holds the demo database. */
  async probeDemo() {
    try {
      // A few real keys too: pasted CIDs are checked against their shape.
      const body = await api('api/demo/cids?n=20');
      this.samples = body.container_ids ?? [];
      showDemoPick(true, 'from the demo database');
      this.updateCount();
    } catch (err) {
      const status = /** @type {any} */ (err).status;
      showDemoPick(
        false,
        status === 404
          ? 'off: the service reads a configured database (TRACE_DB_URL), not its own demo file'
          : status === 401
            ? 'off until an API key is entered'
            : `off: ${errText(err)}`,
      );
    }
  }

  /** @private */
  async pickRandom() {
    if (ui.randomButton.disabled) return;
    const { n, error } = checkPickSize(ui.randomN.value, this.maxCids);
    if (error) {
      say(error);
      return;
    }
    ui.randomButton.disabled = true;
    try {
      const url = new URL(`api/demo/cids?n=${n}`, document.baseURI).href; // the worker needs it absolute
      const reply = await this.worker.request('pick', {
        url,
        headers: authHeaders(),
        inlineMax: TEXTAREA_MAX_CIDS,
        known: this.known(),
      });
      this.useCids(reply, 'random demo CIDs');
      const fewer = reply.count < n ? ` (the demo database holds only ${formatCount(reply.count)})` : '';
      say(`Picked ${formatCount(reply.count)} random demo CIDs${fewer}.`, 'info');
    } catch (err) {
      askForKeyOn401(err);
      say(`Could not pick demo CIDs: ${errText(err)}`);
    } finally {
      ui.randomButton.disabled = false;
    }
  }

  /** @private */
  async readFile() {
    const file = ui.cidFile.files?.[0];
    if (!file) return;
    try {
      const reply = await this.worker.request('file', { file, inlineMax: TEXTAREA_MAX_CIDS, known: this.known() });
      this.useCids(reply, `CIDs from ${file.name}`);
      say(`Read ${formatCount(reply.count)} CIDs from ${file.name}.`, 'info');
    } catch (err) {
      say(`Could not read ${file.name}: ${errText(err)}`);
    } finally {
      ui.cidFile.value = '';
    }
  }

  /**
   * Show the worker's reply to a pick or a file. A short list goes into the
   * textarea; a long one stays in the worker and the textarea shows a summary:
   * Chromium takes seconds to lay out 100k lines of text.
   * @private
   * @param {{count: number, preview: string[], list: string[]|null, check: CidCheck}} reply
   * @param {string} what
   */
  useCids(reply, what) {
    if (reply.list) {
      this.kept = null;
      ui.cids.classList.remove('summary');
      ui.cids.value = reply.list.join('\n');
    } else {
      this.kept = { count: reply.count, check: reply.check };
      const head = reply.preview.join('\n');
      ui.cids.value = `${formatCount(reply.count)} ${what}\n${head}\n…\n(typing here replaces them)`;
      ui.cids.classList.add('summary');
    }
    this.updateCount();
  }
}
