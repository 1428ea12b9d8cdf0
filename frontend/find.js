// @ts-check
/**
 * Find text in the rows already loaded (a `ColumnStore`), from a row on,
 * a bounded number of rows at a time so the page stays responsive. Pure
 * (node tests).
 *
 * @module find
 */

/** @typedef {import('./columns.js').ColumnStore} ColumnStore */

/**
 * @param {ColumnStore} store
 * @param {number[]} columns indexes searched
 * @param {string} needle found case-insensitively inside a cell's text
 * @param {number} from the first row looked at
 * @param {number} budget at most this many rows are looked at
 * @returns {{row: number|null, next: number}} the row found (null: none yet) and where
 *   to go on; `next === store.length` when the rows are exhausted
 */
export function findRow(store, columns, needle, from, budget) {
  const want = needle.toLowerCase();
  const end = Math.min(store.length, from + budget);
  for (let r = Math.max(0, from); r < end; r++) {
    for (const j of columns) {
      const v = store.get(r, j);
      if (v !== null && v !== undefined && String(v).toLowerCase().includes(want)) return { row: r, next: r + 1 };
    }
  }
  return { row: null, next: end };
}
