import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  StreamConsumer,
  StreamError,
  consumeStream,
  withSince,
  parseRetryAfter,
} from '../consumer.js';

const enc = new TextEncoder();
const nd = (...lines) => lines.map((l) => `${JSON.stringify(l)}\n`).join('');
const meta = (resumed = false) => ({ type: 'meta', job_id: 'j', domains: ['h'], resumed });
const start = { type: 'domain_start', domain: 'h', columns: ['CID', 'N'], total: 4 };
const rec = (batch, data) => ({ type: 'records', domain: 'h', batch, data, since: `t${batch}` });
const complete = { type: 'complete', total_records: 4 };

/**
 * A Response whose body yields `bytes` in the given piece sizes, then ends
 * (or errors with `fail`, or hangs until the request is aborted).
 */
function ndjsonResponse(text, { pieces = [Infinity], fail, hang, signal } = {}) {
  const bytes = enc.encode(text);
  let at = 0;
  let k = 0;
  const body = new ReadableStream({
    start(controller) {
      signal?.addEventListener('abort', () => controller.error(signal.reason));
    },
    pull(controller) {
      if (at < bytes.length) {
        const size = pieces[Math.min(k++, pieces.length - 1)];
        controller.enqueue(bytes.slice(at, at + size));
        at += size;
        return;
      }
      if (fail) controller.error(fail);
      else if (hang) return new Promise(() => {});
      else controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { 'content-type': 'application/x-ndjson' } });
}

/** fetch that answers the n-th request with handlers[n](url, init); records the URLs. */
function scriptedFetch(handlers) {
  const urls = [];
  const fetch = async (url, init) => {
    const h = handlers[urls.length];
    urls.push(url);
    if (!h) throw new Error(`unexpected request ${urls.length}: ${url}`);
    return h(url, init);
  };
  return { fetch, urls };
}

/** Options that record everything and never really sleep. */
function recorder(extra = {}) {
  const seen = { lines: [], records: [], states: [], sleeps: [] };
  return {
    seen,
    options: {
      onLine: (l) => seen.lines.push(l),
      onRecords: (l) => seen.records.push(...l.data),
      onState: (s) => seen.states.push(s),
      sleep: async (ms) => {
        seen.sleeps.push(ms);
      },
      random: () => 0.5,
      ...extra,
    },
  };
}

test('withSince sets, replaces and removes since, keeping other parameters', () => {
  assert.equal(withSince('/s?format=arrays', 'abc'), '/s?format=arrays&since=abc');
  assert.equal(withSince('/s?since=old&format=arrays', 'new'), '/s?since=new&format=arrays');
  assert.equal(withSince('/s', null), '/s');
  assert.equal(withSince('/s?since=x&format=arrays#top', null), '/s?format=arrays#top');
  assert.equal(withSince('http://h:1/a/stream', 'a-b_c'), 'http://h:1/a/stream?since=a-b_c');
});

test('parseRetryAfter reads seconds and HTTP dates', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter('soon'), undefined);
  const now = Date.parse('2024-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('Mon, 01 Jan 2024 00:00:05 GMT', now), 5000);
});

test('lines and UTF-8 characters split across chunks are decoded exactly', async () => {
  const rows = [
    ['王小明', 1],
    ['🏭 Zoë', 2],
    ['José\u2028Łukasz', 3],
    ['€', 4],
  ];
  const text = nd(meta(), start, rec(1, rows.slice(0, 2)), rec(2, rows.slice(2)), complete);
  for (const pieces of [[1], [2], [3], [5, 1], [7, 2, 3], [Infinity]]) {
    const { fetch } = scriptedFetch([() => ndjsonResponse(text, { pieces })]);
    const { seen, options } = recorder({ fetch });
    const result = await consumeStream('/s?format=arrays', options);
    assert.deepEqual(seen.records, rows, `pieces ${pieces}`);
    assert.equal(result.complete.type, 'complete');
    assert.equal(result.since, 't2');
    assert.deepEqual(
      seen.lines.map((l) => l.type),
      ['meta', 'domain_start', 'records', 'records', 'complete'],
    );
  }
});

test('CRLF and blank lines in the body are tolerated', async () => {
  const text = `\r\n${nd(meta(), start, rec(1, [['a', 1]]), complete).replaceAll('\n', '\r\n\r\n')}`;
  const { fetch } = scriptedFetch([() => ndjsonResponse(text, { pieces: [3] })]);
  const { seen, options } = recorder({ fetch });
  await consumeStream('/s', options);
  assert.deepEqual(seen.records, [['a', 1]]);
});

test('a reconnect line resumes from its since, soon, keeping format=arrays', async () => {
  const { fetch, urls } = scriptedFetch([
    () => ndjsonResponse(nd(meta(), start, rec(1, [['a', 1]]), { type: 'reconnect', reason: 'draining', since: 't1' })),
    () => ndjsonResponse(nd(meta(true), start, rec(2, [['b', 2]]), complete)),
  ]);
  const { seen, options } = recorder({ fetch, random: () => 0.999 });
  const result = await consumeStream('/job/1/stream?format=arrays', options);
  assert.deepEqual(urls, ['/job/1/stream?format=arrays', '/job/1/stream?format=arrays&since=t1']);
  assert.deepEqual(seen.records, [['a', 1], ['b', 2]]);
  assert.equal(result.connections, 2);
  assert.ok(seen.sleeps[0] <= 250, `planned reconnect waits little, got ${seen.sleeps[0]}`);
  const reconnecting = seen.states.find((s) => s.state === 'reconnecting');
  assert.equal(reconnecting.attempt, 1);
  assert.equal(reconnecting.error.code, 'reconnect');
  assert.deepEqual(
    seen.states.map((s) => s.state),
    ['connecting', 'streaming', 'reconnecting', 'connecting', 'streaming', 'done'],
  );
  // The resumed meta and domain_start are passed through untouched.
  assert.deepEqual(
    seen.lines.map((l) => l.type),
    ['meta', 'domain_start', 'records', 'reconnect', 'meta', 'domain_start', 'records', 'complete'],
  );
});

test('the since of a reconnect line wins over the last records line', async () => {
  const { fetch, urls } = scriptedFetch([
    () => ndjsonResponse(nd(meta(), start, rec(1, [['a', 1]]), { type: 'reconnect', since: 'newer' })),
    () => ndjsonResponse(nd(meta(true), complete)),
  ]);
  await consumeStream('/s', recorder({ fetch }).options);
  assert.equal(urls[1], '/s?since=newer');
});

test('a retryable error line retries from its since; a fatal one stops', async () => {
  const errLine = (retryable) => ({
    type: 'error',
    code: retryable ? 'source_unavailable' : 'token_expired',
    message: 'nope',
    retryable,
    since: 't1',
  });
  {
    const { fetch, urls } = scriptedFetch([
      () => ndjsonResponse(nd(meta(), start, rec(1, [['a', 1]]), errLine(true))),
      () => ndjsonResponse(nd(meta(true), start, rec(2, [['b', 2]]), complete)),
    ]);
    const { seen, options } = recorder({ fetch });
    await consumeStream('/s', options);
    assert.deepEqual(urls, ['/s', '/s?since=t1']);
    assert.deepEqual(seen.records, [['a', 1], ['b', 2]]);
    assert.equal(seen.states.find((s) => s.state === 'reconnecting').error.code, 'source_unavailable');
  }
  {
    const { fetch, urls } = scriptedFetch([
      () => ndjsonResponse(nd(meta(), start, rec(1, [['a', 1]]), errLine(false))),
    ]);
    const { seen, options } = recorder({ fetch });
    const consumer = new StreamConsumer('/s', options);
    await assert.rejects(consumer.run(), (err) => {
      assert.ok(err instanceof StreamError);
      assert.equal(err.code, 'token_expired');
      assert.equal(err.retryable, false);
      return true;
    });
    assert.equal(urls.length, 1);
    assert.equal(consumer.state, 'failed');
    assert.equal(consumer.since, 't1');
    const last = seen.states.at(-1);
    assert.equal(last.state, 'failed');
    assert.equal(last.error.code, 'token_expired');
    assert.equal(seen.lines.at(-1).type, 'error', 'the error line itself is passed on');
  }
});

test('a stream that ends without complete resumes from the last records since', async () => {
  const { fetch, urls } = scriptedFetch([
    // clean end after whole lines
    () => ndjsonResponse(nd(meta(), start, rec(1, [['a', 1]]))),
    // clean end in the middle of a line: the fragment must not be delivered
    () => ndjsonResponse(nd(meta(true), start, rec(2, [['b', 2]])) + '{"type":"records","domain":"h","batch":3,"da'),
    () => ndjsonResponse(nd(meta(true), start, rec(3, [['c', 3]]), complete)),
  ]);
  const { seen, options } = recorder({ fetch });
  await consumeStream('/s?format=arrays', options);
  assert.deepEqual(urls, ['/s?format=arrays', '/s?format=arrays&since=t1', '/s?format=arrays&since=t2']);
  assert.deepEqual(seen.records, [['a', 1], ['b', 2], ['c', 3]]);
  const codes = seen.states.filter((s) => s.state === 'reconnecting').map((s) => s.error.code);
  assert.deepEqual(codes, ['incomplete_stream', 'incomplete_stream']);
});

test('network errors back off exponentially with jitter; progress resets the count', async () => {
  const boom = () => {
    throw new TypeError('fetch failed');
  };
  const { fetch, urls } = scriptedFetch([
    boom,
    boom,
    boom,
    // progress, then the body errors mid-stream
    () => ndjsonResponse(nd(meta(), start, rec(1, [['a', 1]])), { fail: new TypeError('terminated') }),
    boom,
    () => ndjsonResponse(nd(meta(true), start, rec(2, [['b', 2]]), complete)),
  ]);
  const { seen, options } = recorder({ fetch, random: () => 1 - 1e-9, backoff: { initialMs: 100, maxMs: 300 } });
  await consumeStream('/s', options);
  const reconnecting = seen.states.filter((s) => s.state === 'reconnecting');
  assert.deepEqual(reconnecting.map((s) => s.attempt), [1, 2, 3, 1, 2]);
  assert.deepEqual(seen.sleeps, [100, 200, 300, 100, 200]);
  assert.deepEqual(reconnecting.map((s) => s.error.code), Array(5).fill('network_error'));
  assert.deepEqual(urls, ['/s', '/s', '/s', '/s', '/s?since=t1', '/s?since=t1']);
  assert.deepEqual(seen.records, [['a', 1], ['b', 2]]);
});

test('jitter stays within [base/2, base]', async () => {
  for (const [r, expect] of [[0, 50], [0.5, 75]]) {
    const { fetch } = scriptedFetch([
      () => {
        throw new TypeError('x');
      },
      () => ndjsonResponse(nd(meta(), complete)),
    ]);
    const { seen, options } = recorder({ fetch, random: () => r, backoff: { initialMs: 100 } });
    await consumeStream('/s', options);
    assert.deepEqual(seen.sleeps, [expect]);
  }
});

test('giving up after maxRetries consecutive failures', async () => {
  const handlers = Array.from({ length: 4 }, () => () => {
    throw new TypeError('fetch failed');
  });
  const { fetch, urls } = scriptedFetch(handlers);
  const { seen, options } = recorder({ fetch, maxRetries: 3 });
  await assert.rejects(consumeStream('/s', options), (err) => err.code === 'network_error');
  assert.equal(urls.length, 4);
  assert.equal(seen.states.at(-1).state, 'failed');
});

test('an HTTP problem before the stream fails with its code; 503 + Retry-After retries', async () => {
  const problem = (status, code, headers = {}) => () =>
    new Response(JSON.stringify({ type: 'about:blank', title: 'x', status, code, detail: `${code}!` }), {
      status,
      headers: { 'content-type': 'application/problem+json', ...headers },
    });
  {
    const { fetch, urls } = scriptedFetch([problem(400, 'invalid_token')]);
    const { seen, options } = recorder({ fetch });
    await assert.rejects(consumeStream('/s', options), (err) => {
      assert.equal(err.code, 'invalid_token');
      assert.equal(err.status, 400);
      assert.equal(err.message, 'invalid_token!');
      return true;
    });
    assert.equal(urls.length, 1);
    assert.equal(seen.states.at(-1).state, 'failed');
  }
  {
    const { fetch } = scriptedFetch([() => new Response('<h1>gone</h1>', { status: 404 })]);
    await assert.rejects(consumeStream('/s', recorder({ fetch }).options), (err) => err.code === 'http_404');
  }
  {
    const { fetch, urls } = scriptedFetch([
      problem(503, 'store_unavailable', { 'retry-after': '7' }),
      () => ndjsonResponse(nd(meta(), start, rec(1, [['a', 1]]), complete)),
    ]);
    const { seen, options } = recorder({ fetch });
    await consumeStream('/s', options);
    assert.equal(urls.length, 2);
    assert.deepEqual(seen.sleeps, [7000]);
    assert.equal(seen.states.find((s) => s.state === 'reconnecting').error.code, 'store_unavailable');
  }
});

test('aborting the signal mid-stream cancels the request and rejects', async () => {
  const ac = new AbortController();
  let requestSignal;
  const { fetch } = scriptedFetch([
    (url, init) => {
      requestSignal = init.signal;
      return ndjsonResponse(nd(meta(), start, rec(1, [['a', 1]])), { hang: true, signal: init.signal });
    },
  ]);
  const { seen, options } = recorder({
    fetch,
    signal: ac.signal,
    onRecords: () => ac.abort(new DOMException('user', 'AbortError')),
  });
  const consumer = new StreamConsumer('/s', options);
  await assert.rejects(consumer.run(), (err) => err.name === 'AbortError');
  assert.equal(requestSignal.aborted, true);
  assert.equal(consumer.state, 'aborted');
  assert.equal(seen.states.at(-1).state, 'aborted');
});

test('aborting during the backoff wait rejects at once, with the real sleep', async () => {
  const ac = new AbortController();
  const { fetch, urls } = scriptedFetch([
    () => {
      throw new TypeError('fetch failed');
    },
  ]);
  const consumer = new StreamConsumer('/s', {
    fetch,
    signal: ac.signal,
    backoff: { initialMs: 60_000 },
    onState: (s) => s.state === 'reconnecting' && setTimeout(() => ac.abort(), 10),
  });
  const t0 = Date.now();
  await assert.rejects(consumer.run(), (err) => err.name === 'AbortError');
  assert.ok(Date.now() - t0 < 5000);
  assert.equal(urls.length, 1);
});

test('an already aborted signal makes no request', async () => {
  const { fetch, urls } = scriptedFetch([]);
  await assert.rejects(consumeStream('/s', { fetch, signal: AbortSignal.abort() }));
  assert.equal(urls.length, 0);
});

test('dropConnection aborts only the current request; the consumer resumes', async () => {
  let consumer;
  const { fetch, urls } = scriptedFetch([
    (url, init) =>
      ndjsonResponse(nd(meta(), start, rec(1, [['a', 1]])), { hang: true, signal: init.signal }),
    () => ndjsonResponse(nd(meta(true), start, rec(2, [['b', 2]]), complete)),
  ]);
  const { seen, options } = recorder({
    fetch,
    onRecords: (l) => {
      seen.records.push(...l.data);
      if (l.batch === 1) queueMicrotask(() => assert.equal(consumer.dropConnection(), true));
    },
  });
  consumer = new StreamConsumer('/s?format=arrays', options);
  assert.equal(consumer.dropConnection(), false, 'nothing to drop before run()');
  const result = await consumer.run();
  assert.equal(result.connections, 2);
  assert.deepEqual(urls, ['/s?format=arrays', '/s?format=arrays&since=t1']);
  assert.deepEqual(seen.records, [['a', 1], ['b', 2]]);
  assert.equal(seen.states.find((s) => s.state === 'reconnecting').error.code, 'connection_dropped');
  assert.equal(consumer.state, 'done');
});

test('an idle connection is dropped and resumed', async () => {
  const { fetch, urls } = scriptedFetch([
    (url, init) => ndjsonResponse(nd(meta(), start, rec(1, [['a', 1]])), { hang: true, signal: init.signal }),
    () => ndjsonResponse(nd(meta(true), complete)),
  ]);
  const { seen, options } = recorder({ fetch, idleTimeoutMs: 30 });
  await consumeStream('/s', options);
  assert.deepEqual(urls, ['/s', '/s?since=t1']);
  assert.equal(seen.states.find((s) => s.state === 'reconnecting').error.code, 'idle_timeout');
});

test('a line that is not JSON reconnects from the last good since', async () => {
  const { fetch, urls } = scriptedFetch([
    () => ndjsonResponse(`${nd(meta(), start, rec(1, [['a', 1]]))}<html>proxy error</html>\n`),
    () => ndjsonResponse(nd(meta(true), complete)),
  ]);
  const { seen, options } = recorder({ fetch });
  await consumeStream('/s', options);
  assert.deepEqual(urls, ['/s', '/s?since=t1']);
  assert.equal(seen.states.find((s) => s.state === 'reconnecting').error.code, 'bad_line');
});

test('a start token and extra headers are sent', async () => {
  let headers;
  const { fetch, urls } = scriptedFetch([
    (url, init) => {
      headers = init.headers;
      return ndjsonResponse(nd(meta(true), complete));
    },
  ]);
  await consumeStream('/s', { fetch, since: 'given', headers: { 'X-API-Key': 'k' } });
  assert.deepEqual(urls, ['/s?since=given']);
  assert.equal(headers['X-API-Key'], 'k');
  assert.equal(headers.Accept, 'application/x-ndjson');
});

test('a since already in the URL is where the consumer starts', async () => {
  const { fetch, urls } = scriptedFetch([() => ndjsonResponse(nd(meta(true), complete))]);
  const consumer = new StreamConsumer('/s?since=abc&format=arrays', { fetch });
  assert.equal(consumer.since, 'abc');
  await consumer.run();
  assert.deepEqual(urls, ['/s?since=abc&format=arrays']);
});

test('run() may be called once', async () => {
  const { fetch } = scriptedFetch([() => ndjsonResponse(nd(meta(), complete))]);
  const consumer = new StreamConsumer('/s', { fetch });
  await consumer.run();
  await assert.rejects(consumer.run(), /once/);
});
