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
 * - `dict`: repeated values (CIDs, stations, event names) -> integer codes
 *           into a per-column dictionary, 1, 2 or 4 bytes each as the
 *           dictionary's size allows; only entries new in this batch are sent
 *           (`add`);
 * - `str`:  a column that turned out almost all distinct (timestamps) and
 *           holds only strings and nulls -> one joined string plus `Int32Array`
 *           end offsets (`z` flags nulls): one heap object per batch instead of
 *           thousands, which keeps the page's garbage collector pauses short;
 * - `raw`:  anything else -> the plain values.
 *
 * Typed arrays are transferred, not copied, so the page spends almost nothing
 * per batch. The page's `ColumnStore` appends chunks and answers `get(row, col)`.
 * Both halves are pure and run under node's test runner.
 *
 * @module columns
 */

/**
 * @typedef {{k: 'num', v: Float64Array}
 *         | {k: 'dict', c: Uint8Array|Uint16Array|Int32Array, add: any[]}
 *         | {k: 'str', s: string, o: Int32Array, z: Uint8Array|null}
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
      if (col.k === 'str') {
        transfer.push(/** @type {ArrayBuffer} */ (col.o.buffer));
        if (col.z) transfer.push(/** @type {ArrayBuffer} */ (col.z.buffer));
      }
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
      const size = dict.size;
      const narrow = size <= 0x100 ? new Uint8Array(n) : size <= 0x10000 ? new Uint16Array(n) : null;
      if (narrow) narrow.set(c);
      if (dict.size > DICT_MAX || (this._seen[j] >= DICT_PROBE && dict.size * 2 > this._seen[j])) {
        this._dicts[j] = null; // later batches go raw; codes already sent stay valid
      }
      return { k: 'dict', c: narrow ?? c, add };
    }
    let strings = true;
    for (let i = 0; i < n; i++) {
      const x = rows[i][j];
      if (x !== null && x !== undefined && typeof x !== 'string') {
        strings = false;
        break;
      }
    }
    if (strings) {
      const parts = new Array(n);
      const o = new Int32Array(n);
      /** @type {Uint8Array|null} */
      let z = null;
      let end = 0;
      for (let i = 0; i < n; i++) {
        const x = rows[i][j];
        if (x === null || x === undefined) {
          (z ??= new Uint8Array(n))[i] = 1;
          parts[i] = '';
        } else {
          parts[i] = x;
          end += x.length;
        }
        o[i] = end;
      }
      return { k: 'str', s: parts.join(''), o, z };
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
    if (c.k === 'str') {
      if (c.z && c.z[i]) return null;
      return c.s.slice(i ? c.o[i - 1] : 0, c.o[i]);
    }
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
   * Per column: its name, how its chunks are encoded (kind: count) and its
   * dictionary size. For the console and performance reports.
   * @returns {{name: string, kinds: Record<string, number>, dict: number}[]}
   */
  stats() {
    return this.columns.map((name, j) => {
      /** @type {Record<string, number>} */
      const kinds = {};
      for (const chunk of this.chunks) kinds[chunk.cols[j].k] = (kinds[chunk.cols[j].k] ?? 0) + 1;
      return { name, kinds, dict: this._dicts[j].length };
    });
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
