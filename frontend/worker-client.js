// @ts-check
/**
 * The page's side of `stream-worker.js` (its header lists the messages).
 *
 * Requests (`pick`, `file`, `text`, `clear`, `create`) are promises matched to their
 * reply by id. Streams are numbered: `startStream` and `discardStream` each begin
 * a new generation, and stream messages of an older one are dropped here, so
 * a stopped stream's last words never reach the page.
 *
 * @module worker-client
 */

/**
 * @typedef {object} WorkerClientHandlers
 * @property {(msg: any) => void} onStream a stream message of the current stream
 * @property {(message: string) => void} onCrash the worker itself failed; pending requests are rejected
 */

export class WorkerClient {
  /**
   * @param {URL} url of stream-worker.js
   * @param {WorkerClientHandlers} handlers
   */
  constructor(url, handlers) {
    /** @private */
    this._worker = new Worker(url, { type: 'module' });
    /** @private */
    this._nextId = 1;
    /** @private @type {Map<number, {resolve: (m: any) => void, reject: (e: Error) => void}>} */
    this._pending = new Map();
    /** the current stream's generation */
    this.gen = 0;
    this._worker.onmessage = (/** @type {MessageEvent} */ e) => {
      const msg = e.data;
      const waiting = typeof msg.id === 'number' ? this._pending.get(msg.id) : undefined;
      if (waiting) {
        this._pending.delete(msg.id);
        if (msg.type === 'failed') waiting.reject(Object.assign(new Error(msg.error?.message), msg.error));
        else waiting.resolve(msg);
        return;
      }
      if (msg.gen === this.gen) handlers.onStream(msg);
    };
    this._worker.onerror = (/** @type {ErrorEvent} */ e) => {
      for (const p of this._pending.values()) p.reject(new Error(`worker error: ${e.message}`));
      this._pending.clear();
      handlers.onCrash(e.message);
    };
  }

  /**
   * Ask the worker for something; resolves with its reply, rejects on `failed`.
   * @param {'pick'|'file'|'text'|'clear'|'create'} type
   * @param {Record<string, unknown>} payload
   * @returns {Promise<any>}
   */
  request(type, payload) {
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject });
      this._worker.postMessage({ type, id, ...payload });
    });
  }

  /**
   * Follow the stream at `url` (absolute: the worker has no document base).
   * @param {string} url
   * @param {Record<string, string>} headers
   */
  startStream(url, headers) {
    this.gen += 1;
    this._worker.postMessage({ type: 'start', gen: this.gen, url, headers });
  }

  /** Cancel the stream; its last messages (`aborted`, `end`) still arrive. */
  stopStream() {
    this._worker.postMessage({ type: 'stop' });
  }

  /** Cancel the stream, if any, and ignore whatever it still sends (a new job replaces it). */
  discardStream() {
    this._worker.postMessage({ type: 'stop' });
    this.gen += 1;
  }

  /** Abort the current request only: the worker's consumer resumes from `since`. */
  dropConnection() {
    this._worker.postMessage({ type: 'drop' });
  }
}
