// @ts-check
/**
 * Downloads that carry the API key. A link cannot send an Authorization
 * header, so with a key the page fetches the file itself, holds it as a Blob
 * and saves it through a temporary object-URL link. A body cut short (a CSV
 * download the server failed part-way) rejects the Blob: no partial file is
 * saved. Without a key the link stays a plain link and the browser downloads.
 *
 * `fetch` and `document` are injectable: the node tests pass their own.
 *
 * @module downloads
 */

import { problemError, readJsonBody } from './problem.js';

/** The object URL lives this long: the browser has read the Blob by then. */
export const REVOKE_AFTER_MS = 60_000;

/**
 * @typedef {object} SaveOptions
 * @property {typeof fetch} [fetch]
 * @property {Pick<Document, 'createElement'>} [document] where the temporary link is made
 * @property {number} [revokeAfterMs]
 */

/**
 * @typedef {SaveOptions & {
 *   headers: () => Record<string, string>,
 *   fileName: () => string,
 *   onError: (err: unknown) => void,
 * }} KeyedLinkOptions `headers` are read at each click: without `authorization`
 *   the click is left to the browser; `fileName` is the name to save under
 */

/**
 * The file at `href`, fetched with `headers`.
 * @param {string} href
 * @param {Record<string, string>} headers
 * @param {typeof fetch} [doFetch]
 * @returns {Promise<Blob>} rejects with `problemError` on an HTTP error, and when the body breaks off
 */
export async function fetchFile(href, headers, doFetch = fetch) {
  const res = await doFetch(href, { headers });
  if (!res.ok) throw problemError(res.status, await readJsonBody(res));
  return res.blob();
}

/**
 * Save `blob` as `fileName` through a temporary link to an object URL.
 * @param {Blob} blob
 * @param {string} fileName
 * @param {SaveOptions} [options]
 */
export function saveBlob(blob, fileName, options = {}) {
  const doc = options.document ?? document;
  const url = URL.createObjectURL(blob);
  const a = /** @type {HTMLAnchorElement} */ (doc.createElement('a'));
  a.href = url;
  a.download = fileName;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), options.revokeAfterMs ?? REVOKE_AFTER_MS);
}

/**
 * Fetch `href` with `headers` and save it as `fileName`.
 * @param {string} href
 * @param {string} fileName
 * @param {Record<string, string>} headers
 * @param {SaveOptions} [options]
 */
export async function keyedDownload(href, fileName, headers, options = {}) {
  saveBlob(await fetchFile(href, headers, options.fetch), fileName, options);
}

/**
 * Make `link` download with the key whenever one is set.
 * @param {Pick<HTMLAnchorElement, 'href' | 'addEventListener'>} link
 * @param {KeyedLinkOptions} options
 */
export function downloadWithKey(link, options) {
  link.addEventListener('click', (event) => {
    const headers = options.headers();
    if (!headers.authorization) return;
    event.preventDefault();
    keyedDownload(link.href, options.fileName(), headers, options).catch(options.onError);
  });
}
