// The records digest in the browser (digest.js) and the consumer's use of it: the chain
// over records lines equals the Python reference's; a token's chain is read; a changed
// record ends the consumer with `digest_mismatch`; a heartbeat's bookmark moves `since`;
// a 410 is final and names the job and the last position.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordsDigest, chainOfToken, dataText, toHex } from '../digest.js';
import { StreamConsumer } from '../consumer.js';

// Two records lines and their chain, computed by the Python reference (docs/protocol.md).
const LINES = [
  '{"type":"records","domain":"h","batch":1,"data":[{"CID":"a","N":1},{"CID":"b\\"data\\":","N":2.5}],"since":"t1"}',
  '{"type":"records","domain":"h","batch":2,"data":[["été",3]],"since":"t2"}',
];
const CHAIN = 'feb940ae009b7695a42b2ed4812a16a588d3b55238d8590f688fc64f99f9b9ad';

// Tokens signed by svc.core.tokens (test secret): chain bytes 0..31; a rowid text, an SCN
// and chain bytes 100..131; no chain.
const WITH_CHAIN =
  'AZilam9iLTGnaGlzdG9yeQOqQ0lELTAwMDEyM84HW80VzQg0wMQgAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh90jXC5O4AKu0BUOKKx2Fkubn20B4t5CcrsNIj5uAPhdQ';
const ORACLE =
  'AZilam9iLTGnaGlzdG9yeQOqQ0lELTAwMDEyM7JBQUFSM3NBQUVBQUFBQ1hBQUHNCDTPAAAAFv7g5SXEIGRlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn-AgYKDrgDtH_uC59afLc5jiVdbBlU1UhxEOdsfx3NqqqwR29c';
const NO_CHAIN = 'AZilam9iLTGnaGlzdG9yeQOqQ0lELTAwMDEyMwfNCDTAwFaTSRQXf6PBhXCMUMZEjdD0BjDNzxqTGgaQnlOa4mJH';

test('the chain over records lines is the reference chain', async () => {
  assert.equal(dataText(LINES[1]), '[["été",3]]');
  const digest = new RecordsDigest(null);
  for (const line of LINES) digest.add(line);
  assert.equal(await digest.hex(), CHAIN);
  const other = new RecordsDigest(null);
  other.add(LINES[0].replace('"N":1', '"N":1.0')); // the same value, other bytes
  other.add(LINES[1]);
  assert.notEqual(await other.hex(), CHAIN);
});

test("a token's chain is read without its secret", () => {
  assert.equal(toHex(chainOfToken(WITH_CHAIN) ?? new Uint8Array()), toHex(Uint8Array.from({ length: 32 }, (_, i) => i)));
  assert.equal(toHex(chainOfToken(ORACLE) ?? new Uint8Array()), toHex(Uint8Array.from({ length: 32 }, (_, i) => 100 + i)));
  assert.equal(chainOfToken(NO_CHAIN), null);
  assert.equal(chainOfToken('not a token'), null);
  assert.equal(new RecordsDigest(NO_CHAIN).available, false); // nothing to go on from
  assert.equal(new RecordsDigest(null, null).available, false); // no WebCrypto
});

/** A consumer reading `text` in one response (then `more` responses in turn). */
function consumer(responses, since = null) {
  const urls = [];
  return {
    urls,
    consumer: new StreamConsumer('api/trace/job/JOB-1/stream', {
      since,
      fetch: async (url) => {
        urls.push(url);
        return responses[urls.length - 1]();
      },
      sleep: async () => {},
      backoff: { initialMs: 1, maxMs: 1 },
    }),
  };
}

const ndjson = (...lines) => () =>
  new Response(lines.map((l) => `${l}\n`).join(''), {
    headers: { 'content-type': 'application/x-ndjson' },
  });
const complete = (digest) => JSON.stringify({ type: 'complete', total_records: 3, digest });

test('the consumer checks the digest and fails on a mismatch', async () => {
  const good = consumer([ndjson(...LINES, complete(CHAIN))]);
  const result = await good.consumer.run();
  assert.equal(result.digest, CHAIN);

  const bad = consumer([ndjson(LINES[0], LINES[1].replace('3]', '4]'), complete(CHAIN))]);
  await assert.rejects(bad.consumer.run(), (err) => err.code === 'digest_mismatch');
  assert.equal(bad.consumer.state, 'failed');

  const unknown = consumer([ndjson(...LINES, complete(null))]);
  assert.equal((await unknown.consumer.run()).digest, null); // nothing to check against
});

test('the chain goes on across a reconnect', async () => {
  const two = consumer([
    ndjson(LINES[0]), // ends without complete: resumed with t1
    ndjson(LINES[1], complete(CHAIN)),
  ]);
  const result = await two.consumer.run();
  assert.equal(result.digest, CHAIN);
  assert.match(two.urls[1], /since=t1/);
});

test("a heartbeat's bookmark moves since on", async () => {
  const c = consumer([
    ndjson(LINES[0], '{"type":"heartbeat","since":"bookmark-1"}'),
    ndjson(LINES[1], complete(CHAIN)),
  ]);
  await c.consumer.run();
  assert.match(c.urls[1], /since=bookmark-1/);
});

test('410 job_expired is final and names the job and the last position', async () => {
  const problem = {
    type: 'about:blank',
    title: 'The job has expired',
    status: 410,
    code: 'job_expired',
    detail: 'create the job again, then continue with offset=700',
  };
  const c = consumer(
    [
      () =>
        new Response(JSON.stringify(problem), {
          status: 410,
          headers: { 'content-type': 'application/problem+json' },
        }),
    ],
    't9',
  );
  await assert.rejects(c.consumer.run(), (err) => {
    assert.equal(err.code, 'job_expired');
    assert.equal(err.status, 410);
    assert.equal(err.jobId, 'JOB-1');
    assert.equal(err.since, 't9');
    assert.match(err.message, /JOB-1.*t9.*offset=700/);
    return true;
  });
  assert.equal(c.urls.length, 1); // never retried
});
