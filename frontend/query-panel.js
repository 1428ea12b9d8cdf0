// @ts-check
/**
 * The query panel: the CID list (typed, picked at random from the demo
 * database, or read from a file) and the domain catalog with its checkboxes.
 * A long list stays in the worker: the textarea then shows a summary.
 *
 * @module query-panel
 */

import { api, askForKeyOn401, authHeaders } from './access.js';
import { parseCids } from './cids.js';
import { formatCount } from './progress.js';
import { errText, holdProgressSpace, say, showDemoPick, showDomainList, ui } from './view.js';

/** @typedef {import('./worker-client.js').WorkerClient} WorkerClient */

/**
 * Lists longer than this stay in the worker, out of the textarea: Chromium lays out
 * long ones slowly (docs/benchmarks.md#long-cid-lists-stay-in-the-worker).
 */
const TEXTAREA_MAX_CIDS = 5000;

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
    /** @type {{name: string, columns: string[]}[]} */
    this.catalog = [];
    /** @private @type {{count: number}|null} a CID list held by the worker, too long for the textarea */
    this.kept = null;
    /** @private */
    this.countTimer = 0;
    ui.cids.addEventListener('input', () => {
      if (this.kept) {
        this.kept = null;
        ui.cids.classList.remove('summary');
        void worker.request('clear', {});
      }
      this.updateCount();
    });
    ui.randomButton.addEventListener('click', () => void this.pickRandom());
    ui.cidFile.addEventListener('change', () => void this.readFile());
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
      ui.cidCount.textContent = formatCount(this.count());
    }, 120);
  }

  async loadDomains() {
    try {
      const body = await api('api/domains');
      this.catalog = body.domains ?? [];
    } catch (err) {
      ui.domainList.textContent = `could not load domains: ${errText(err)}`;
      return;
    }
    showDomainList(this.catalog);
    if (!this.hasJob()) holdProgressSpace(this.catalog.map((d) => d.name));
  }

  /** Enable the random pick when the service holds the demo database. */
  async probeDemo() {
    try {
      await api('api/demo/cids?n=1');
      showDemoPick(true, 'from the demo database');
    } catch (err) {
      const status = /** @type {any} */ (err).status;
      showDemoPick(false, status === 404 ? 'not available: not the demo database' : `not available: ${errText(err)}`);
    }
  }

  /** @private */
  async pickRandom() {
    const n = Math.floor(Number(ui.randomN.value));
    if (!(n > 0)) {
      say('Enter how many random demo CIDs to pick.');
      return;
    }
    ui.randomButton.disabled = true;
    try {
      const url = new URL(`api/demo/cids?n=${n}`, document.baseURI).href; // the worker needs it absolute
      const reply = await this.worker.request('pick', { url, headers: authHeaders(), inlineMax: TEXTAREA_MAX_CIDS });
      this.useCids(reply, 'random demo CIDs');
      say(`Picked ${formatCount(reply.count)} random demo CIDs.`, 'info');
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
      const reply = await this.worker.request('file', { file, inlineMax: TEXTAREA_MAX_CIDS });
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
   * @param {{count: number, preview: string[], list: string[]|null}} reply
   * @param {string} what
   */
  useCids(reply, what) {
    if (reply.list) {
      this.kept = null;
      ui.cids.classList.remove('summary');
      ui.cids.value = reply.list.join('\n');
    } else {
      this.kept = { count: reply.count };
      const head = reply.preview.join('\n');
      ui.cids.value = `${formatCount(reply.count)} ${what}\n${head}\n…\n(typing here replaces them)`;
      ui.cids.classList.add('summary');
    }
    this.updateCount();
  }
}
