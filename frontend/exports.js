// @ts-check
/**
 * Exports from the page: ask the service to write the job to a file
 * (`ndjson.gz` or `csv.zip`), follow its progress, and hand over the link.
 *
 * No DOM here: `startExport` and `followExport` take a `fetch` and a `sleep`
 * (the node tests pass their own), and `describeExport` is the text the page
 * shows. Endpoints: POST <job>/exports {"format"}, GET <links.self> until
 * `state` is done or failed; the file is <links.file>.
 *
 * @module exports
 */

import { problemError, readJsonBody } from './problem.js';
import { formatCount } from './progress.js';

/**
 * @typedef {object} ExportStatus the service's answer (svc/protocol.py ExportStatus)
 * @property {string} export_id
 * @property {string} format
 * @property {'queued'|'running'|'recovering'|'done'|'failed'} state
 * @property {number} records
 * @property {number|null} total
 * @property {number|null} size
 * @property {string|null} sha256
 * @property {{code: string, message: string}|null} error
 * @property {{self: string, file: string, job: string}} links
 */

/**
 * @typedef {object} FollowOptions
 * @property {Record<string, string>} [headers]
 * @property {typeof fetch} [fetch]
 * @property {(ms: number) => Promise<void>} [sleep]
 * @property {(status: ExportStatus) => void} [onStatus] called with every answer
 * @property {AbortSignal} [signal] stops following
 * @property {number} [intervalMs] between polls (1000)
 */

export const FORMATS = /** @type {const} */ (['ndjson.gz', 'csv.zip']);

/** @param {number} ms */
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Ask for an export of the job at `jobUrl` (…/api/trace/job/ID).
 * @param {string} jobUrl
 * @param {string} format
 * @param {{headers?: Record<string, string>, fetch?: typeof fetch}} [options]
 * @returns {Promise<ExportStatus>} the queued export (202)
 */
export async function startExport(jobUrl, format, options = {}) {
  const doFetch = options.fetch ?? fetch;
  const res = await doFetch(`${jobUrl}/exports`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: JSON.stringify({ format }),
  });
  const body = await readJsonBody(res);
  if (res.status !== 202) throw problemError(res.status, body, res.statusText);
  return body;
}

/**
 * Poll an export until it is done or failed. A 429 or 503 is waited out
 * (`Retry-After`, else the interval); other errors are thrown.
 * @param {string} statusUrl absolute URL of `links.self`
 * @param {FollowOptions} [options]
 * @returns {Promise<ExportStatus>} the last status (done or failed)
 */
export async function followExport(statusUrl, options = {}) {
  const doFetch = options.fetch ?? fetch;
  const sleep = options.sleep ?? wait;
  const interval = options.intervalMs ?? 1000;
  for (;;) {
    if (options.signal?.aborted) throw new DOMException('stopped following', 'AbortError');
    const res = await doFetch(statusUrl, { headers: options.headers, signal: options.signal });
    const body = await readJsonBody(res);
    if (res.status === 429 || res.status === 503) {
      const seconds = Number(res.headers.get('retry-after'));
      await sleep(Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : interval);
      continue;
    }
    if (!res.ok) throw problemError(res.status, body, res.statusText);
    const status = /** @type {ExportStatus} */ (body);
    options.onStatus?.(status);
    if (status.state === 'done' || status.state === 'failed') return status;
    await sleep(interval);
  }
}

/** @param {number} bytes */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/**
 * What the page shows for an export.
 * @param {ExportStatus} status
 * @returns {string}
 */
export function describeExport(status) {
  const written = formatCount(status.records);
  switch (status.state) {
    case 'queued':
      return 'queued';
    case 'running': {
      if (!status.total) return `writing: ${written} records`;
      const pct = Math.min(100, Math.floor((status.records / status.total) * 100));
      return `writing: ${written} / ${formatCount(status.total)} (${pct}%)`;
    }
    case 'recovering': // its writer died; another replica takes it over
      return `recovering: ${written} records written so far`;
    case 'done':
      return `done: ${written} records, ${formatBytes(status.size ?? 0)}`;
    case 'failed':
      return `failed: ${status.error?.message ?? 'unknown error'} (${status.error?.code ?? '?'})`;
    default:
      return String(status.state);
  }
}
