// The Worker module in node: `self`/`postMessage` are stubbed, the network is the
// real service behind a loopback proxy that drops connections. What the page would
// receive is decoded into ColumnStores and compared with a plain read of the job.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ColumnStore } from '../columns.js';
import { startService, createJob, readWhole } from './support/service.js';
import { startFaultProxy } from './support/fault-proxy.js';

/** @type {Awaited<ReturnType<typeof startService>>} */
let svc;
before(async () => {
  svc = await startService({ demoCids: 500, batchSize: 64 });
});
after(async () => {
  await svc?.stop();
});

const posted = [];
let onPost = () => {};
globalThis.self = globalThis;
globalThis.postMessage = (msg, options) => {
  // Same as a real postMessage: a structured clone, typed arrays transferred.
  posted.push(structuredClone(msg, options));
  onPost(msg);
};
await import('../stream-worker.js');

test('the worker delivers every row once, as the page decodes it', async () => {
  const faults = [{ afterLines: 2, action: 'drop' }, { afterLines: 3, action: 'reconnect' }];
  const job = await createJob(svc.base, 150);
  const want = await readWhole(`${svc.base}${job.stream}?format=arrays`);
  const proxy = await startFaultProxy(svc.base, { faults });
  try {
    const ended = new Promise((resolve) => {
      onPost = (msg) => msg.type === 'end' && resolve(msg);
    });
    let dropped = false;
    const prevOnPost = onPost;
    onPost = (msg) => {
      prevOnPost(msg);
      // The page's "drop connection" button, once, mid-materials.
      if (msg.type === 'records' && msg.domain === 'materials' && msg.batchNo === 2 && !dropped) {
        dropped = true;
        self.onmessage({ data: { type: 'drop' } });
      }
    };
    self.onmessage({ data: { type: 'start', gen: 7, url: `${proxy.base}${job.stream}?format=arrays` } });
    const end = await ended;
    assert.equal(end.ok, true, JSON.stringify(end.error));

    const stores = new Map();
    for (const msg of posted) {
      if (msg.type === 'line' && msg.line.type === 'domain_start' && !stores.has(msg.line.domain)) {
        stores.set(msg.line.domain, new ColumnStore(msg.line.columns));
      }
      if (msg.type === 'records') stores.get(msg.domain).append(msg.batch);
    }
    for (const name of ['history', 'materials']) {
      const store = stores.get(name);
      const rows = want.rows[name];
      assert.ok(rows.length > 0);
      assert.equal(store.length, rows.length);
      const got = Array.from({ length: store.length }, (_, r) => store.columns.map((_, j) => store.get(r, j)));
      assert.deepEqual(got, rows);
    }
    assert.equal(proxy.connections.length, 4);
    const states = posted.filter((m) => m.type === 'state').map((m) => m.state);
    assert.equal(states.filter((s) => s === 'reconnecting').length, 3);
    assert.equal(states.at(-1), 'done');
    assert.ok(posted.some((m) => m.type === 'line' && m.line.type === 'meta' && m.line.resumed));
    assert.ok(!posted.some((m) => m.type === 'line' && m.line.type === 'records'), 'records go as column batches only');
    assert.ok(posted.every((m) => m.gen === 7), 'every stream message carries its generation');
  } finally {
    await proxy.close();
  }
});

/** Send a request to the worker and wait for the reply with its id. */
function ask(type, payload) {
  const id = Math.floor(Math.random() * 1e9);
  return new Promise((resolve) => {
    const before = onPost;
    onPost = (msg) => {
      if (msg.id === id) {
        onPost = before;
        resolve(msg);
      }
    };
    self.onmessage({ data: { type, id, ...payload } });
  });
}

test('the worker keeps a picked CID list and creates the job from it', async () => {
  const base = svc.base;
  const small = await ask('pick', { url: `${base}/api/demo/cids?n=10`, inlineMax: 100 });
  assert.equal(small.type, 'cids');
  assert.equal(small.count, 10);
  assert.equal(small.list.length, 10, 'short lists come back in full');
  const big = await ask('pick', { url: `${base}/api/demo/cids?n=400`, inlineMax: 100 });
  assert.equal(big.count, 400);
  assert.equal(big.list, null, 'long lists stay in the worker');
  assert.equal(big.preview.length, 20);
  const created = await ask('create', { url: `${base}/api/trace/job`, domains: ['history'] });
  assert.equal(created.status, 201);
  assert.equal(created.body.cid_count, 400);
  const fromText = await ask('create', { url: `${base}/api/trace/job`, domains: ['history'], text: 'a, b;c\n\n d a' });
  assert.equal(fromText.body.cid_count, 4, 'text wins over the kept list; the service de-duplicates');
  const file = new Blob(['x1\r\nx2\r\nx3\r\n']);
  const read = await ask('file', { file, inlineMax: 100 });
  assert.deepEqual(read.list, ['x1', 'x2', 'x3']);
  const bad = await ask('create', { url: `${base}/api/trace/job`, domains: ['nope'] });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.code, 'unknown_domain');
  // Any problem+json answer to a pick fails it with the problem's status and code.
  const failed = await ask('pick', { url: `${base}/api/trace/job/nope` });
  assert.equal(failed.type, 'failed');
  assert.equal(failed.error.status, 404);
  assert.equal(failed.error.code, 'job_not_found');
});
