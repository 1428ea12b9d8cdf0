// @ts-check
/**
 * What the page's address keeps: the job (`?job=ID`, so a job can be shared
 * or reopened) and, per domain, the columns hidden from its table (in
 * localStorage: a view preference, not part of the job). Pure (node tests).
 *
 * @module job-url
 */

/**
 * @param {string} href the page's URL
 * @returns {string|null} the job it names
 */
export function jobOf(href) {
  const id = new URL(href).searchParams.get('job');
  return id && /^[\w-]{1,100}$/.test(id) ? id : null;
}

/**
 * @param {string} href
 * @param {string|null} jobId null: no job
 * @returns {string} the same URL naming `jobId`
 */
export function withJob(href, jobId) {
  const url = new URL(href);
  if (jobId) url.searchParams.set('job', jobId);
  else url.searchParams.delete('job');
  return url.href;
}

/**
 * @param {string|null} stored localStorage's value (JSON: domain -> hidden columns)
 * @returns {Record<string, string[]>}
 */
export function parseHidden(stored) {
  try {
    const v = JSON.parse(stored ?? '{}');
    if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
    /** @type {Record<string, string[]>} */
    const out = {};
    for (const [k, cols] of Object.entries(v)) {
      if (Array.isArray(cols)) out[k] = cols.filter((c) => typeof c === 'string');
    }
    return out;
  } catch {
    return {};
  }
}

/**
 * @param {string[]} columns a domain's columns, in wire order
 * @param {string[]} hidden
 * @returns {number[]} the indexes of the columns shown (never none: all when all are hidden)
 */
export function shownIndexes(columns, hidden) {
  const idx = columns.flatMap((c, j) => (hidden.includes(c) ? [] : [j]));
  return idx.length ? idx : columns.map((_, j) => j);
}
