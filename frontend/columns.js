// @ts-check
/**
 * Columnar row storage for the table: rows live in flat typed arrays, never
 * in the DOM, and cross from the parsing Worker to the page cheaply.
 *
 * The Worker's `BatchEncoder` turns each `records` line (an array of row
 * arrays, `format=arrays`) into one chunk of columns, each encoded as
 *
 * - `num`:  every value a number or null -> `Float64Array` (null as NaN, which
 *           JSON cannot carry, so the mapping is exact);
 * - `dict`: repeated values (CIDs, stations, event names) -> `Int32Array` codes
 *           into a per-column dictionary; only entries new in this batch are
 *           sent (`add`);
 * - `raw`:  a column that turned out almost all distinct (timestamps) -> the
 *           plain values, so dictionaries stay small.
 *
 * Typed arrays are transferred, not copied, so the page spends almost nothing
 * per batch. The page's `ColumnStore` appends chunks and answers `get(row, col)`.
 * Both halves are pure and run under node's test runner.
 *
 * @module columns
 */

/**
 * @typedef {{k: 'num', v: Float64Array}
 *         | {k: 'dict', c: Int32Array, add: any[]}
 *         | {k: 'raw', v: any[]}} EncodedColumn
 * @typedef {{n: number, cols: EncodedColumn[]}} EncodedBatch
 */

/** Keep deduplicating a column while it has at most this many distinct values... */
const DICT_MAX = 1 << 20;
/** ...and, once this many values were seen, while at most half of them are distinct. */
const DICT_PROBE = 20000;

export class BatchEncoder {
  /**
   * @param {number} width the number of columns
   */
  constructor(width) {
    this.width = width;
    /** @private @type {(Map<any, number>|null)[]} null once a column went `raw` */
    this._dicts = Array.from({ length: width }, () => new Map());
    /** @private @type {number[]} values seen per column while dictionary-encoded */
    this._seen = new Array(width).fill(0);
  }

  /**
   * Encode a batch of rows. Rows that are objects (the default wire format)
   * are read by `columns` names; arrays are read by position.
   * @param {any[]} rows
   * @param {string[]} [columns] names, needed only for object rows
   * @returns {{batch: EncodedBatch, transfer: ArrayBuffer[]}}
   */
  encode(rows, columns) {
    const n = rows.length;
    if (n && !Array.isArray(rows[0]) && columns) {
      rows = rows.map((r) => columns.map((c) => r[c]));
    }
    /** @type {EncodedColumn[]} */
    const cols = [];
    /** @type {ArrayBuffer[]} */
    const transfer = [];
    for (let j = 0; j < this.width; j++) {
      const col = this._encodeColumn(rows, j);
      if (col.k === 'num') transfer.push(/** @type {ArrayBuffer} */ (col.v.buffer));
      if (col.k === 'dict') transfer.push(/** @type {ArrayBuffer} */ (col.c.buffer));
      cols.push(col);
    }
    return { batch: { n, cols }, transfer };
  }

  /**
   * @private
   * @param {any[][]} rows
   * @param {number} j
   * @returns {EncodedColumn}
   */
  _encodeColumn(rows, j) {
    const n = rows.length;
    let numeric = true;
    for (let i = 0; i < n; i++) {
      const v = rows[i][j];
      if (v !== null && typeof v !== 'number') {
        numeric = false;
        break;
      }
    }
    if (numeric) {
      const v = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const x = rows[i][j];
        v[i] = x === null ? NaN : x;
      }
      return { k: 'num', v };
    }
    const dict = this._dicts[j];
    if (dict) {
      const c = new Int32Array(n);
      const add = [];
      for (let i = 0; i < n; i++) {
        let x = rows[i][j];
        if (x === undefined) x = null;
        else if (x !== null && typeof x === 'object') x = JSON.stringify(x);
        let code = dict.get(x);
        if (code === undefined) {
          code = dict.size;
          dict.set(x, code);
          add.push(x);
        }
        c[i] = code;
      }
      this._seen[j] += n;
      if (dict.size > DICT_MAX || (this._seen[j] >= DICT_PROBE && dict.size * 2 > this._seen[j])) {
        this._dicts[j] = null; // later batches go raw; codes already sent stay valid
      }
      return { k: 'dict', c, add };
    }
    const v = new Array(n);
    for (let i = 0; i < n; i++) {
      const x = rows[i][j];
      v[i] = x === undefined ? null : x;
    }
    return { k: 'raw', v };
  }
}

/**
 * @typedef {{start: number, n: number, cols: EncodedColumn[]}} Chunk
 */

export class ColumnStore {
  /**
   * @param {string[]} columns the column names, in wire order
   */
  constructor(columns) {
    this.columns = columns;
    /** number of rows */
    this.length = 0;
    /** @type {Chunk[]} */
    this.chunks = [];
    /** @private @type {any[][]} the page's copy of each column's dictionary */
    this._dicts = columns.map(() => []);
    /** @private last chunk found, rows are read in runs */
    this._hint = 0;
  }

  /**
   * Append one encoded batch (from `BatchEncoder.encode`).
   * @param {EncodedBatch} batch
   */
  append(batch) {
    if (batch.cols.length !== this.columns.length) {
      throw new Error(`batch has ${batch.cols.length} columns, store has ${this.columns.length}`);
    }
    batch.cols.forEach((col, j) => {
      if (col.k === 'dict' && col.add.length) {
        const d = this._dicts[j];
        for (const x of col.add) d.push(x);
      }
    });
    if (batch.n === 0) return;
    this.chunks.push({ start: this.length, n: batch.n, cols: batch.cols });
    this.length += batch.n;
  }

  /**
   * The value at `row`, column index `col` (null for SQL NULL).
   * @param {number} row
   * @param {number} col
   * @returns {any}
   */
  get(row, col) {
    const chunk = this._chunkOf(row);
    const i = row - chunk.start;
    const c = chunk.cols[col];
    if (c.k === 'num') {
      const x = c.v[i];
      return Number.isNaN(x) ? null : x;
    }
    if (c.k === 'dict') return this._dicts[col][c.c[i]];
    return c.v[i];
  }

  /**
   * A whole column as a plain array (for tests and exports; O(rows)).
   * @param {string|number} column a name or an index
   * @returns {any[]}
   */
  column(column) {
    const j = typeof column === 'number' ? column : this.columns.indexOf(column);
    if (j < 0) throw new Error(`no column ${column}`);
    const out = new Array(this.length);
    for (let r = 0; r < this.length; r++) out[r] = this.get(r, j);
    return out;
  }

  /**
   * @private
   * @param {number} row
   * @returns {Chunk}
   */
  _chunkOf(row) {
    if (row < 0 || row >= this.length) throw new RangeError(`row ${row} out of 0..${this.length}`);
    const chunks = this.chunks;
    const h = chunks[this._hint];
    if (h && row >= h.start && row < h.start + h.n) return h;
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (chunks[mid].start <= row) lo = mid;
      else hi = mid - 1;
    }
    this._hint = lo;
    return chunks[lo];
  }
}
