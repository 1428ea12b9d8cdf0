// Exports from the page (exports.js): asking, following, and the text shown.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { describeExport, followExport, formatBytes, startExport } from '../exports.js';

/** @param {number} status @param {any} body @param {Record<string, string>} [headers] */
function answer(status, body, headers = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json', ...headers },
  });
}

/** @param {Partial<import('../exports.js').ExportStatus>} fields */
function status(fields) {
  return {
    export_id: 'e1', format: 'csv.zip', state: 'queued', records: 0, total: null, size: null,
    sha256: null, error: null, links: { self: '/s', file: '/f', job: '/j' }, ...fields,
  };
}

test('startExport posts the format and returns the queued export', async () => {
  /** @type {any[]} */
  const calls = [];
  const fetch = async (/** @type {any} */ url, /** @type {any} */ init) => {
    calls.push([url, init]);
    return answer(202, status({}));
  };
  const got = await startExport('http://x/api/trace/job/J', 'csv.zip', { fetch, headers: { authorization: 'Bearer k' } });
  assert.equal(got.state, 'queued');
  assert.equal(calls[0][0], 'http://x/api/trace/job/J/exports');
  assert.equal(calls[0][1].method, 'POST');
  assert.deepEqual(JSON.parse(calls[0][1].body), { format: 'csv.zip' });
  assert.equal(calls[0][1].headers.authorization, 'Bearer k');
});

test('startExport turns a problem into an error with its code', async () => {
  const fetch = async () => answer(429, { code: 'too_many_exports', detail: 'at most 2' }, { 'retry-after': '5' });
  await assert.rejects(startExport('http://x/j', 'ndjson.gz', { fetch }), { code: 'too_many_exports', status: 429 });
});

test('followExport polls until done, waits out 503 with Retry-After, reports each status', async () => {
  const answers = [
    answer(200, status({ state: 'running', records: 10, total: 40 })),
    answer(503, { code: 'store_unavailable' }, { 'retry-after': '2' }),
    answer(200, status({ state: 'running', records: 30, total: 40 })),
    answer(200, status({ state: 'done', records: 40, total: 40, size: 2048, sha256: 'ab' })),
  ];
  /** @type {number[]} */
  const slept = [];
  /** @type {string[]} */
  const seen = [];
  const done = await followExport('http://x/s', {
    fetch: async () => /** @type {Response} */ (answers.shift()),
    sleep: async (ms) => { slept.push(ms); },
    onStatus: (s) => seen.push(`${s.state}:${s.records}`),
    intervalMs: 100,
  });
  assert.equal(done.state, 'done');
  assert.deepEqual(seen, ['running:10', 'running:30', 'done:40']);
  assert.deepEqual(slept, [100, 2000, 100]);
});

test('followExport returns a failed export and throws on a 404', async () => {
  const failed = status({ state: 'failed', error: { code: 'export_storage_full', message: 'full' } });
  const got = await followExport('http://x/s', { fetch: async () => answer(200, failed), sleep: async () => {} });
  assert.equal(got.state, 'failed');
  await assert.rejects(
    followExport('http://x/s', { fetch: async () => answer(404, { code: 'job_not_found' }), sleep: async () => {} }),
    { code: 'job_not_found' },
  );
});

test('followExport stops when aborted', async () => {
  const stop = new AbortController();
  const polling = followExport('http://x/s', {
    fetch: async () => answer(200, status({ state: 'running' })),
    sleep: async () => { stop.abort(); },
    signal: stop.signal,
  });
  await assert.rejects(polling, { name: 'AbortError' });
});

test('describeExport and formatBytes', () => {
  assert.equal(describeExport(status({})), 'queued');
  assert.equal(describeExport(status({ state: 'running', records: 1234, total: 5000 })), 'writing: 1,234 / 5,000 (24%)');
  assert.equal(describeExport(status({ state: 'running', records: 7 })), 'writing: 7 records');
  assert.equal(describeExport(status({ state: 'recovering', records: 7 })), 'recovering: 7 records written so far');
  assert.equal(describeExport(status({ state: 'done', records: 40, size: 3 * 1024 * 1024 })), 'done: 40 records, 3.0 MiB');
  assert.equal(
    describeExport(status({ state: 'failed', error: { code: 'export_storage_full', message: 'no room' } })),
    'failed: no room (export_storage_full)',
  );
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(15 * 1024), '15 KiB');
});
