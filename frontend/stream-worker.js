// @ts-check
/**
 * Dedicated module Worker: fetch, UTF-8 decoding, line framing, JSON.parse and
 * column encoding all happen here, so the page's main thread only appends
 * typed arrays and paints.
 *
 * Messages in (from the page):
 *   {type: 'start', url, headers?, idleTimeoutMs?}  follow the stream at `url`
 *   {type: 'drop'}                                  abort the current request only
 *   {type: 'stop'}                                  cancel the consumer
 *
 * Messages out (to the page):
 *   {type: 'state', state, attempt, since, connections, delayMs?, error?}
 *   {type: 'line', line}        every line but `records` (meta, domain_start, ...)
 *   {type: 'records', domain, batchNo, since, batch: EncodedBatch}  typed arrays transferred
 *   {type: 'end', ok, result?, error?}
 */

import { StreamConsumer } from './consumer.js';
import { BatchEncoder } from './columns.js';

/** @type {StreamConsumer|null} */
let consumer = null;
/** @type {AbortController|null} */
let controller = null;

/** @param {any} err */
function errorInfo(err) {
  if (!err) return null;
  return {
    name: String(err.name ?? 'Error'),
    message: String(err.message ?? err),
    code: err.code ?? null,
    status: err.status ?? null,
    retryable: err.retryable ?? null,
  };
}

/** @param {{url: string, headers?: Record<string, string>, idleTimeoutMs?: number}} msg */
function start(msg) {
  controller?.abort();
  controller = new AbortController();
  /** @type {Map<string, {encoder: BatchEncoder, columns: string[]}>} */
  const domains = new Map();
  consumer = new StreamConsumer(msg.url, {
    signal: controller.signal,
    headers: msg.headers,
    idleTimeoutMs: msg.idleTimeoutMs ?? 120000,
    onState(s) {
      postMessage({ type: 'state', ...s, error: errorInfo(s.error) });
    },
    onLine(line) {
      if (line.type === 'records') return;
      if (line.type === 'domain_start' && Array.isArray(line.columns)) {
        // A repeated domain_start (after a resume) continues the domain: keep
        // the encoder, whose dictionaries the page has already received.
        const known = domains.get(line.domain);
        if (!known || known.columns.join('\u0000') !== line.columns.join('\u0000')) {
          domains.set(line.domain, {
            encoder: new BatchEncoder(line.columns.length),
            columns: line.columns,
          });
        }
      }
      postMessage({ type: 'line', line });
    },
    onRecords(line) {
      const d = domains.get(line.domain);
      if (!d) {
        // records before their domain_start: a protocol error, not ours to guess.
        throw new Error(`records for ${line.domain} before its domain_start`);
      }
      const { batch, transfer } = d.encoder.encode(line.data, d.columns);
      postMessage(
        { type: 'records', domain: line.domain, batchNo: line.batch, since: line.since, batch },
        { transfer },
      );
    },
  });
  const mine = consumer;
  consumer.run().then(
    (result) => {
      if (consumer === mine) postMessage({ type: 'end', ok: true, result });
    },
    (err) => {
      if (consumer === mine) postMessage({ type: 'end', ok: false, error: errorInfo(err) });
    },
  );
}

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === 'start') start(msg);
  else if (msg.type === 'drop') consumer?.dropConnection();
  else if (msg.type === 'stop') controller?.abort(new DOMException('stopped by the user', 'AbortError'));
};
