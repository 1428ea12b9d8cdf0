// The consumer against the real service (`trace-svc serve`, demo database) behind a
// loopback proxy that tears connections part-way, asks clients to reconnect and fails
// (test/support/fault-proxy.js), or goes half-open. Whatever happens on the way, the
// consumer must end with exactly the rows of one fault-free read of the same job, in the
// same order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { StreamConsumer } from '../consumer.js';
import { startService, createJob, readWhole } from './support/service.js';
import { startFaultProxy } from './support/fault-proxy.js';

/** @type {Awaited<ReturnType<typeof startService>>} */
let svc;
before(async () => {
  // 37 records per line: batches do not line up with containers or domains. Heartbeats
  // every 0.5 s: a consumer's idle timeout of three intervals never fires on a live stream.
  svc = await startService({ demoCids: 500, batchSize: 37, env: { TRACE_HEARTBEAT_SECONDS: '0.5' } });
});
after(async () => {
  await svc?.stop();
});

/**
 * A job of `n` CIDs, the proxy in front of the service, and the job's rows as
 * one plain request reads them.
 * @param {Parameters<typeof startFaultProxy>[1]} proxyOptions
 */
async function setup(proxyOptions, n = 300) {
  const job = await createJob(svc.base, n);
  const proxy = await startFaultProxy(svc.base, proxyOptions);
  const want = await readWhole(`${svc.base}${job.stream}?format=arrays`);
  return { job, proxy, want, url: `${proxy.base}${job.stream}?format=arrays` };
}

function collect(url, extra = {}) {
  const got = { rows: { history: [], materials: [] }, lines: [], states: [] };
  const consumer = new StreamConsumer(url, {
    backoff: { initialMs: 5, maxMs: 20 },
    onLine: (l) => got.lines.push(l.type === 'records' ? { ...l, data: l.data.length } : l),
    onRecords: (l) => got.rows[l.domain].push(...l.data),
    onState: (s) => got.states.push(s),
    ...extra,
  });
  return { consumer, got };
}

/** The rows arrived once each, in the service's order. */
function assertSameRows(got, want) {
  for (const name of ['history', 'materials']) {
    assert.ok(want.rows[name].length > 0, `${name} has rows`);
    assert.equal(got.rows[name].length, want.rows[name].length, `${name} row count`);
    assert.deepEqual(got.rows[name], want.rows[name], `${name} rows, in keyset order`);
    const end = want.lines.find((l) => l.type === 'domain_end' && l.domain === name);
    assert.equal(got.rows[name].length, end.total_records, `${name}: the service's own count`);
  }
}

test('records arrive exactly once across drops, reconnects, errors and a 503', async () => {
  const faults = [
    { afterLines: 3, action: 'drop' },
    { afterLines: 0, action: 'drop' }, // torn before any records: same since again
    { afterLines: 5, action: 'reconnect' },
    { afterLines: 0, action: 'unavailable' },
    { afterLines: 2, action: 'retryable-error' },
    { afterLines: 40, action: 'end' }, // ends cleanly without complete, mid-materials
    { afterLines: 1, action: 'drop' },
  ];
  // Written in 61-byte pieces: lines are split across socket writes.
  const { proxy, want, url } = await setup({ faults, writeChunk: 61 });
  try {
    const sleeps = [];
    const { consumer, got } = collect(url, {
      sleep: async (ms) => {
        sleeps.push(ms);
        await new Promise((r) => setTimeout(r, Math.min(ms, 5)));
      },
    });
    const result = await consumer.run();
    assert.equal(result.complete.type, 'complete');
    assertSameRows(got, want);
    // the records digest, computed here across every resume, is the service's
    assert.match(result.digest ?? '', /^[0-9a-f]{64}$/);
    assert.equal(result.digest, result.complete.digest);
    const conns = proxy.connections;
    assert.equal(conns.length, faults.length + 1);
    assert.deepEqual(conns.map((c) => c.fault), [...faults.map((f) => f.action), null]);
    assert.equal(conns[0].since, null);
    assert.ok(conns.slice(1).every((c) => c.since && c.format === 'arrays'), 'every resume sends since and keeps format');
    assert.equal(conns[1].since, conns[2].since, 'a connection torn before any records resumes from the same token');
    assert.ok(sleeps.includes(1000), '503 Retry-After: 1 is honoured');
    const reasons = got.states.filter((s) => s.state === 'reconnecting').map((s) => s.error.code);
    assert.deepEqual(reasons, [
      'network_error',
      'network_error',
      'reconnect',
      'source_unavailable',
      'source_unavailable',
      'incomplete_stream',
      'network_error',
    ]);
    const metas = got.lines.filter((l) => l.type === 'meta');
    assert.deepEqual(metas.map((m) => m.resumed), [false, true, true, true, true, true, true]);
  } finally {
    await proxy.close();
  }
});

test('a half-open connection is noticed by the idle timeout and resumed exactly', async () => {
  // Three stalls: the proxy stops forwarding mid-line and keeps both sockets open, so no
  // error and no end of body ever reaches the consumer; only its idle timer can act.
  const faults = [
    { afterLines: 2, action: 'stall' },
    { afterLines: 0, action: 'stall' }, // before any records: the same since again
    { afterLines: 30, action: 'stall' },
  ];
  const { proxy, want, url } = await setup({ faults });
  try {
    const { consumer, got } = collect(url, { idleTimeoutMs: 1500 });
    const result = await consumer.run();
    assert.equal(result.complete.type, 'complete');
    assertSameRows(got, want);
    // the records digest, computed here across every resume, is the service's
    assert.match(result.digest ?? '', /^[0-9a-f]{64}$/);
    assert.equal(result.digest, result.complete.digest);
    const conns = proxy.connections;
    assert.deepEqual(conns.map((c) => c.fault), ['stall', 'stall', 'stall', null]);
    assert.equal(conns[0].since, null);
    assert.ok(conns.slice(1).every((c) => c.since && c.format === 'arrays'), 'every resume sends since');
    assert.equal(conns[1].since, conns[2].since, 'a stall before any records resumes from the same token');
    const reasons = got.states.filter((s) => s.state === 'reconnecting').map((s) => s.error.code);
    assert.deepEqual(reasons, ['idle_timeout', 'idle_timeout', 'idle_timeout']);
  } finally {
    await proxy.close();
  }
});

test('dropConnection resumes without loss or repeats', async () => {
  const { proxy, want, url } = await setup({ lineDelayMs: 2 }, 200);
  try {
    let drops = 0;
    const { consumer, got } = collect(url, {
      onRecords: (l) => {
        got.rows[l.domain].push(...l.data);
        if (l.batch % 9 === 4 && drops < 5) {
          drops += 1;
          consumer.dropConnection();
        }
      },
    });
    await consumer.run();
    assert.equal(drops, 5);
    assert.equal(proxy.connections.length, 6);
    assertSameRows(got, want);
  } finally {
    await proxy.close();
  }
});

test('a fatal error line ends the consumer with its code', async () => {
  const { proxy, want, url } = await setup({ faults: [{ afterLines: 2, action: 'fatal-error' }] });
  try {
    const { consumer, got } = collect(url);
    await assert.rejects(consumer.run(), (err) => err.code === 'internal' && !err.retryable);
    assert.equal(proxy.connections.length, 1);
    assert.deepEqual(got.rows.history, want.rows.history.slice(0, 2 * 37));
    assert.equal(got.states.at(-1).state, 'failed');
  } finally {
    await proxy.close();
  }
});

test('a problem+json before the stream fails with its code (unknown job, token of another job)', async () => {
  const a = await createJob(svc.base, 20);
  const b = await createJob(svc.base, 20);
  const bad = `${svc.base}/api/trace/job/nope/stream?format=arrays`;
  await assert.rejects(collect(bad).consumer.run(), (err) => err.code === 'job_not_found' && err.status === 404);
  const first = (await readWhole(`${svc.base}${a.stream}?format=arrays`)).lines.find((l) => l.type === 'records');
  const forged = `${svc.base}${b.stream}?format=arrays&since=${encodeURIComponent(first.since)}`;
  await assert.rejects(collect(forged).consumer.run(), (err) => err.code === 'token_job_mismatch' && err.status === 400);
  const garbage = `${svc.base}${b.stream}?since=not-a-token`;
  await assert.rejects(collect(garbage).consumer.run(), (err) => err.code === 'invalid_token');
});

test('aborting the signal closes the connection and the service stops streaming', async () => {
  const { proxy, url } = await setup({ lineDelayMs: 20 });
  try {
    const ac = new AbortController();
    const { consumer, got } = collect(url, {
      signal: ac.signal,
      onRecords: (l) => l.batch === 3 && ac.abort(),
    });
    await assert.rejects(consumer.run(), (err) => err.name === 'AbortError');
    assert.equal(consumer.state, 'aborted');
    assert.equal(proxy.connections.length, 1);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(proxy.connections[0].recordsLines < 10, 'nothing more was sent');
    assert.equal(got.states.at(-1).state, 'aborted');
    assert.equal(await activeStreams(), 0, 'the service ended the stream');
  } finally {
    await proxy.close();
  }
});

/** trace_active_streams of the service's /metrics, once it settles at 0 (or after 2 s). */
async function activeStreams() {
  let n = NaN;
  for (let i = 0; i < 40; i++) {
    const text = await (await fetch(`${svc.base}/metrics`)).text();
    n = Number(/^trace_active_streams (\d+)/m.exec(text)?.[1]);
    if (n === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return n;
}
