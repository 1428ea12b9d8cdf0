// @ts-check
/**
 * The bar under a domain's table: how many rows, a find over the rows already
 * loaded, the column choice (kept per domain in localStorage, job-url.js),
 * "follow new rows" and the domain's CSV link.
 *
 * Rows stay in keyset order (the stream's and every download's): no sorting.
 * Sorting a million rows that are still arriving would reorder what the user
 * is reading, and would not match the files; filters narrow on the server.
 *
 * @module table-tools
 */

import { findRow } from './find.js';
import { parseHidden, shownIndexes } from './job-url.js';
import { formatCount } from './progress.js';

/** @typedef {import('./table.js').VirtualTable} VirtualTable */
/** @typedef {import('./columns.js').ColumnStore} ColumnStore */

const HIDDEN_KEY = 'trace.hiddenColumns';
/** Rows looked at between two frames: the page keeps painting during a long find. */
const FIND_SLICE = 20_000;

/** @returns {Record<string, string[]>} every domain's hidden columns */
function loadHidden() {
  try {
    return parseHidden(localStorage.getItem(HIDDEN_KEY));
  } catch {
    return {}; // storage off (privacy settings): the choice lasts for the page only
  }
}

/** @param {Record<string, string[]>} hidden */
function saveHidden(hidden) {
  try {
    localStorage.setItem(HIDDEN_KEY, JSON.stringify(hidden));
  } catch {
    /* storage off: see loadHidden */
  }
}

/**
 * @param {string} domain
 * @param {string[]} columns
 * @returns {number[]} the column indexes shown for `domain`, by the kept choice
 */
export function shownColumns(domain, columns) {
  return shownIndexes(columns, loadHidden()[domain] ?? []);
}

/**
 * @typedef {object} TableTools
 * @property {HTMLElement} bar
 * @property {HTMLElement} note the rows note
 * @property {HTMLAnchorElement} csv
 * @property {(columns: string[]) => void} setColumns the domain's columns (re)known
 */

/**
 * @param {string} name the domain
 * @param {{table: () => VirtualTable, store: () => ColumnStore, columns: () => string[]}} get
 * @returns {TableTools}
 */
export function tableTools(name, get) {
  const bar = document.createElement('div');
  bar.className = 'table-tools';
  bar.innerHTML = `<span class="muted rows-note"></span>
    <form class="find" role="search">
      <input type="search" class="find-input" placeholder="find in loaded rows">
      <button type="submit" class="small">Find next</button>
      <span class="find-result muted" role="status"></span>
    </form>
    <span class="tools-end">
      <details class="column-choice"><summary>Columns</summary><div class="column-list"></div></details>
      <label class="check small"><input type="checkbox" class="follow"> follow new rows</label>
      <a class="button small csv-link">Download CSV</a>
    </span>`;
  const q = (/** @type {string} */ s) => /** @type {HTMLElement} */ (bar.querySelector(s));
  const findInput = /** @type {HTMLInputElement} */ (q('.find-input'));
  findInput.setAttribute('aria-label', `Find in the loaded ${name} rows`);
  findInput.dataset.testid = `find-${name}`;
  const result = q('.find-result');
  result.dataset.testid = `find-result-${name}`;
  const follow = /** @type {HTMLInputElement} */ (q('.follow'));
  follow.dataset.testid = `follow-${name}`;
  follow.addEventListener('change', () => get.table().setFollow(follow.checked));
  const list = q('.column-list');
  q('.column-choice').dataset.testid = `columns-${name}`;

  let from = 0;
  let token = 0;
  findInput.addEventListener('input', () => {
    from = 0;
    token += 1;
    result.textContent = '';
  });
  q('.find').addEventListener('submit', (e) => {
    e.preventDefault();
    const needle = findInput.value.trim();
    if (!needle) return;
    const mine = ++token;
    const store = get.store();
    const table = get.table();
    const start = from >= store.length ? 0 : from;
    let at = start;
    let end = store.length;
    let wrapped = false;
    result.textContent = 'finding…';
    const step = () => {
      if (mine !== token) return; // a new search replaced this one
      const hit = findRow(store, table.shown, needle, at, Math.min(FIND_SLICE, end - at));
      if (hit.row !== null) {
        from = hit.next;
        table.showRow(hit.row);
        result.textContent = `row ${formatCount(hit.row + 1)}`;
        return;
      }
      at = hit.next;
      if (at >= end) {
        if (wrapped || start === 0) {
          result.textContent = `not in the ${formatCount(store.length)} loaded rows`;
          from = 0;
          return;
        }
        [wrapped, at, end] = [true, 0, start]; // from the top, up to where this find began
      }
      requestAnimationFrame(step);
    };
    step();
  });

  /** @param {string[]} columns */
  const setColumns = (columns) => {
    const hidden = new Set(loadHidden()[name] ?? []);
    list.replaceChildren(
      ...columns.map((c) => {
        const label = document.createElement('label');
        label.className = 'check small';
        const box = document.createElement('input');
        box.type = 'checkbox';
        box.checked = !hidden.has(c);
        box.dataset.testid = `column-${name}-${c}`;
        box.addEventListener('change', () => {
          const all = loadHidden();
          const now = new Set(all[name] ?? []);
          if (box.checked) now.delete(c);
          else now.add(c);
          all[name] = [...now];
          saveHidden(all);
          const table = get.table();
          table.setData(get.store(), get.columns(), shownIndexes(get.columns(), all[name]));
        });
        label.append(box, ` ${c}`);
        return label;
      }),
    );
  };

  return { bar, note: q('.rows-note'), csv: /** @type {HTMLAnchorElement} */ (q('.csv-link')), setColumns };
}
