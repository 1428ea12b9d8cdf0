// A job's state on the page (job-state.js): stream lines in, state and log out, no DOM.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { BatchEncoder } from '../columns.js';
import { JobState, duplicateKeys, newDomain } from '../job-state.js';

const COLUMNS = ['CONTAINERID', 'SEQ'];

/** A JobState whose events are recorded, started at t=100. */
function started() {
  /** @type {[string, ...any[]][]} */
  const seen = [];
  /** @type {any} */
  const events = {
    addDomain: (/** @type {string} */ name, /** @type {string[]} */ columns) => {
      seen.push(['addDomain', name, columns]);
      return newDomain(name, columns);
    },
    log: (/** @type {string} */ text, kind = 'info') => seen.push(['log', text, kind]),
    say: (/** @type {string} */ text) => seen.push(['say', text]),
    columnsChanged: (/** @type {any} */ d) => seen.push(['columnsChanged', d.name, d.columns]),
    domainStarted: (/** @type {any} */ d) => seen.push(['domainStarted', d.name]),
    rowsAdded: (/** @type {any} */ d) => seen.push(['rowsAdded', d.name, d.store.length]),
    aggregation: (/** @type {any} */ data) => seen.push(['aggregation', data]),
    connChanged: (/** @type {any} */ s) => seen.push(['connChanged', s.state]),
  };
  const state = new JobState(events, { clickedAt: 90, startedAt: 100 });
  const logs = () => seen.filter((e) => e[0] === 'log').map((e) => `${e[2]}: ${e[1]}`);
  return { state, seen, logs };
}

/**
 * A records line as the worker encodes it; a domain's batches share one encoder (its dictionaries).
 * @param {any[][]} rows
 */
function batch(rows, encoder = new BatchEncoder(rows[0].length)) {
  return encoder.encode(rows).batch;
}

test('before any job: idle, nothing received', () => {
  const state = new JobState(/** @type {any} */ ({}), null);
  assert.equal(state.conn.state, 'idle');
  assert.equal(state.running, false);
  assert.equal(state.received, 0);
  assert.deepEqual(state.metrics, {
    clickedAt: 0, startedAt: 0, firstLineAt: null, firstRecordsAt: null, firstRowsAt: null, doneAt: null,
  });
});

test('a whole stream: meta, domain_start, records, domain_end, aggregation, complete', () => {
  const { state, seen, logs } = started();
  assert.equal(state.conn.state, 'connecting');
  state.addDomain('history', []); // from the catalog before the stream: columns not known yet
  state.onLine({ type: 'meta', cid_count: 1200, domains: ['history'] }, 110);
  state.onLine({ type: 'domain_start', domain: 'history', columns: COLUMNS, total: 3, total_batches: 2 }, 111);
  const history = new BatchEncoder(COLUMNS.length);
  state.onRecords('history', batch([['C1', 1], ['C1', 2]], history), 'T1', 120);
  state.onRecords('history', batch([['C2', 1]], history), 'T2', 130);
  state.onLine({ type: 'domain_end', domain: 'history', total_records: 3 }, 140);
  const data = { domains: { history: { records: 3, containers: 2 } }, aggregations: { history: { a: {}, b: {} } } };
  state.onLine({ type: 'aggregation', data }, 141);
  state.onLine({ type: 'aggregation', data: { domains: {} } }, 142); // a resume's repeat: ignored
  state.onLine({ type: 'complete', elapsed_seconds: 1.25 }, 150);

  const d = /** @type {any} */ (state.domains.get('history'));
  assert.deepEqual(d.columns, COLUMNS);
  assert.equal(d.store.length, 3);
  assert.deepEqual(d.store.column('CONTAINERID'), ['C1', 'C1', 'C2']);
  assert.equal(d.progress.total, 3);
  assert.equal(d.progress.status, 'done');
  assert.equal(state.received, 3);
  assert.equal(state.conn.since, 'T2');
  assert.equal(state.aggregation, data);
  assert.deepEqual(state.metrics, {
    clickedAt: 90, startedAt: 100, firstLineAt: 110, firstRecordsAt: 120, firstRowsAt: null, doneAt: 150,
  });
  assert.deepEqual(logs(), [
    'info: stream opened: 1,200 CIDs, history',
    'info: history: 3 records in 2 batches',
    'ok: history: done, 3 records',
    'ok: aggregations: 2 computed over the whole job',
    'ok: complete: 3 records, server time 1.3 s',
  ]);
  assert.deepEqual(
    seen.filter((e) => e[0] !== 'log'),
    [
      ['addDomain', 'history', []],
      ['columnsChanged', 'history', COLUMNS],
      ['domainStarted', 'history'],
      ['rowsAdded', 'history', 2],
      ['rowsAdded', 'history', 3],
      ['aggregation', data],
    ],
  );
});

test('a resume: meta resumed and the repeated domain_start continue the same table', () => {
  const { state, logs } = started();
  state.onLine({ type: 'domain_start', domain: 'history', columns: COLUMNS, total: null }, 110);
  const history = new BatchEncoder(COLUMNS.length);
  state.onRecords('history', batch([['C1', 1]], history), 'T1', 120);
  state.onLine({ type: 'meta', resumed: true }, 130);
  state.onLine({ type: 'domain_start', domain: 'history', columns: COLUMNS, total: 2, total_batches: 1 }, 131);
  state.onRecords('history', batch([['C1', 2]], history), 'T2', 140);
  state.onLine({ type: 'complete' }, 150);
  assert.equal(state.resumes, 1);
  assert.deepEqual(state.domains.get('history')?.store.column('SEQ'), [1, 2], 'the rows before the resume are kept');
  assert.deepEqual(logs(), [
    'info: history: counting records in ? batches',
    'ok: resumed (1): the server continues after the last since token',
    'info: history: counted 2 records in 1 batches',
    'ok: complete: 2 records',
  ]);
});

test('changed columns start the table again; a domain first seen in records is added', () => {
  const { state, seen, logs } = started();
  state.onLine({ type: 'domain_start', domain: 'history', columns: ['A'], total: 5 }, 110);
  state.onRecords('history', batch([['x']]), undefined, 120);
  state.onLine({ type: 'domain_start', domain: 'history', columns: COLUMNS, total: 5 }, 130);
  const d = state.domains.get('history');
  assert.equal(d?.store.length, 0);
  assert.equal(d?.progress.received, 0);
  assert.deepEqual(d?.store.columns, COLUMNS);
  assert.equal(state.conn.since, null, 'a batch without a token leaves since alone');
  assert.ok(logs().includes('warn: history: columns changed mid-stream; starting the table again'));
  assert.throws(() => state.onRecords('materials', batch([['L1', 1]]), 'T', 140), /columns/);
  assert.deepEqual(seen.find((e) => e[0] === 'addDomain' && e[1] === 'materials'), ['addDomain', 'materials', []]);
});

test('a domain_end whose count differs from the rows received is an error', () => {
  const { state, logs } = started();
  state.onLine({ type: 'domain_start', domain: 'history', columns: COLUMNS, total: 3 }, 110);
  state.onRecords('history', batch([['C1', 1]]), 'T1', 120);
  state.onLine({ type: 'domain_end', domain: 'history', total_records: 3 }, 130);
  state.onLine({ type: 'domain_end', domain: 'history', total_records: 3 }, 131); // already done
  state.onLine({ type: 'domain_end', domain: 'unknown' }, 132);
  assert.equal(state.domains.get('history')?.progress.mismatch, true);
  assert.deepEqual(logs().slice(1), ['error: history: done, 1 records but the server counted 3']);
});

test('reconnect and error lines, connection states, failure said once', () => {
  const { state, seen, logs } = started();
  state.onLine({ type: 'reconnect', reason: 'draining' }, 110);
  state.onLine({ type: 'reconnect' }, 111);
  state.onLine({ type: 'error', code: 'store_unavailable', message: 'down', retryable: true }, 112);
  state.onLine({ type: 'error', code: 'job_expired', message: 'gone', retryable: false }, 113);
  state.onState({ state: 'reconnecting', attempt: 2, connections: 3, since: 'T5', delayMs: 1234, error: { code: 'network' } });
  assert.deepEqual(state.conn, { state: 'reconnecting', attempt: 2, connections: 3, since: 'T5' });
  const failed = { state: 'failed', attempt: 0, connections: 3, since: 'T5', error: { code: 'job_expired', message: 'gone' } };
  state.onState(failed);
  state.onState(failed);
  state.onState({ state: 'aborted', attempt: 0, connections: 3, since: 'T5' });
  assert.deepEqual(logs(), [
    'warn: server asked to reconnect (draining)',
    'warn: server asked to reconnect (no reason)',
    'warn: stream error store_unavailable: down (retrying)',
    'error: stream error job_expired: gone (not retryable)',
    'warn: connection ended (network); reconnecting in 1.23 s, attempt 2',
    'warn: stopped by the user',
  ]);
  assert.deepEqual(seen.filter((e) => e[0] === 'say'), [['say', 'Stream failed: job_expired gone']]);
  assert.deepEqual(
    seen.filter((e) => e[0] === 'connChanged').map((e) => e[1]),
    ['reconnecting', 'failed', 'failed', 'aborted'],
  );
});

test('the end: a failure stops the unfinished domains; a stop by the user is not logged as one', () => {
  const { state, logs } = started();
  state.running = true;
  state.onLine({ type: 'domain_start', domain: 'history', columns: COLUMNS, total: 3 }, 110);
  state.onLine({ type: 'domain_start', domain: 'materials', columns: COLUMNS, total: 0 }, 111);
  state.onLine({ type: 'domain_end', domain: 'materials', total_records: 0 }, 112);
  state.onEnd({ ok: false, error: { name: 'StreamError', code: 'job_expired', message: 'gone' } }, 200);
  assert.equal(state.running, false);
  assert.equal(state.endedAt, 200);
  assert.equal(state.domains.get('history')?.progress.status, 'stopped');
  assert.equal(state.domains.get('materials')?.progress.status, 'done');
  assert.equal(logs().at(-1), 'error: failed: job_expired gone');

  const stopped = started();
  stopped.state.onEnd({ ok: false, error: { name: 'AbortError' } }, 300);
  assert.deepEqual(stopped.logs(), []);
  assert.equal(stopped.state.endedAt, 300);
});

test('drops are counted and logged', () => {
  const { state, logs } = started();
  state.drop();
  state.drop();
  assert.equal(state.drops, 2);
  assert.deepEqual(logs(), ['warn: drop requested by the user (1)', 'warn: drop requested by the user (2)']);
});

test('duplicateKeys counts rows that repeat an earlier key', () => {
  const d = newDomain('history', COLUMNS);
  d.store.append(batch([['C1', 1], ['C1', 2], ['C1', 1], ['C2', 1], ['C1', 2]]));
  assert.equal(duplicateKeys(d.store, COLUMNS), 2);
  assert.equal(duplicateKeys(d.store, ['CONTAINERID']), 3);
  assert.throws(() => duplicateKeys(d.store, ['NOPE']), /unknown key column/);
});

test('after the last domain_end, before the aggregation line: the phase is "aggregating"', () => {
  const { state, logs } = started();
  state.running = true;
  state.onState({ state: 'streaming', attempt: 0, connections: 1, since: null });
  state.onLine({ type: 'domain_start', domain: 'history', columns: COLUMNS, total: 1, total_batches: 1 }, 110);
  state.onLine({ type: 'domain_start', domain: 'materials', columns: COLUMNS, total: 0, total_batches: 0 }, 111);
  state.onRecords('history', batch([['C1', 1]]), 'T1', 120);
  state.onLine({ type: 'domain_end', domain: 'history', total_records: 1 }, 130);
  assert.equal(state.phase, 'streaming'); // materials is not done yet
  state.onLine({ type: 'domain_end', domain: 'materials', total_records: 0 }, 131);
  assert.equal(state.phase, 'aggregating'); // without any `aggregating` line (an older server)
  state.onLine({ type: 'aggregation', data: { domains: {} } }, 140);
  assert.equal(state.phase, 'streaming');
  state.finish(150);
  state.onState({ state: 'done', attempt: 0, connections: 1, since: null });
  assert.equal(state.phase, 'done');
  assert.ok(!logs().some((l) => l.includes('computing')));
});

test("the server's `aggregating` line is shown and logged once, whatever the domains' state", () => {
  const { state, logs } = started();
  state.running = true;
  state.onState({ state: 'streaming', attempt: 0, connections: 1, since: null });
  state.onLine({ type: 'domain_start', domain: 'history', columns: COLUMNS, total: null, total_batches: null }, 110);
  state.onLine({ type: 'aggregating', domains: ['history', 'materials'] }, 120);
  state.onLine({ type: 'aggregating', domains: ['history', 'materials'] }, 121); // after a resume
  assert.equal(state.phase, 'aggregating');
  assert.deepEqual(state.aggregating, ['history', 'materials']);
  assert.deepEqual(logs().filter((l) => l.includes('computing')), ['info: computing aggregations (history, materials)…']);
  state.onState({ state: 'reconnecting', attempt: 1, connections: 1, since: 'T', delayMs: 100, error: { code: 'network' } });
  assert.equal(state.phase, 'reconnecting'); // a dropped connection is said as such
});
