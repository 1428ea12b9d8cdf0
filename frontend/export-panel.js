// @ts-check
/**
 * The Exports box of the page: each format's button asks the service to write
 * the current job to a file, its state text follows the export (exports.js
 * does the requests), and its link gives the file once it is done.
 *
 * @module export-panel
 */

import { FORMATS, describeExport, followExport, startExport } from './exports.js';
import { errText, exportRow, log } from './view.js';

/**
 * @typedef {object} ExportPanelOptions
 * @property {() => {job_id: string}|null} job the current job (none before the first)
 * @property {() => Record<string, string>} headers what every request carries (the API key)
 * @property {(path: string) => string} absolute a path relative to the page as an absolute URL
 */

export class ExportPanel {
  /** @param {ExportPanelOptions} options */
  constructor(options) {
    /** @private */
    this.options = options;
    /** @private @type {AbortController|null} stops following the previous job's exports */
    this.followed = null;
    for (const format of FORMATS) {
      exportRow(format).button.addEventListener('click', () => void this.run(format));
    }
  }

  /**
   * A new job (or none): stop following the previous job's exports and clear their rows.
   * @param {boolean} [enabled] false: no job, nothing to export
   */
  reset(enabled = true) {
    this.followed?.abort();
    this.followed = new AbortController();
    for (const format of FORMATS) {
      const row = exportRow(format);
      row.button.disabled = !enabled;
      row.state.textContent = '';
      row.link.hidden = true;
      row.link.removeAttribute('href');
    }
  }

  /**
   * Export the current job as `format` and follow it until done or failed.
   * @private
   * @param {string} format
   */
  async run(format) {
    const { job: currentJob, headers, absolute } = this.options;
    const job = currentJob();
    if (!job) return;
    const row = exportRow(format);
    const signal = this.followed?.signal;
    const jobUrl = absolute(`api/trace/job/${encodeURIComponent(job.job_id)}`);
    row.button.disabled = true;
    row.link.hidden = true;
    try {
      const queued = await startExport(jobUrl, format, { headers: headers() });
      row.state.textContent = describeExport(queued);
      log(`export ${queued.export_id} (${format}) queued`);
      const status = await followExport(absolute(queued.links.self), {
        headers: headers(),
        signal,
        onStatus: (s) => {
          row.state.textContent = describeExport(s);
        },
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
}
