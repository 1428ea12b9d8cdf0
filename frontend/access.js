// @ts-check
/**
 * The API key: kept in `sessionStorage` (this tab only) and sent as
 * `Authorization: Bearer <key>` with every request; a 401 opens its field.
 *
 * @module access
 */

import { problemError, readJsonBody } from './problem.js';
import { ui } from './view.js';

const KEY_STORAGE = 'trace.apiKey';

/** @returns {Record<string, string>} the headers every API request carries */
export function authHeaders() {
  const key = ui.apiKey.value.trim();
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** The text `say` shows for a 401, cleared once a key works. */
export const KEY_NEEDED = 'This service needs an API key: enter it in the API key field.';

/** @param {unknown} err a 401 opens the API key field and marks it */
export function askForKeyOn401(err) {
  if (/** @type {any} */ (err)?.status !== 401) return;
  ui.access.open = true;
  ui.apiKey.setAttribute('aria-invalid', 'true');
}

/** A request with the current key succeeded: the field and any 401 message clear. */
export function keyAccepted() {
  ui.apiKey.removeAttribute('aria-invalid');
  if (ui.message.textContent === KEY_NEEDED || ui.message.textContent?.includes('unauthorized')) {
    ui.message.textContent = '';
  }
}

/**
 * An HTTP error, as an Error with `status` and `code`; a 401 opens the API key field.
 * @param {number} status
 * @param {any} body
 */
export function httpError(status, body) {
  const err = problemError(status, body);
  askForKeyOn401(err);
  return err;
}

/**
 * @param {string} url
 * @returns {Promise<any>} the JSON body of a successful GET
 */
export async function api(url) {
  const res = await fetch(url, { headers: authHeaders() });
  const body = await readJsonBody(res);
  if (!res.ok) throw httpError(res.status, body);
  return body;
}

/**
 * Show the tab's kept key (its field open when there is one) and keep the
 * one the user enters.
 * @param {() => void} onChange after a new key was entered
 */
export function wireApiKey(onChange) {
  ui.apiKey.value = sessionStorage.getItem(KEY_STORAGE) ?? '';
  ui.access.open = Boolean(ui.apiKey.value);
  ui.accessForm.addEventListener('submit', (e) => {
    e.preventDefault();
    ui.apiKey.dispatchEvent(new Event('change'));
  });
  ui.apiKey.addEventListener('change', () => {
    sessionStorage.setItem(KEY_STORAGE, ui.apiKey.value.trim());
    onChange();
  });
}
