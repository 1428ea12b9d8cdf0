// @ts-check
/**
 * Checks of the query panel's input while it is typed, before any job is made:
 * how many CIDs, whether that is over the service's limit, and how many do not
 * look like the database's keys (a warning only: the user may go on). Pure
 * (node tests).
 *
 * @module input-check
 */

import { formatCount } from './progress.js';

/** What no container id holds: markup, quotes, control characters. */
const NEVER_IN_A_KEY = /[<>"'`\\\u0000-\u001f\u007f]/;

/**
 * The kinds of character a key holds: `9` digits, `a` lower-case and `A`
 * upper-case letters, any other character as itself. `CNT-00a1` -> `-9Aa`.
 * @param {string} key
 * @returns {Set<string>}
 */
export function charKinds(key) {
  const kinds = new Set();
  for (const ch of key) kinds.add(/[0-9]/.test(ch) ? '9' : /[a-z]/.test(ch) ? 'a' : /[A-Z]/.test(ch) ? 'A' : ch);
  return kinds;
}

/**
 * @typedef {object} CidCheck
 * @property {number} count
 * @property {boolean} tooMany over the service's limit: the job would be refused
 * @property {number} unlike how many do not look like a key (by the samples' shapes)
 * @property {string[]} examples a few of those
 * @property {string} text what to tell the user ('' when all is well)
 * @property {'ok'|'warn'|'error'} level
 */

/**
 * @param {string[]} cids
 * @param {{max?: number|null, samples?: string[]}} known the service's CID limit; keys of
 *   the database (a demo pick), whose lengths and kinds of character real keys share
 * @returns {CidCheck}
 */
export function checkCids(cids, known) {
  // Real keys' lengths and kinds of character: a CID outside them does not look like one.
  const samples = known.samples ?? [];
  const kinds = new Set(samples.flatMap((k) => [...charKinds(k)]));
  const lengths = samples.map((k) => k.length);
  const minLen = lengths.length ? Math.min(...lengths) : 1;
  const maxLen = lengths.length ? Math.max(...lengths) : 200;
  let unlike = 0;
  /** @type {string[]} */
  const examples = [];
  for (const cid of cids) {
    const odd =
      NEVER_IN_A_KEY.test(cid) ||
      cid.length > 200 ||
      (samples.length > 0 && (cid.length < minLen || cid.length > maxLen || ![...charKinds(cid)].every((k) => kinds.has(k))));
    if (odd) {
      unlike += 1;
      if (examples.length < 3) examples.push(cid.length > 24 ? `${cid.slice(0, 24)}…` : cid);
    }
  }
  const count = cids.length;
  const max = known.max ?? null;
  const tooMany = max !== null && count > max;
  /** @type {string[]} */
  const said = [];
  if (tooMany) said.push(`over the service's limit of ${formatCount(/** @type {number} */ (max))}: the job would be refused`);
  if (unlike) {
    const all = unlike === count;
    said.push(
      `${all ? 'none' : formatCount(unlike)} ${all ? 'look' : unlike === 1 ? 'does not look' : 'do not look'} like container IDs` +
        ` (${examples.map((e) => JSON.stringify(e)).join(', ')})` +
        (all ? '; the job may find no records' : ''),
    );
  }
  return {
    count,
    tooMany,
    unlike,
    examples,
    text: said.join('; '),
    level: tooMany ? 'error' : unlike ? 'warn' : 'ok',
  };
}

/**
 * A random pick's size, checked before asking.
 * @param {string} raw the field's text
 * @param {number|null} max the service's CID limit
 * @returns {{n: number, error: string}} error '' when `n` may be asked for
 */
export function checkPickSize(raw, max) {
  const n = Number(raw);
  if (!raw.trim() || !Number.isInteger(n) || n < 1) return { n: 0, error: 'Enter how many random demo CIDs to pick (a whole number, 1 or more).' };
  if (max !== null && n > max) {
    return { n, error: `At most ${formatCount(max)} CIDs a job (the service's limit); ask for fewer.` };
  }
  return { n, error: '' };
}

/**
 * The service's CID limit, as its OpenAPI document states it (the demo pick's `n` maximum).
 * @param {any} openapi the parsed `/openapi.json`
 * @returns {number|null}
 */
export function maxCidsOf(openapi) {
  for (const op of Object.values(openapi?.paths?.['/api/demo/cids'] ?? {})) {
    for (const p of /** @type {any} */ (op)?.parameters ?? []) {
      if (p.name === 'n' && Number.isInteger(p.schema?.maximum)) return p.schema.maximum;
    }
  }
  return null;
}
