// @ts-check
/**
 * A virtual-scroll table over a `ColumnStore`: fixed row height, only the
 * visible rows exist in the DOM (a small pool of row elements whose text is
 * rewritten), so a million rows cost the same to show as fifty.
 *
 * Layout: a scroller holds a sticky "layer" exactly one viewport tall (the
 * header and the row pool) followed by a spacer that gives the scroll range.
 * Browsers cap element heights (~17M px in Firefox, ~33M px in Chrome), so
 * past `MAX_SCROLL_PX` the scroll position is mapped proportionally onto the
 * rows. Appending rows only grows the spacer, and the visible rows do not move:
 * past `MAX_SCROLL_PX` that takes an anchor (the first row's virtual offset,
 * kept while the user does not scroll) and a matching nudge of `scrollTop`.
 * There the wheel is scaled down too, so one notch moves as many rows as in a
 * short table.
 *
 * For assistive technology it is an ARIA grid: `aria-rowcount` is the whole
 * table's (not the pool's), each row carries its `aria-rowindex`.
 *
 * @module table
 */

import { setText } from './dom.js';

/** @typedef {import('./columns.js').ColumnStore} ColumnStore */

const MAX_SCROLL_PX = 8_000_000;
const CHAR_PX = 7.3; // one character of 12px monospace
const HEAD_CHAR_PX = 9; // one character of the 11px semi-bold upper-case header

export class VirtualTable {
  /**
   * @param {HTMLElement} root an empty element to fill
   * @param {{rowHeight?: number, testId?: string, label?: string}} [options]
   */
  constructor(root, options = {}) {
    this.root = root;
    this.rowHeight = options.rowHeight ?? 22;
    /** @type {ColumnStore|null} */
    this.store = null;
    /** @type {string[]} */
    this.columns = [];
    /** @type {number[]} indexes into `columns` of the columns shown, in order */
    this.shown = [];
    this.follow = false;
    /** @type {number|null} a row marked by a find */
    this.marked = null;

    root.classList.add('vt');
    this.scroller = el('div', 'vt-scroll');
    this.scroller.tabIndex = 0;
    if (options.testId) this.scroller.dataset.testid = options.testId;
    this.layer = el('div', 'vt-layer');
    this.head = el('div', 'vt-row vt-head');
    this.head.setAttribute('role', 'row');
    this.head.setAttribute('aria-rowindex', '1');
    this.body = el('div', 'vt-body');
    this.body.setAttribute('role', 'rowgroup');
    this.spacer = el('div', 'vt-spacer');
    this.spacer.setAttribute('aria-hidden', 'true');
    this.layer.append(this.head, this.body);
    this.scroller.append(this.layer, this.spacer);
    root.append(this.scroller);
    this.scroller.setAttribute('role', 'grid');
    this.scroller.setAttribute('aria-label', options.label ?? 'rows');
    this.scroller.setAttribute('aria-readonly', 'true');

    /** @type {HTMLElement[]} */
    this._pool = [];
    /** @private rendered window: first row, row count, store length */
    this._drawn = { first: -1, count: -1, length: -1, width: -1 };
    this._charPx = CHAR_PX;
    /** @private digits the row-number column has room for */
    this._numDigits = 0;
    this._raf = 0;
    this._viewH = 0;
    /** @private virtual offset of the rows on screen; null: take it from scrollTop */
    this._anchor = /** @type {number|null} */ (null);
    /** @private the scrollTop this table set itself (its scroll event is not the user's) */
    this._ownTop = -1;
    this.scroller.addEventListener(
      'scroll',
      () => {
        if (Math.abs(this.scroller.scrollTop - this._ownTop) >= 1) this._anchor = null;
        this._ownTop = -1;
        this.schedule();
      },
      { passive: true },
    );
    this._resize = new ResizeObserver(() => {
      this._viewH = 0;
      this.schedule();
    });
    this._resize.observe(this.scroller);
    this.scroller.addEventListener('wheel', (e) => this._wheel(e), { passive: false });
  }

  /**
   * Past `MAX_SCROLL_PX` one scroll pixel is several rows' pixels: scale the
   * wheel down by as much, so a notch moves the usual number of rows.
   * @private
   * @param {WheelEvent} e
   */
  _wheel(e) {
    const n = this.store ? this.store.length : 0;
    const contentH = n * this.rowHeight;
    if (contentH <= MAX_SCROLL_PX || e.ctrlKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) return;
    const scale = contentH / MAX_SCROLL_PX;
    const px = e.deltaMode === 1 ? e.deltaY * this.rowHeight : e.deltaMode === 2 ? e.deltaY * this._viewH : e.deltaY;
    e.preventDefault();
    this.scroller.scrollTop += px / scale;
  }

  /**
   * Bring row `r` into view and mark it (a find's hit).
   * @param {number} r
   */
  showRow(r) {
    const n = this.store ? this.store.length : 0;
    if (r < 0 || r >= n) return;
    this.marked = r;
    this.follow = false;
    const rowH = this.rowHeight;
    const viewH = this._viewH || this.scroller.clientHeight;
    const contentH = n * rowH;
    const scrollH = Math.min(contentH, MAX_SCROLL_PX);
    const maxScroll = Math.max(0, rowH + scrollH - viewH);
    const maxVirtual = Math.max(0, rowH + contentH - viewH);
    const virtualTop = Math.min(maxVirtual, Math.max(0, r * rowH - (viewH - rowH) / 2));
    this._anchor = null;
    this.scroller.scrollTop = maxVirtual ? (virtualTop * maxScroll) / maxVirtual : 0;
    this._drawn.first = -1;
    this.schedule();
  }

  /**
   * Show `store` with these column names (a fresh store resets the view).
   * @param {ColumnStore|null} store
   * @param {string[]} columns
   * @param {number[]} [shown] indexes of the columns to show (default: all)
   */
  setData(store, columns, shown) {
    this.store = store;
    this.columns = columns;
    this.shown = shown ?? columns.map((_, j) => j);
    this.marked = null;
    this._widths = null;
    this.scroller.setAttribute('aria-colcount', String(this.shown.length + 1));
    this.head.replaceChildren(
      cell('#', 'vt-num', 'columnheader'),
      ...this.shown.map((j) => {
        const s = cell(columns[j], undefined, 'columnheader');
        s.title = columns[j];
        return s;
      }),
    );
    for (const r of this._pool) r.remove();
    this._pool = [];
    this._drawn = { first: -1, count: -1, length: -1, width: -1 };
    this._setWidths();
    this._anchor = null;
    this.scroller.scrollTop = 0;
    this.scroller.setAttribute('aria-rowcount', String((store?.length ?? 0) + 1));
    this.schedule();
  }

  /** Ask for a repaint on the next animation frame (cheap to call often). */
  schedule() {
    if (this._raf) return;
    this._raf = requestAnimationFrame(() => {
      this._raf = 0;
      this.render();
    });
  }

  /** Repaint now: spacer height, then the visible rows if they changed. */
  render() {
    if (!this.root.isConnected || this.root.hidden) return;
    const store = this.store;
    const n = store ? store.length : 0;
    const rowH = this.rowHeight;
    if (!this._viewH) this._viewH = this.scroller.clientHeight;
    const viewH = this._viewH;
    const headH = rowH;
    const bodyH = Math.max(0, viewH - headH);
    // The row-number column fits 7 digits from the start; it widens (once per
    // extra digit) only past 9,999,999 rows.
    if (this._widths && String(n).length > this._numDigits) this._widths = null;
    if (!this._widths && store && n) this._setWidths();

    const contentH = n * rowH;
    const scrollH = Math.min(contentH, MAX_SCROLL_PX);
    this.spacer.style.height = `${Math.max(0, headH + scrollH - viewH)}px`;
    if (this.follow && n) {
      this.scroller.scrollTop = this.scroller.scrollHeight;
    }
    const maxScroll = Math.max(0, headH + scrollH - viewH);
    const maxVirtual = Math.max(0, headH + contentH - viewH);
    const top = Math.min(this.scroller.scrollTop, maxScroll);
    let virtualTop = maxScroll ? (top * maxVirtual) / maxScroll : 0;
    if (contentH > scrollH && !this.follow && top > 0) {
      // Scaled scrolling: more rows change the scale, so keep the rows on
      // screen (the anchor) and move the scroll position to match instead.
      if (this._anchor !== null && this._anchor <= maxVirtual) {
        virtualTop = this._anchor;
        const want = (virtualTop * maxScroll) / maxVirtual;
        if (Math.abs(want - top) >= 1) {
          // Not read back: that would force a layout in the middle of the frame.
          this.scroller.scrollTop = want;
          this._ownTop = want;
        }
      }
      this._anchor = virtualTop;
    } else {
      this._anchor = null;
    }
    const first = Math.floor(virtualTop / rowH);
    const offset = first * rowH - virtualTop;
    const count = Math.min(Math.ceil(bodyH / rowH) + 1, Math.max(0, n - first));

    this.body.style.transform = `translateY(${offset}px)`;
    if (this._drawn.length !== n) this.scroller.setAttribute('aria-rowcount', String(n + 1));
    // Rows are append-only, so an unchanged window needs no DOM work at all.
    const d = this._drawn;
    if (d.first === first && d.count === count && d.width === this.shown.length) {
      d.length = n;
      return;
    }
    const sameColumns = d.width === this.shown.length;
    this._ensurePool(Math.ceil(bodyH / rowH) + 1);
    for (let k = 0; k < this._pool.length; k++) {
      const row = this._pool[k];
      const r = first + k;
      if (k >= count || !store) {
        if (!row.hidden) row.hidden = true;
        continue;
      }
      if (row.hidden) row.hidden = false;
      row.classList.toggle('marked', r === this.marked);
      if (sameColumns && row.dataset.row === String(r)) continue;
      row.dataset.row = String(r);
      row.setAttribute('aria-rowindex', String(r + 2));
      row.classList.toggle('odd', (r & 1) === 1);
      const cells = row.children;
      setText(/** @type {HTMLElement} */ (cells[0]), String(r + 1));
      for (let k = 0; k < this.shown.length; k++) {
        const c = /** @type {HTMLElement} */ (cells[k + 1]);
        const v = store.get(r, this.shown[k]);
        if (v === null || v === undefined) {
          setText(c, 'null');
          c.classList.add('null');
        } else {
          setText(c, typeof v === 'object' ? JSON.stringify(v) : String(v));
          c.classList.remove('null');
        }
      }
    }
    this._drawn = { first, count, length: n, width: this.shown.length };
  }

  /** @param {boolean} on keep the last row in view while rows arrive */
  setFollow(on) {
    this.follow = on;
    this.schedule();
  }

  destroy() {
    cancelAnimationFrame(this._raf);
    this._resize.disconnect();
    this.root.replaceChildren();
  }

  /** @private @param {number} size */
  _ensurePool(size) {
    while (this._pool.length < size) {
      const row = el('div', 'vt-row');
      row.setAttribute('role', 'row');
      row.append(cell('', 'vt-num', 'rowheader'), ...this.shown.map(() => cell('', undefined, 'gridcell')));
      row.style.top = `${this._pool.length * this.rowHeight}px`;
      this.body.append(row);
      this._pool.push(row);
    }
  }

  /** @private column widths from header names and the first rows */
  _setWidths() {
    const store = this.store;
    const px = this._charPx;
    const sample = store ? Math.min(store.length, 200) : 0;
    const digits = String(Math.max(store?.length ?? 0, 9_999_999)).length;
    this._numDigits = digits;
    // 16 px of padding, 1 px of border, and a little room for fonts wider than CHAR_PX.
    const widths = [Math.ceil(digits * (px + 0.5) + 18)];
    this.shown.forEach((j) => {
      const name = this.columns[j];
      let chars = 0;
      for (let r = 0; r < sample; r++) {
        const v = /** @type {ColumnStore} */ (store).get(r, j);
        const len = v === null || v === undefined ? 4 : String(v).length;
        if (len > chars) chars = len;
      }
      // Headers are upper-case sans-serif: wider per character than the data.
      const w = Math.max(chars * px, name.length * HEAD_CHAR_PX) + 20;
      widths.push(Math.min(360, Math.max(56, Math.ceil(w))));
    });
    if (sample) this._widths = widths;
    const template = widths.map((w) => `${w}px`).join(' ');
    const total = widths.reduce((a, b) => a + b, 0);
    this.root.style.setProperty('--vt-columns', template);
    this.root.style.setProperty('--vt-width', `${total}px`);
    this.root.style.setProperty('--vt-row', `${this.rowHeight}px`);
    this._drawn.width = -1;
  }
}

/**
 * @param {string} tag
 * @param {string} className
 */
function el(tag, className) {
  const e = document.createElement(tag);
  e.className = className;
  return e;
}

/**
 * @param {string} text
 * @param {string} [className]
 * @param {string} [role]
 */
function cell(text, className, role) {
  const e = el('span', className ? `vt-cell ${className}` : 'vt-cell');
  if (role) e.setAttribute('role', role);
  e.textContent = text;
  return e;
}
