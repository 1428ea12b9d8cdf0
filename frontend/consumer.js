// @ts-check
/**
 * Resumable consumer of the trace NDJSON stream (see docs/protocol.md, "NDJSON lines").
 *
 * One `StreamConsumer` follows one job stream to its `complete` line across
 * any number of HTTP connections:
 *
 * - bytes come from `fetch` through a `ReadableStream` reader and a streaming
 *   `TextDecoder` (a UTF-8 character split across chunks is reassembled), then
 *   through the pure `LineDecoder`;
 * - every `records` line carries a `since` token; the last one seen (also from
 *   `reconnect` and `error` lines, and a heartbeat's bookmark) is kept in `consumer.since`;
 * - the records digest is computed over the `records` lines as they arrive
 *   (`digest.js`) and checked against the `complete` line's: a mismatch ends it
 *   with a `StreamError` `digest_mismatch` (not retried);
 * - a 410 (`job_expired`: the job is gone) is final: the `StreamError` names the job
 *   and the last position (`jobId`, `since`), and it is never retried;
 * - after a network error, a `reconnect` line, a retryable `error` line, a
 *   retryable HTTP status (408, 429, 502, 503, 504; `Retry-After` honoured) or
 *   a body that ends without `complete`, it waits a jittered exponential
 *   backoff and requests `<streamUrl>?since=<token>` (other query parameters,
 *   such as `format=arrays`, are kept);
 * - a non-retryable `error` line or any other HTTP error before the body
 *   (RFC 9457 problem+json) ends it with a `StreamError` carrying the `code`;
 * - the caller's `AbortSignal` cancels everything; `dropConnection()` aborts
 *   only the current request, and the consumer resumes from `since`.
 *
 * Lines are passed through unchanged. On resume the server re-sends `meta`
 * (`resumed: true`) and the current domain's `domain_start`, so a UI must treat
 * a repeated `domain_start` as "continue", not "reset". Records are never sent
 * twice when the token is honoured, and the consumer never replays any.
 *
 * @module consumer
 */

import { RecordsDigest } from './digest.js';
import { LineDecoder } from './ndjson.js';
import { problemError, readJsonBody } from './problem.js';

/**
 * @typedef {'idle'|'connecting'|'streaming'|'reconnecting'|'done'|'failed'|'aborted'} StateName
 *
 * @typedef {object} ConsumerState
 * @property {StateName} state
 * @property {number} attempt consecutive failed connections since the last
 *   progress (0 on the first connection and after records arrived)
 * @property {Error} [error] why the consumer is reconnecting or failed
 * @property {number} [delayMs] the wait before the next connection ('reconnecting')
 * @property {string|null} since the token the next connection will use
 * @property {number} connections HTTP requests made so far
 *
 * @typedef {{type: string, [key: string]: any}} Line one parsed NDJSON line
 * @typedef {{type: 'records', domain: string, batch: number, data: any[], since: string}} RecordsLine
 *
 * @typedef {object} BackoffOptions
 * @property {number} [initialMs=250] the base delay of the first retry
 * @property {number} [maxMs=15000] the cap of the base delay
 * @property {number} [factor=2] growth per consecutive failure
 *
 * @typedef {object} ConsumerOptions
 * @property {string|null} [since] start from this token instead of the beginning
 *   (default: the `since` query parameter of `streamUrl`, if any)
 * @property {AbortSignal} [signal] cancels the whole consumer
 * @property {Record<string, string>} [headers] extra request headers (e.g. an API key)
 * @property {(line: Line) => void} [onLine] every parsed line, records included
 * @property {(line: RecordsLine) => void} [onRecords] `records` lines only, after `onLine`
 * @property {(state: ConsumerState) => void} [onState] every state change
 * @property {BackoffOptions} [backoff]
 * @property {number} [maxRetries=12] consecutive failed connections without
 *   progress before giving up
 * @property {number} [idleTimeoutMs=45000] drop a connection that delivers no byte for
 *   this long, then resume (0: never); catches half-open TCP connections. The server
 *   writes a heartbeat line after 15 s of silence, so the default is three intervals
 * @property {typeof fetch} [fetch] injectable for tests
 * @property {(ms: number, signal?: AbortSignal) => Promise<void>} [sleep] injectable for tests
 * @property {() => number} [random] injectable for tests; returns [0, 1)
 *
 * @typedef {object} ConsumerResult
 * @property {Line} complete the `complete` line
 * @property {string|null} since the last token seen
 * @property {number} connections HTTP requests made
 * @property {string|null} digest the records digest computed here (hex), checked
 *   against the `complete` line's; null when it could not be checked (no WebCrypto
 *   outside a secure context, a start token without a chain, or no digest sent)
 */

/** An error that ended a connection or the consumer; `code` is the wire code. */
export class StreamError extends Error {
  /**
   * @param {string} message
   * @param {{code: string, retryable?: boolean, status?: number,
   *          retryAfterMs?: number, problem?: any, cause?: unknown,
   *          jobId?: string, since?: string|null}} details
   */
  constructor(message, details) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'StreamError';
    /** stable code: the server's (`invalid_token`, ...) or the consumer's own
     * (`network_error`, `connection_dropped`, `incomplete_stream`, `bad_line`,
     * `idle_timeout`, `reconnect`, `http_<status>`) */
    this.code = details.code;
    this.retryable = Boolean(details.retryable);
    /** HTTP status when the error is an HTTP response */
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
    /** the problem+json body, when there was one */
    this.problem = details.problem;
    /** a 410 (the job is gone): its job id and the last position the consumer had */
    this.jobId = details.jobId;
    this.since = details.since;
  }
}

/** HTTP statuses worth retrying: the request may succeed later or elsewhere. */
const RETRYABLE_STATUS = new Set([408, 429, 502, 503, 504]);

/**
 * Return `url` with its `since` query parameter set (or removed for null),
 * keeping every other parameter and the fragment. Works on relative URLs.
 * @param {string} url
 * @param {string|null} since
 * @returns {string}
 */
export function withSince(url, since) {
  const hashAt = url.indexOf('#');
  const hash = hashAt >= 0 ? url.slice(hashAt) : '';
  const rest = hashAt >= 0 ? url.slice(0, hashAt) : url;
  const q = rest.indexOf('?');
  const path = q >= 0 ? rest.slice(0, q) : rest;
  const params = new URLSearchParams(q >= 0 ? rest.slice(q + 1) : '');
  if (since == null) params.delete('since');
  else params.set('since', since);
  const query = params.toString();
  return path + (query ? `?${query}` : '') + hash;
}

/**
 * The `since` query parameter of `url`, or null.
 * @param {string} url
 * @returns {string|null}
 */
function sinceOf(url) {
  const q = url.split('#', 1)[0].indexOf('?');
  return q < 0 ? null : new URLSearchParams(url.split('#', 1)[0].slice(q + 1)).get('since');
}

/**
 * Parse a `Retry-After` header (delay seconds or an HTTP date) to milliseconds.
 * @param {string|null} value
 * @param {number} [now]
 * @returns {number|undefined}
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * A sleep that an AbortSignal interrupts (rejecting with the signal's reason).
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
export function abortableSleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * @typedef {{kind: 'complete', line: Line} | {kind: 'retry', error: StreamError, planned?: boolean}} Outcome
 */

export class StreamConsumer {
  /**
   * @param {string} streamUrl the stream URL, e.g. `api/trace/job/ID/stream?format=arrays`
   * @param {ConsumerOptions} [options]
   */
  constructor(streamUrl, options = {}) {
    this.streamUrl = streamUrl;
    /** @type {string|null} the last token seen: where the next connection resumes */
    this.since = options.since ?? sinceOf(streamUrl);
    /** @type {StateName} */
    this.state = 'idle';
    /** consecutive failed connections without progress */
    this.attempt = 0;
    /** HTTP requests made so far */
    this.connections = 0;
    /** @private */
    this._options = options;
    /** @private */
    this._fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    /** @private */
    this._sleep = options.sleep ?? abortableSleep;
    /** @private */
    this._random = options.random ?? Math.random;
    /** @private */
    this._backoff = { initialMs: 250, maxMs: 15000, factor: 2, ...options.backoff };
    /** @private */
    this._maxRetries = options.maxRetries ?? 12;
    /** @private @type {AbortController|null} the current request */
    this._connection = null;
    /** @private */
    this._progressed = false;
    /** @private */
    this._started = false;
    /** @private the records digest over the records lines received */
    this._digest = new RecordsDigest(this.since);
  }

  /**
   * Follow the stream to its `complete` line.
   * Resolves with the `complete` line; rejects with a `StreamError` (state
   * 'failed') or, after the signal fired, with the signal's reason (state
   * 'aborted'). A consumer runs once.
   * @returns {Promise<ConsumerResult>}
   */
  async run() {
    if (this._started) throw new Error('StreamConsumer.run() may be called once');
    this._started = true;
    const signal = this._options.signal;
    try {
      for (;;) {
        signal?.throwIfAborted();
        this._progressed = false;
        this._setState('connecting');
        const outcome = await this._connectOnce();
        if (outcome.kind === 'complete') {
          const digest = await this._checkDigest(outcome.line);
          this._setState('done');
          return {
            complete: outcome.line,
            since: this.since,
            connections: this.connections,
            digest,
          };
        }
        this.attempt = this._progressed ? 1 : this.attempt + 1;
        if (this.attempt > this._maxRetries) throw outcome.error;
        const delayMs = this._delayFor(outcome);
        this._setState('reconnecting', { error: outcome.error, delayMs });
        await this._sleep(delayMs, signal);
      }
    } catch (err) {
      if (signal?.aborted) {
        this._setState('aborted', { error: asError(signal.reason) });
        throw signal.reason;
      }
      this._setState('failed', { error: asError(err) });
      throw err;
    }
  }

  /**
   * The digest computed over the records received, checked against `complete`'s.
   * @private
   * @param {Line} complete
   * @returns {Promise<string|null>} the digest, or null when it could not be checked
   */
  async _checkDigest(complete) {
    const computed = await this._digest.hex();
    const expected = complete.digest;
    if (computed === null || typeof expected !== 'string') return null;
    if (computed !== expected) {
      throw new StreamError(
        `the records digest does not match: the server sent ${expected}, ` +
          `the records received give ${computed}`,
        { code: 'digest_mismatch', since: this.since },
      );
    }
    return computed;
  }

  /**
   * Abort the current HTTP request only (as a network failure would); the
   * consumer then reconnects from `since`. Returns false when no request is open.
   * @returns {boolean}
   */
  dropConnection() {
    if (!this._connection) return false;
    this._connection.abort(
      new StreamError('connection dropped by the client', {
        code: 'connection_dropped',
        retryable: true,
      }),
    );
    return true;
  }

  /**
   * @private
   * @param {StateName} state
   * @param {{error?: Error, delayMs?: number}} [extra]
   */
  _setState(state, extra = {}) {
    this.state = state;
    this._options.onState?.({
      state,
      attempt: this.attempt,
      since: this.since,
      connections: this.connections,
      ...extra,
    });
  }

  /**
   * @private
   * @param {Outcome & {kind: 'retry'}} outcome
   * @returns {number}
   */
  _delayFor(outcome) {
    const { initialMs, maxMs, factor } = this._backoff;
    if (outcome.planned) {
      // A draining server asks every client to come back at once: spread them.
      return Math.round(this._random() * initialMs);
    }
    const base = Math.min(maxMs, initialMs * factor ** (this.attempt - 1));
    // "Equal jitter": never zero, never more than the base.
    const jittered = base / 2 + (this._random() * base) / 2;
    return Math.round(Math.max(jittered, outcome.error.retryAfterMs ?? 0));
  }

  /**
   * One HTTP request, read to its end. Returns what to do next; throws a
   * non-retryable StreamError, or the signal's reason when aborted.
   * @private
   * @returns {Promise<Outcome>}
   */
  async _connectOnce() {
    const signal = this._options.signal;
    const ctrl = new AbortController();
    const onAbort = () => ctrl.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    this._connection = ctrl;
    const idleMs = this._options.idleTimeoutMs ?? 45000;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    let idleTimer;
    const armIdle = () => {
      if (!idleMs) return;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(
        () =>
          ctrl.abort(
            new StreamError(`no data for ${idleMs} ms`, { code: 'idle_timeout', retryable: true }),
          ),
        idleMs,
      );
    };
    /** @param {unknown} err @returns {Outcome} */
    const lost = (err) => {
      if (signal?.aborted) throw signal.reason;
      const reason = ctrl.signal.aborted ? ctrl.signal.reason : undefined;
      if (reason instanceof StreamError) return { kind: 'retry', error: reason };
      return {
        kind: 'retry',
        error: new StreamError(`connection lost: ${asError(err).message}`, {
          code: 'network_error',
          retryable: true,
          cause: err,
        }),
      };
    };
    try {
      const url = withSince(this.streamUrl, this.since);
      this.connections += 1;
      armIdle();
      /** @type {Response} */
      let response;
      try {
        response = await this._fetch(url, {
          signal: ctrl.signal,
          cache: 'no-store',
          headers: { Accept: 'application/x-ndjson', ...this._options.headers },
        });
      } catch (err) {
        return lost(err);
      }
      if (!response.ok) {
        const error = await errorFromResponse(response);
        if (error.retryable) return { kind: 'retry', error };
        if (error.status === 410) throw gone(error, this.streamUrl, this.since);
        throw error;
      }
      if (!response.body) {
        throw new StreamError('response has no body', { code: 'bad_response' });
      }
      this._setState('streaming');
      const reader = response.body.getReader();
      const text = new TextDecoder('utf-8');
      const lines = new LineDecoder();
      for (;;) {
        /** @type {ReadableStreamReadResult<Uint8Array>} */
        let chunk;
        try {
          chunk = await reader.read();
        } catch (err) {
          return lost(err);
        }
        if (chunk.done) break;
        armIdle();
        for (const line of lines.decode(text.decode(chunk.value, { stream: true }))) {
          const outcome = this._handleLine(line, false);
          if (outcome) return outcome;
        }
      }
      // A clean end of body. A last line without its newline is used only if
      // it parses: a cut-off line is what an interrupted stream looks like.
      for (const line of [...lines.decode(text.decode()), ...lines.flush()]) {
        const outcome = this._handleLine(line, true);
        if (outcome) return outcome;
      }
      return {
        kind: 'retry',
        error: new StreamError('the stream ended without a complete line', {
          code: 'incomplete_stream',
          retryable: true,
        }),
      };
    } finally {
      clearTimeout(idleTimer);
      signal?.removeEventListener('abort', onAbort);
      this._connection = null;
      // Release the connection if we stopped before the end of the body.
      ctrl.abort(new StreamError('connection closed by the consumer', { code: 'closed' }));
    }
  }

  /**
   * @private
   * @param {string} raw
   * @param {boolean} isTail the unterminated last piece of a body
   * @returns {Outcome|undefined} set when the connection is over
   */
  _handleLine(raw, isTail) {
    /** @type {Line} */
    let line;
    try {
      line = JSON.parse(raw);
    } catch (err) {
      const error = new StreamError(
        isTail ? 'the stream ended inside a line' : 'a line is not valid JSON',
        { code: isTail ? 'incomplete_stream' : 'bad_line', retryable: true, cause: err },
      );
      return { kind: 'retry', error };
    }
    if (line === null || typeof line !== 'object') {
      return {
        kind: 'retry',
        error: new StreamError('a line is not a JSON object', { code: 'bad_line', retryable: true }),
      };
    }
    const opts = this._options;
    switch (line.type) {
      case 'records':
        if (typeof line.since === 'string') this.since = line.since;
        this._digest.add(raw);
        this._progressed = true;
        this.attempt = 0;
        opts.onLine?.(line);
        opts.onRecords?.(/** @type {RecordsLine} */ (line));
        return undefined;
      case 'reconnect':
        if (typeof line.since === 'string') this.since = line.since;
        opts.onLine?.(line);
        return {
          kind: 'retry',
          planned: true,
          error: new StreamError(`the server asked to reconnect (${line.reason ?? 'no reason'})`, {
            code: 'reconnect',
            retryable: true,
          }),
        };
      case 'error': {
        if (typeof line.since === 'string') this.since = line.since;
        opts.onLine?.(line);
        const error = new StreamError(String(line.message ?? line.code ?? 'stream error'), {
          code: String(line.code ?? 'stream_error'),
          retryable: line.retryable === true,
        });
        if (error.retryable) return { kind: 'retry', error };
        throw error;
      }
      case 'complete':
        opts.onLine?.(line);
        return { kind: 'complete', line };
      case 'heartbeat': // liveness (its bytes re-armed the idle timer), perhaps a bookmark
        if (typeof line.since === 'string') this.since = line.since;
        return undefined;
      default:
        opts.onLine?.(line);
        return undefined;
    }
  }
}

/**
 * Follow a stream to its end: `new StreamConsumer(url, options).run()`.
 * @param {string} streamUrl
 * @param {ConsumerOptions} [options]
 * @returns {Promise<ConsumerResult>}
 */
export function consumeStream(streamUrl, options) {
  return new StreamConsumer(streamUrl, options).run();
}

/**
 * Turn an HTTP error response (before any body was streamed) into a StreamError,
 * reading an RFC 9457 problem+json body when there is one.
 * @param {Response} response
 * @returns {Promise<StreamError>}
 */
export async function errorFromResponse(response) {
  const status = response.status;
  const base = problemError(status, await readJsonBody(response), response.statusText);
  return new StreamError(base.message, {
    code: base.code,
    status,
    problem: base.problem,
    retryable: RETRYABLE_STATUS.has(status),
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
  });
}

/**
 * A 410 (the job expired or was purged; or its snapshot is too old) as the final error
 * a UI shows: the job, the last position, and the server's word on how to go on.
 * @param {StreamError} error
 * @param {string} streamUrl
 * @param {string|null} since
 * @returns {StreamError}
 */
export function gone(error, streamUrl, since) {
  const match = /\/job\/([^/?#]+)\//.exec(streamUrl);
  const jobId = match ? decodeURIComponent(match[1]) : '?';
  const detail = error.problem?.detail ?? error.message;
  return new StreamError(
    `job ${jobId} is gone (${error.code}); last position: ${since ?? 'the start'}. ${detail}`,
    { code: error.code, status: error.status, problem: error.problem, jobId, since },
  );
}

/**
 * @param {unknown} value
 * @returns {Error}
 */
function asError(value) {
  return value instanceof Error ? value : new Error(String(value));
}
