// A loopback HTTP proxy in front of the real service that breaks job streams the way
// networks and servers do: each request for a job stream gets the fault of its turn.
//
//   drop             after `afterLines` records lines, half of the next line, then the
//                    socket is destroyed (a torn connection, mid-line)
//   end              after `afterLines` records lines the body ends cleanly, without
//                    `complete` (a proxy that gave up)
//   reconnect        ... a `reconnect` line with the last token, then the end (a draining
//                    replica)
//   retryable-error  ... an `error` line, retryable, with the last token
//   fatal-error      ... an `error` line, not retryable
//   unavailable      503 problem+json with Retry-After: 1, before the stream
//   stall            after `afterLines` records lines, half of the next line, then nothing
//                    more in either direction while both sockets stay open until the proxy
//                    closes (a half-open connection: no FIN, no RST; only the consumer's
//                    idle timeout notices, and its close does not reach the service either)
//
// The lines, records and tokens are the service's own; only the faults are scripted
// (the service writes `reconnect` and `error` lines only when draining or failing).
import http from 'node:http';

/**
 * @typedef {'drop'|'end'|'reconnect'|'retryable-error'|'fatal-error'|'unavailable'|'stall'} FaultAction
 * @typedef {{afterLines: number, action: FaultAction}} Fault
 * @typedef {{since: string|null, format: string|null, recordsLines: number, fault: FaultAction|null, closed: boolean}} StreamConnection
 */

/**
 * @param {string} upstream base URL of the service
 * @param {{faults?: (Fault|null)[], writeChunk?: number, lineDelayMs?: number}} [options]
 *   `writeChunk`: write to the client in pieces of this many bytes (lines and UTF-8
 *   characters split across writes); `lineDelayMs`: pause before each records line
 */
export async function startFaultProxy(upstream, options = {}) {
  const faults = options.faults ?? [];
  /** @type {StreamConnection[]} */
  const connections = [];
  /** @type {() => void} */
  let releaseStalls = () => {};
  /** resolves when the proxy closes: the end of every stalled connection */
  const closing = new Promise((resolve) => (releaseStalls = () => resolve(undefined)));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', upstream);
    const isStream = req.method === 'GET' && /^\/api\/trace\/job\/[^/]+\/stream$/.test(url.pathname);
    /** @type {StreamConnection|null} */
    let conn = null;
    /** @type {Fault|null} */
    let fault = null;
    if (isStream) {
      fault = faults[connections.length] ?? null;
      conn = { since: url.searchParams.get('since'), format: url.searchParams.get('format'), recordsLines: 0, fault: null, closed: false };
      connections.push(conn);
      if (fault?.action === 'unavailable') {
        conn.fault = 'unavailable';
        res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '1' });
        res.end(JSON.stringify({ type: 'about:blank', title: 'unavailable', status: 503, detail: 'database unavailable', code: 'source_unavailable' }));
        return;
      }
    }
    // The proxy reads stream lines as text: it asks the service for them uncompressed (the
    // service gzips for clients that accept it, and fetch does).
    const headers = isStream ? { ...req.headers, 'accept-encoding': 'identity' } : req.headers;
    const up = http.request(url, { method: req.method, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      if (!conn || upRes.statusCode !== 200) {
        upRes.pipe(res);
        return;
      }
      void relayLines(upRes, res, conn, fault);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
    // The client went away: so does the upstream request, as a real proxy's would.
    // A stalled connection's close goes nowhere: the service's side stays open.
    res.on('close', () => {
      if (conn) conn.closed = true;
      if (conn?.fault !== 'stall') up.destroy();
    });
  });

  /**
   * Forward the stream line by line, applying `fault` at its line.
   * @param {http.IncomingMessage} upRes
   * @param {http.ServerResponse} res
   * @param {StreamConnection} conn
   * @param {Fault|null} fault
   */
  async function relayLines(upRes, res, conn, fault) {
    /** @type {string|null} */
    let since = conn.since;
    let pending = Buffer.alloc(0);
    /** @param {Buffer} buf */
    const send = async (buf) => {
      const step = options.writeChunk || buf.length;
      for (let at = 0; at < buf.length && !conn.closed; at += step) {
        if (!res.write(buf.subarray(at, at + step))) await waitDrain(res);
      }
    };
    /** @param {object} line */
    const sendLine = (line) => send(Buffer.from(`${JSON.stringify(line)}\n`));
    try {
      for await (const chunk of upRes) {
        pending = Buffer.concat([pending, chunk]);
        let nl;
        while ((nl = pending.indexOf(10)) >= 0 && !conn.closed) {
          const raw = pending.subarray(0, nl + 1);
          pending = pending.subarray(nl + 1);
          const line = JSON.parse(raw.toString('utf8'));
          if (line.type === 'records') {
            if (fault && conn.recordsLines === fault.afterLines) {
              conn.fault = fault.action;
              await applyFault(fault.action, raw, since, res, sendLine);
              upRes.destroy();
              return;
            }
            if (options.lineDelayMs) await new Promise((r) => setTimeout(r, options.lineDelayMs));
            if (conn.closed) break;
            conn.recordsLines += 1;
            since = line.since;
          }
          await send(raw);
        }
        if (conn.closed) break;
      }
      if (!conn.closed) res.end();
    } catch {
      res.destroy();
    }
  }

  /**
   * @param {FaultAction} action
   * @param {Buffer} raw the records line the fault replaces
   * @param {string|null} since the last token the client received
   * @param {http.ServerResponse} res
   * @param {(line: object) => Promise<void>} sendLine
   */
  async function applyFault(action, raw, since, res, sendLine) {
    if (action === 'stall') {
      res.write(raw.subarray(0, Math.floor(raw.length / 2)));
      // Not reading on leaves the service's bytes in the socket buffers (TCP backpressure).
      await closing;
      return;
    }
    if (action === 'drop') {
      res.write(raw.subarray(0, Math.floor(raw.length / 2)));
      await new Promise((r) => setTimeout(r, 5));
      res.socket?.destroy();
      return;
    }
    if (action === 'reconnect') await sendLine({ type: 'reconnect', reason: 'draining', since });
    if (action === 'retryable-error' || action === 'fatal-error') {
      const retryable = action === 'retryable-error';
      await sendLine({
        type: 'error',
        code: retryable ? 'source_unavailable' : 'internal',
        message: retryable ? 'database unavailable' : 'something broke',
        retryable,
        since,
      });
    }
    res.end();
  }

  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    base: `http://127.0.0.1:${port}`,
    connections,
    close() {
      releaseStalls();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}

/**
 * Wait until `res` can take more, or is closed. One pair of listeners per wait,
 * both removed whichever fires (a listener left behind per wait piles up on a
 * long stream: the MaxListenersExceededWarning of a slow reader).
 * @param {http.ServerResponse} res
 */
function waitDrain(res) {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve(undefined);
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
