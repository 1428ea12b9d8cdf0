// @ts-check
/**
 * A stand-in for the trace service, in plain node: the same HTTP surface the
 * front end uses (DESIGN.md), with generated rows, unsigned resume tokens and
 * scripted faults (dropped connections, `reconnect` lines, `error` lines,
 * streams that end without `complete`). The node tests stream from it over
 * real loopback sockets; `node dev/fake-service.js` serves the UI with it.
 *
 *   GET  /api/domains                  {"domains":[{"name","columns"}]}
 *   GET  /api/demo/cids?n=N            {"container_ids":[...]}
 *   POST /api/trace/job                201 {"job_id","cid_count","domains","expires_at","links"}
 *   GET  /api/trace/job/{id}/stream    NDJSON; ?format=arrays, ?since=T
 *   GET  /*                            files of frontend/
 *
 * It is not the service: tokens are not signed and nothing is persisted.
 */

import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const FRONTEND = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** @typedef {{name: string, columns: string[], perCid: number, row: (cid: string, i: number, k: number) => any[]}} Domain */

const EVENTS = ['TrackIn', 'TrackOut', 'Inspect', 'Rework', 'Hold', 'Release', 'Move', 'Split'];
const STATIONS = ['DB-01', 'DB-02', 'WB-07', 'MOLD-3', 'TEST-A', 'TEST-B', 'MARK-1', 'PACK-2'];
const OPERATORS = ['Zoë', '王小明', 'José', 'Ada', 'Łukasz', 'Søren', 'Amélie', '🏭 robot'];
const T0 = Date.UTC(2024, 0, 1);

/** @type {Domain[]} */
export const DOMAINS = [
  {
    name: 'history',
    columns: ['CONTAINERID', 'SEQ', 'EVENTNAME', 'STATION', 'TXNDATE', 'QTY', 'OPERATOR'],
    perCid: 10,
    row: (cid, i, k) => [
      cid,
      k + 1,
      EVENTS[(i + k) % EVENTS.length],
      STATIONS[(i * 3 + k) % STATIONS.length],
      new Date(T0 + (i * 10 + k) * 37_000).toISOString(),
      k % 7 === 3 ? null : 100 - (k % 4),
      OPERATORS[(i + 2 * k) % OPERATORS.length],
    ],
  },
  {
    name: 'materials',
    columns: ['CONTAINERID', 'SEQ', 'MATERIALLOT', 'PARTNO', 'QTY', 'UNIT'],
    perCid: 5,
    row: (cid, i, k) => [
      cid,
      k + 1,
      `LOT${String((i * 5 + k) % 99991).padStart(5, '0')}`,
      `P-${1000 + ((i + k) % 37)}`,
      Math.round(((i % 13) + k * 0.25) * 100) / 100,
      k % 2 ? 'EA' : 'g',
    ],
  },
];

/** The demo database's CIDs: 16 hex digits, like a Oracle CONTAINERID. */
export function demoCid(/** @type {number} */ i) {
  const h = Math.imul(i + 1, 0x9e3779b1) >>> 0;
  return `4881${(h >>> 0).toString(16).padStart(8, '0')}${i.toString(16).padStart(4, '0')}`.slice(
    0,
    16,
  );
}

/**
 * @typedef {'drop'|'reconnect'|'retryable-error'|'fatal-error'|'end'|'unavailable'} FaultAction
 * @typedef {{afterLines: number, action: FaultAction}} Fault
 *
 * @typedef {object} FakeOptions
 * @property {number} [batchSize=5000] records per line
 * @property {number} [demoCids=114892] size of the demo CID set (0: not a demo database)
 * @property {(Fault|null)[]} [faults] the fault of each connection to /stream,
 *   by connection number; `afterLines` counts `records` lines sent on it
 *   ('unavailable' answers 503 + Retry-After before the stream)
 * @property {number} [batchDelayMs=0] pause before each records line (pacing)
 * @property {number} [writeChunk=0] write each line in pieces of this many bytes
 *   (0: whole lines), to split UTF-8 characters across chunks
 * @property {boolean} [serveStatic=true]
 */

/**
 * @param {FakeOptions} [options]
 */
export function createFakeService(options = {}) {
  const batchSize = options.batchSize ?? 5000;
  const demoCids = options.demoCids ?? 114892;
  const faults = options.faults ?? [];
  const stats = {
    /** @type {{since: string|null, format: string|null, recordsLines: number, fault: FaultAction|null}[]} */
    connections: [],
    jobs: 0,
  };
  /** @type {Map<string, {cids: string[], domains: Domain[]}>} */
  const jobs = new Map();
  /** @type {Set<import('node:net').Socket>} */
  const sockets = new Set();

  /** @type {string[]|null} */
  let demoList = null;
  const demo = () => (demoList ??= Array.from({ length: demoCids }, (_, i) => demoCid(i)).sort());

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) problem(res, 500, 'internal', String(err));
      else res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  /**
   * @param {http.IncomingMessage} req
   * @param {http.ServerResponse} res
   */
  async function handle(req, res) {
    const url = new URL(req.url ?? '/', 'http://fake');
    const p = url.pathname;
    if (req.method === 'GET' && p === '/api/domains') {
      return json(res, 200, { domains: DOMAINS.map((d) => ({ name: d.name, columns: d.columns })) });
    }
    if (req.method === 'GET' && p === '/api/demo/cids') {
      if (!demoCids) return problem(res, 404, 'not_demo', 'not running on the demo database');
      const n = Math.max(0, Math.min(Number(url.searchParams.get('n') ?? 100) || 0, demoCids));
      const all = demo();
      const pick = n >= all.length ? all : sample(all, n);
      return json(res, 200, { container_ids: pick });
    }
    if (req.method === 'POST' && p === '/api/trace/job') {
      const body = JSON.parse((await readBody(req)) || '{}');
      const cids = [...new Set(/** @type {string[]} */ (body.container_ids ?? []))].sort();
      const names = /** @type {string[]} */ (body.domains ?? DOMAINS.map((d) => d.name));
      const domains = [];
      for (const name of names) {
        const d = DOMAINS.find((x) => x.name === name);
        if (!d) return problem(res, 400, 'unknown_domain', `unknown domain: ${name}`);
        domains.push(d);
      }
      if (!cids.length) return problem(res, 400, 'invalid_request', 'container_ids is empty');
      const id = `job${++stats.jobs}_${Math.random().toString(36).slice(2, 8)}`;
      jobs.set(id, { cids, domains });
      const base = `/api/trace/job/${id}`;
      return json(res, 201, {
        job_id: id,
        cid_count: cids.length,
        domains: domains.map((d) => d.name),
        expires_at: new Date(Date.now() + 3600_000).toISOString(),
        links: { self: base, stream: `${base}/stream`, result: `${base}/result` },
      });
    }
    const m = /^\/api\/trace\/job\/([^/]+)\/stream$/.exec(p);
    if (req.method === 'GET' && m) {
      const job = jobs.get(m[1]);
      if (!job) return problem(res, 404, 'job_not_found', 'no such job');
      return stream(req, res, m[1], job, url.searchParams);
    }
    if (req.method === 'GET' && options.serveStatic !== false && !p.startsWith('/api/')) {
      return serveFile(res, p === '/' ? '/index.html' : p);
    }
    return problem(res, 404, 'not_found', 'not found');
  }

  /**
   * @param {http.IncomingMessage} req
   * @param {http.ServerResponse} res
   * @param {string} jobId
   * @param {{cids: string[], domains: Domain[]}} job
   * @param {URLSearchParams} params
   */
  async function stream(req, res, jobId, job, params) {
    const since = params.get('since');
    const arrays = params.get('format') === 'arrays';
    let start = { d: 0, pos: 0, batch: 0 };
    if (since) {
      let tok;
      try {
        tok = JSON.parse(Buffer.from(since, 'base64url').toString('utf8'));
      } catch {
        return problem(res, 400, 'invalid_token', 'malformed token');
      }
      if (tok.j !== jobId) return problem(res, 400, 'token_job_mismatch', 'token of another job');
      start = { d: tok.d, pos: tok.p, batch: tok.b };
    }
    const conn = stats.connections.length;
    const fault = faults[conn] ?? null;
    const record = { since, format: params.get('format'), recordsLines: 0, fault: null };
    stats.connections.push(/** @type {any} */ (record));
    if (fault?.action === 'unavailable') {
      record.fault = /** @type {any} */ ('unavailable');
      return problem(res, 503, 'source_unavailable', 'database unavailable', { 'retry-after': '1' });
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    let closed = false;
    res.on('close', () => (closed = true));

    /** @param {object} line */
    const write = async (line) => {
      const buf = Buffer.from(`${JSON.stringify(line)}\n`, 'utf8');
      const step = options.writeChunk || buf.length;
      for (let at = 0; at < buf.length && !closed; at += step) {
        if (!res.write(buf.subarray(at, at + step))) {
          await new Promise((r) => res.once('drain', r).once('close', r));
        }
      }
    };
    const t0 = Date.now();
    await write({
      type: 'meta',
      job_id: jobId,
      domains: job.domains.map((d) => d.name),
      cid_count: job.cids.length,
      resumed: Boolean(since),
    });
    let total = 0;
    for (let d = start.d; d < job.domains.length && !closed; d++) {
      const dom = job.domains[d];
      const rows = job.cids.length * dom.perCid;
      const batches = Math.ceil(rows / batchSize);
      await write({
        type: 'domain_start',
        domain: dom.name,
        columns: dom.columns,
        total: rows,
        total_batches: batches,
      });
      let pos = d === start.d ? start.pos : 0;
      let batch = d === start.d ? start.batch : 0;
      while (pos < rows && !closed) {
        if (fault && record.recordsLines === fault.afterLines) {
          record.fault = fault.action;
          return applyFault(res, write, fault.action, jobId, d, pos, batch, dom);
        }
        if (options.batchDelayMs) await new Promise((r) => setTimeout(r, options.batchDelayMs));
        const end = Math.min(rows, pos + batchSize);
        const data = [];
        for (let q = pos; q < end; q++) {
          const i = Math.floor(q / dom.perCid);
          const row = dom.row(job.cids[i], i, q % dom.perCid);
          data.push(arrays ? row : Object.fromEntries(dom.columns.map((c, j) => [c, row[j]])));
        }
        pos = end;
        batch += 1;
        await write({
          type: 'records',
          domain: dom.name,
          batch,
          data,
          since: token(jobId, d, pos, batch),
        });
        record.recordsLines += 1;
        total += data.length;
      }
      await write({ type: 'domain_end', domain: dom.name, total_records: rows });
      start = { d: d + 1, pos: 0, batch: 0 };
    }
    if (closed) return;
    await write({ type: 'aggregation', data: { cids: job.cids.length } });
    await write({
      type: 'complete',
      elapsed_seconds: (Date.now() - t0) / 1000,
      total_records: job.domains.reduce((n, d) => n + d.perCid * job.cids.length, 0),
      sent_records: total,
    });
    res.end();
  }

  /**
   * @param {http.ServerResponse} res
   * @param {(line: object) => Promise<void>} write
   * @param {FaultAction} action
   * @param {string} jobId
   * @param {number} d
   * @param {number} pos
   * @param {number} batch
   * @param {Domain} dom
   */
  async function applyFault(res, write, action, jobId, d, pos, batch, dom) {
    const here = token(jobId, d, pos, batch);
    if (action === 'drop') {
      // Half of a records line (cut inside a multi-byte character if one is
      // there), then a torn connection.
      const rows = [];
      for (let q = pos; q < pos + 50; q++) {
        const i = Math.floor(q / dom.perCid);
        rows.push(dom.row(`${i}`, i, q % dom.perCid));
      }
      const buf = Buffer.from(JSON.stringify({ type: 'records', domain: dom.name, data: rows }));
      res.write(buf.subarray(0, Math.floor(buf.length / 2)));
      await new Promise((r) => setTimeout(r, 5));
      res.socket?.destroy();
      return;
    }
    if (action === 'reconnect') await write({ type: 'reconnect', reason: 'draining', since: here });
    if (action === 'retryable-error' || action === 'fatal-error') {
      const retryable = action === 'retryable-error';
      await write({
        type: 'error',
        code: retryable ? 'source_unavailable' : 'internal_error',
        message: retryable ? 'database unavailable' : 'something broke',
        retryable,
        since: here,
      });
    }
    res.end();
  }

  return {
    server,
    stats,
    jobs,
    /** @param {number} [port] @param {string} [host] @returns {Promise<string>} base URL */
    listen(port = 0, host = '127.0.0.1') {
      return new Promise((resolve) => {
        server.listen(port, host, () => {
          const addr = /** @type {import('node:net').AddressInfo} */ (server.address());
          resolve(`http://${host}:${addr.port}`);
        });
      });
    },
    /** @returns {Promise<void>} */
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * @param {string} jobId
 * @param {number} d
 * @param {number} p
 * @param {number} b
 */
function token(jobId, d, p, b) {
  return Buffer.from(JSON.stringify({ j: jobId, d, p, b })).toString('base64url');
}

/**
 * @template T
 * @param {T[]} all
 * @param {number} n
 * @returns {T[]}
 */
function sample(all, n) {
  const copy = all.slice();
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(Math.random() * (copy.length - i));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy.slice(0, n);
}

/** @param {http.IncomingMessage} req @returns {Promise<string>} */
async function readBody(req) {
  const parts = [];
  for await (const part of req) parts.push(part);
  return Buffer.concat(parts).toString('utf8');
}

/** @param {http.ServerResponse} res @param {number} status @param {unknown} body */
function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * @param {http.ServerResponse} res
 * @param {number} status
 * @param {string} code
 * @param {string} detail
 * @param {Record<string, string>} [headers]
 */
function problem(res, status, code, detail, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/problem+json', ...headers });
  res.end(JSON.stringify({ type: 'about:blank', title: code, status, detail, code }));
}

const TYPES = /** @type {Record<string, string>} */ ({
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
});

/** @param {http.ServerResponse} res @param {string} urlPath */
async function serveFile(res, urlPath) {
  const file = path.resolve(FRONTEND, `.${decodeURIComponent(urlPath)}`);
  if (!file.startsWith(FRONTEND + path.sep)) return problem(res, 404, 'not_found', 'not found');
  try {
    const body = await readFile(file);
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    });
    res.end(body);
  } catch {
    problem(res, 404, 'not_found', 'not found');
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (/** @type {string} */ name, /** @type {string} */ fallback) => {
    const at = process.argv.indexOf(`--${name}`);
    return at > 0 ? process.argv[at + 1] : fallback;
  };
  const svc = createFakeService({
    batchSize: Number(arg('batch-size', '5000')),
    demoCids: Number(arg('demo-cids', '114892')),
    batchDelayMs: Number(arg('batch-delay-ms', '0')),
    faults: JSON.parse(arg('faults', '[]')),
  });
  svc.listen(Number(arg('port', '8765')), arg('host', '127.0.0.1')).then((url) => {
    console.log(`fake trace service on ${url}/`);
  });
}
