// @ts-check
/**
 * The records digest (docs/protocol.md, "Digest"), computed by the browser as it reads:
 * `h` starts as 32 zero bytes; for every `records` line, `h = SHA-256(h || the bytes of
 * that line's `data` value as they appear in the line)`. The `complete` line carries `h`
 * in hex; a `since` token carries `h` so far, so a consumer started from a token goes on
 * from there.
 *
 * SHA-256 is WebCrypto's (`crypto.subtle`), which is asynchronous: `RecordsDigest` chains
 * the lines' hashes in order on one promise. Browsers give `crypto.subtle` to secure
 * contexts only (https, localhost): elsewhere `available` is false and nothing is checked.
 *
 * @module digest
 */

const DATA_KEY = '"data":';
const SINCE_KEY = ',"since":"';
const ZERO = new Uint8Array(32);

/**
 * The exact text of a records line's `data` value. The server writes `data` before
 * `since`, the last key; a token holds no quote, and an escaped quote is never followed
 * by `data":`, so the first `"data":` and the last `,"since":"` bound the value.
 * @param {string} raw a records line as received (without its newline)
 * @returns {string|null}
 */
export function dataText(raw) {
  const at = raw.indexOf(DATA_KEY);
  const end = raw.lastIndexOf(SINCE_KEY);
  return at < 0 || end < at ? null : raw.slice(at + DATA_KEY.length, end);
}

/** @param {Uint8Array} bytes @returns {string} */
export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The digest's chain a `since` token carries (the 8th value of its msgpack payload, 32
 * bytes), read without verifying the token; null when it has none or cannot be read.
 * @param {string} token
 * @returns {Uint8Array|null}
 */
export function chainOfToken(token) {
  let raw;
  try {
    const b64 = token.replace(/-/g, '+').replace(/_/g, '/');
    raw = Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) =>
      c.charCodeAt(0),
    );
  } catch {
    return null;
  }
  const end = raw.length - 32; // the HMAC follows the payload
  let at = 1; // after the version byte
  if (end <= at || raw[0] !== 1 || (raw[at] & 0xf0) !== 0x90) return null;
  const count = raw[at++] & 0x0f;
  for (let i = 0; i < count && at < end; i++) {
    const tag = raw[at];
    if (i === 7) return tag === 0xc4 && raw[at + 1] === 32 ? raw.slice(at + 2, at + 34) : null;
    at += valueSize(raw, at);
  }
  return null;
}

/**
 * Bytes of the msgpack value at `at`, for the kinds a token holds (ints, nil, strings).
 * @param {Uint8Array} raw @param {number} at @returns {number}
 */
function valueSize(raw, at) {
  const tag = raw[at];
  if (tag <= 0x7f || tag >= 0xe0 || tag === 0xc0) return 1;
  if (tag >= 0xa0 && tag <= 0xbf) return 1 + (tag & 0x1f);
  /** @type {Record<number, number>} */
  const fixed = { 0xcc: 2, 0xcd: 3, 0xce: 5, 0xcf: 9, 0xd0: 2, 0xd1: 3, 0xd2: 5, 0xd3: 9 };
  if (tag in fixed) return fixed[tag];
  if (tag === 0xd9 || tag === 0xc4) return 2 + raw[at + 1];
  if (tag === 0xda) return 3 + ((raw[at + 1] << 8) | raw[at + 2]);
  return Infinity; // not a token's value: stop
}

export class RecordsDigest {
  /**
   * @param {string|null} since the token the consumer starts from (null: the start)
   * @param {SubtleCrypto|null} [subtle] injectable; default `crypto.subtle` (null: none)
   */
  constructor(since, subtle = globalThis.crypto?.subtle) {
    /** @private */
    this._subtle = subtle;
    const start = since == null ? ZERO : chainOfToken(since);
    /** false: nothing is checked (no WebCrypto, or a token without a chain) */
    this.available = Boolean(subtle) && start !== null;
    /** @private @type {Promise<Uint8Array>} the chain after the lines added so far */
    this._chain = Promise.resolve(start ?? ZERO);
    /** @private */
    this._encoder = new TextEncoder();
  }

  /**
   * Add a records line (as received) to the chain.
   * @param {string} raw
   */
  add(raw) {
    if (!this.available || !this._subtle) return;
    const text = dataText(raw);
    if (text === null) {
      this.available = false;
      return;
    }
    const data = this._encoder.encode(text);
    const subtle = this._subtle;
    this._chain = this._chain.then(async (h) => {
      const joined = new Uint8Array(32 + data.length);
      joined.set(h, 0);
      joined.set(data, 32);
      return new Uint8Array(await subtle.digest('SHA-256', joined));
    });
  }

  /**
   * The chain so far in hex, or null when nothing is checked.
   * @returns {Promise<string|null>}
   */
  async hex() {
    return this.available ? toHex(await this._chain) : null;
  }
}
