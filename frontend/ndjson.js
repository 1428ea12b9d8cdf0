// @ts-check
/**
 * Pure NDJSON line framing, the same shape as httpx's `LineDecoder`.
 *
 * The decoder takes *text* (already UTF-8 decoded, e.g. by a streaming
 * `TextDecoder`) in arbitrary pieces and returns the complete lines seen so
 * far. It does no I/O and no JSON parsing, so it can be tested directly.
 *
 * Framing rules:
 * - a line ends at `\n`; a `\r` just before it (CRLF) is removed, even when
 *   the `\r` and the `\n` arrive in different pieces;
 * - only `\n` splits: JSON text never holds a raw newline, but it may hold
 *   U+2028/U+2029, which must not split a line (Python's `splitlines` would);
 * - lines that are empty or whitespace only carry nothing in NDJSON and are
 *   dropped unless `keepEmpty` is set;
 * - text after the last `\n` is kept until more text arrives or `flush()`.
 *
 * @module ndjson
 */

export class LineDecoder {
  /**
   * @param {{keepEmpty?: boolean}} [options]
   */
  constructor(options = {}) {
    /** @private @type {string[]} pieces of the unfinished line */
    this._pending = [];
    /** @private */
    this._keepEmpty = Boolean(options.keepEmpty);
  }

  /**
   * Feed a piece of text; return the lines it completed (without terminators).
   * Long lines that arrive in many pieces are joined once, not per piece.
   * @param {string} text
   * @returns {string[]}
   */
  decode(text) {
    /** @type {string[]} */
    const lines = [];
    if (!text) return lines;
    let nl = text.indexOf('\n');
    if (nl === -1) {
      this._pending.push(text);
      return lines;
    }
    let head = text.slice(0, nl);
    if (this._pending.length) {
      this._pending.push(head);
      head = this._pending.join('');
      this._pending = [];
    }
    this._emit(head, lines);
    let start = nl + 1;
    while ((nl = text.indexOf('\n', start)) !== -1) {
      this._emit(text.slice(start, nl), lines);
      start = nl + 1;
    }
    if (start < text.length) this._pending.push(text.slice(start));
    return lines;
  }

  /**
   * End of input: return the unterminated last line, if any, and reset.
   * @returns {string[]}
   */
  flush() {
    /** @type {string[]} */
    const lines = [];
    if (this._pending.length) {
      const rest = this._pending.join('');
      this._pending = [];
      this._emit(rest, lines);
    }
    return lines;
  }

  /**
   * True when text has been fed that does not yet end a line.
   * @returns {boolean}
   */
  get hasPending() {
    return this._pending.length > 0;
  }

  /**
   * @private
   * @param {string} line
   * @param {string[]} out
   */
  _emit(line, out) {
    if (line.charCodeAt(line.length - 1) === 13 /* \r */) line = line.slice(0, -1);
    if (this._keepEmpty || !isBlank(line)) out.push(line);
  }
}

/**
 * @param {string} s
 * @returns {boolean}
 */
function isBlank(s) {
  // Cheap for long lines: a JSON line starts with `{` or `[` right away.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 13 && c !== 10) return false;
  }
  return true;
}
