// The consumer against a real HTTP server on loopback that tears connections
// part-way, asks clients to reconnect, fails and honours `since`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { StreamConsumer } from '../consumer.js';
import { createFakeService, DOMAINS } from '../dev/fake-service.js';

/** Start a fake service, create a job of `n` CIDs; return its stream URL. */
async function setup(options, n = 300) {
  const svc = createFakeService({ serveStatic: false, demoCids: 1000, ...options });
  const base = await svc.listen();
  const cids = (await (await fetch(`${base}/api/demo/cids?n=${n}`)).json()).container_ids;
  const res = await fetch(`${base}/api/trace/job`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ container_ids: cids, domains: ['history', 'materials'] }),
  });
  assert.equal(res.status, 201);
  const job = await res.json();
  return { svc, cids: [...cids].sort(), url: `${base}${job.links.stream}?format=arrays` };
}

/** The rows the job must yield, in order, per domain. */
function expectedRows(cids) {
  const out = {};
  for (const d of DOMAINS) {
    out[d.name] = [];
    cids.forEach((cid, i) => {
      for (let k = 0; k < d.perCid; k++) out[d.name].push(d.row(cid, i, k));
    });
  }
  return out;
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
  // 37-record lines written in 61-byte pieces: lines and UTF-8 characters
  // (王小明, 🏭, ...) are split across socket writes.
  const { svc, cids, url } = await setup({ faults, batchSize: 37, writeChunk: 61 });
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
    const want = expectedRows(cids);
    for (const name of ['history', 'materials']) {
      assert.equal(got.rows[name].length, want[name].length, `${name} row count`);
      const keys = new Set(got.rows[name].map((r) => `${r[0]}|${r[1]}`));
      assert.equal(keys.size, want[name].length, `${name} keys are unique`);
      assert.deepEqual(got.rows[name], want[name], `${name} rows, in keyset order`);
    }
    const conns = svc.stats.connections;
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
    await svc.close();
  }
});

test('dropConnection against the real server resumes without loss or repeats', async () => {
  const { svc, cids, url } = await setup({ batchSize: 50, batchDelayMs: 2 }, 200);
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
    assert.equal(svc.stats.connections.length, 6);
    const want = expectedRows(cids);
    assert.deepEqual(got.rows.history, want.history);
    assert.deepEqual(got.rows.materials, want.materials);
  } finally {
    await svc.close();
  }
});

test('a fatal error line from the server ends the consumer with its code', async () => {
  const { svc, url } = await setup({ faults: [{ afterLines: 2, action: 'fatal-error' }], batchSize: 100 });
  try {
    const { consumer, got } = collect(url);
    await assert.rejects(consumer.run(), (err) => err.code === 'internal_error' && !err.retryable);
    assert.equal(svc.stats.connections.length, 1);
    assert.equal(got.rows.history.length, 200);
    assert.equal(got.states.at(-1).state, 'failed');
  } finally {
    await svc.close();
  }
});

test('a problem+json before the stream fails with its code (unknown job)', async () => {
  const { svc, url } = await setup({});
  try {
    const bad = url.replace(/job\/[^/]+\/stream/, 'job/nope/stream');
    const { consumer } = collect(bad);
    await assert.rejects(consumer.run(), (err) => err.code === 'job_not_found' && err.status === 404);
    const forged = `${url}&since=${Buffer.from('{"j":"other"}').toString('base64url')}`;
    await assert.rejects(collect(forged).consumer.run(), (err) => err.code === 'token_job_mismatch');
  } finally {
    await svc.close();
  }
});

test('aborting the signal closes the server-side connection', async () => {
  const { svc, url } = await setup({ batchSize: 10, batchDelayMs: 20 });
  try {
    const ac = new AbortController();
    const { consumer, got } = collect(url, {
      signal: ac.signal,
      onRecords: (l) => l.batch === 3 && ac.abort(),
    });
    await assert.rejects(consumer.run(), (err) => err.name === 'AbortError');
    assert.equal(consumer.state, 'aborted');
    assert.equal(svc.stats.connections.length, 1);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(svc.stats.connections[0].recordsLines < 10, 'the server stopped writing');
    assert.equal(got.states.at(-1).state, 'aborted');
  } finally {
    await svc.close();
  }
});
