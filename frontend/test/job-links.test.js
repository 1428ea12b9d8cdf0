// The URLs the page derives from a created job (job-links.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { domainCsv, jobLinks } from '../job-links.js';

const base = 'http://127.0.0.1:8000/ui/';

test('the stream in arrays, the download without format, the CSV under the job', () => {
  const links = jobLinks(
    { job_id: 'J1', links: { stream: '/api/trace/job/J1/stream?format=objects&x=1', self: '/api/trace/job/J1' } },
    base,
  );
  assert.deepEqual(links, {
    streamUrl: 'http://127.0.0.1:8000/api/trace/job/J1/stream?format=arrays&x=1',
    downloadUrl: 'http://127.0.0.1:8000/api/trace/job/J1/stream?x=1',
    csvUrl: 'http://127.0.0.1:8000/api/trace/job/J1/export.csv',
  });
});

test('without links: paths relative to the page, the job id escaped', () => {
  const links = jobLinks({ job_id: 'a/b' }, base);
  assert.equal(links.streamUrl, 'http://127.0.0.1:8000/ui/api/trace/job/a%2Fb/stream?format=arrays');
  assert.equal(links.downloadUrl, 'http://127.0.0.1:8000/ui/api/trace/job/a%2Fb/stream');
  assert.equal(links.csvUrl, 'http://127.0.0.1:8000/ui/api/trace/job/a%2Fb/export.csv');
});

test("a domain's CSV: its domain in the query, saved as <job>-<domain>.csv", () => {
  const csv = domainCsv({ job_id: 'J1', csvUrl: 'http://h/api/trace/job/J1/export.csv' }, 'history');
  assert.deepEqual(csv, { href: 'http://h/api/trace/job/J1/export.csv?domain=history', filename: 'J1-history.csv' });
});
