// @ts-check
/**
 * The page's data side, a dedicated module Worker. Everything whose cost grows
 * with the job happens here, off the main thread: holding a large CID list
 * (a random pick or a file), serialising and POSTing the job, and following
 * the stream (fetch, UTF-8 decoding, line framing, JSON.parse, column encoding).
 *
 * Requests from the page; each has an `id` echoed in its one reply:
 *   {type: 'pick', id, url, headers?, inlineMax?, known?}  GET demo CIDs; keep them
 *        -> {type: 'cids', id, count, preview, list (when count <= inlineMax, else null),
 *            check (input-check.js, against `known`: the CID limit and sample keys)}
 *         | {type: 'failed', id, error}
 *   {type: 'file', id, file, inlineMax?, known?}  read CIDs from a File -> the same
 *   {type: 'text', id, text, inlineMax?, known?}  parse a long paste    -> the same
 *   {type: 'clear', id}                   forget the kept CIDs  -> {type: 'cids', id, count: 0, ...}
 *   {type: 'create', id, url, domains, where?, text?, headers?}
 *        POST the job; CIDs from `text` when given, else the kept ones
 *                                                                  -> {type: 'created', id, status, body}
 *
 * Stream control; every message a stream sends carries its `gen`, so the page
 * can ignore a stopped stream's last words:
 *   {type: 'start', gen, url, headers?, idleTimeoutMs?}  follow the stream at `url`
 *   {type: 'drop'}                                      abort the current request only
 *   {type: 'stop'}                                      cancel the stream
 * Stream messages to the page:
 *   {type: 'state', gen, state, attempt, since, connections, delayMs?, error?}
 *   {type: 'line', gen, line}      every line but `records` (meta, domain_start, ...)
 *   {type: 'records', gen, domain, batchNo, since, batch: EncodedBatch}  typed arrays transferred
 *   {type: 'end', gen, ok, result?, error?}
 */

import { StreamConsumer } from './consumer.js';
import { BatchEncoder } from './columns.js';
import { parseCids } from './cids.js';
import { checkCids } from './input-check.js';
import { problemError, readJsonBody } from './problem.js';

/** @type {StreamConsumer|null} */
let consumer = null;
/** @type {AbortController|null} */
let controller = null;
/** @type {string[]} the kept CID list */
let kept = [];

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

/**
 * Keep `list`; reply with its size, its head, and the whole list when it has
 * at most `inlineMax` entries (the page shows short lists in full).
 * @param {{id: number, inlineMax?: number, known?: {max?: number|null, samples?: string[]}}} msg
 * @param {string[]} list
 */
function keep(msg, list) {
  kept = list;
  const inline = list.length <= (msg.inlineMax ?? 0);
  postMessage({
    type: 'cids',
    id: msg.id,
    count: list.length,
    preview: list.slice(0, 20),
    list: inline ? list : null,
    check: checkCids(list, msg.known ?? {}),
  });
}

/** @type {Record<string, (msg: any) => Promise<void>>} */
const requests = {
  async pick(msg) {
    const res = await fetch(msg.url, { headers: msg.headers });
    const body = await readJsonBody(res);
    if (!res.ok) {
      postMessage({ type: 'failed', id: msg.id, error: errorInfo(problemError(res.status, body)) });
      return;
    }
    keep(msg, body?.container_ids ?? []);
  },
  async file(msg) {
    keep(msg, parseCids(await msg.file.text()));
  },
  async text(msg) {
    keep(msg, parseCids(msg.text));
  },
  async clear(msg) {
    keep(msg, []);
  },
  async create(msg) {
    const cids = typeof msg.text === 'string' ? parseCids(msg.text) : kept;
    const res = await fetch(msg.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...msg.headers },
      body: JSON.stringify({ container_ids: cids, domains: msg.domains, ...(msg.where ? { where: msg.where } : {}) }),
    });
    postMessage({ type: 'created', id: msg.id, status: res.status, body: await readJsonBody(res) });
  },
};

/** @param {{gen: number, url: string, headers?: Record<string, string>, idleTimeoutMs?: number}} msg */
function start(msg) {
  controller?.abort();
  controller = new AbortController();
  const gen = msg.gen;
  /** @type {Map<string, {encoder: BatchEncoder, columns: string[]}>} */
  const domains = new Map();
  consumer = new StreamConsumer(msg.url, {
    signal: controller.signal,
    headers: msg.headers,
    idleTimeoutMs: msg.idleTimeoutMs ?? 45000, // three heartbeat intervals
    onState(s) {
      postMessage({ type: 'state', gen, ...s, error: errorInfo(s.error) });
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
      postMessage({ type: 'line', gen, line });
    },
    onRecords(line) {
      const d = domains.get(line.domain);
      if (!d) {
        // records before their domain_start: a protocol error, not ours to guess.
        throw new Error(`records for ${line.domain} before its domain_start`);
      }
      const { batch, transfer } = d.encoder.encode(line.data, d.columns);
      postMessage(
        { type: 'records', gen, domain: line.domain, batchNo: line.batch, since: line.since, batch },
        { transfer },
      );
    },
  });
  consumer.run().then(
    (result) => postMessage({ type: 'end', gen, ok: true, result }),
    (err) => postMessage({ type: 'end', gen, ok: false, error: errorInfo(err) }),
  );
}

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === 'start') start(msg);
  else if (msg.type === 'drop') consumer?.dropConnection();
  else if (msg.type === 'stop') controller?.abort(new DOMException('stopped by the user', 'AbortError'));
  else if (requests[msg.type]) {
    requests[msg.type](msg).catch((err) =>
      postMessage({ type: 'failed', id: msg.id, error: errorInfo(err) }),
    );
  }
};
