import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DomainProgress, RATE_WINDOW_MS, formatDuration, formatCount } from '../progress.js';

test('a fresh domain shows dashes and is waiting', () => {
  const p = new DomainProgress();
  assert.deepEqual(p.text(0), { fraction: 0, count: '0 / —', rate: '— rec/s', eta: 'ETA —', status: 'waiting' });
});

test('begin tells a first domain_start, a late total and a resume apart', () => {
  const p = new DomainProgress();
  assert.equal(p.begin(null), 'first');
  assert.equal(p.status, 'streaming');
  assert.equal(p.total, null);
  assert.equal(p.begin(1000), 'counted', 'the total arrives in a repeated domain_start');
  assert.equal(p.total, 1000);
  assert.equal(p.begin(1000), 'continued', 'after a resume');
  assert.equal(p.begin(undefined), 'continued');
  assert.equal(p.total, 1000, 'a repeat without total keeps the known one');
  const q = new DomainProgress();
  assert.equal(q.begin(50), 'first');
  assert.equal(q.total, 50);
});

test('count, bar and rate over the recent window; ETA from the rate', () => {
  const p = new DomainProgress();
  p.begin(10_000);
  p.addRecords(1000, 1000);
  p.addRecords(1000, 2000); // 1000 records per second
  const t = p.text(2000);
  assert.equal(t.count, '2,000 / 10,000');
  assert.equal(t.fraction, 0.2);
  assert.equal(p.rate(2000), 1000);
  assert.equal(t.rate, '1,000 rec/s');
  assert.equal(t.eta, 'ETA 8 s');
  assert.equal(t.status, 'streaming');
  assert.equal(p.startedAt, 1000);
});

test('a stalled stream shows its rate falling, not frozen', () => {
  const p = new DomainProgress();
  p.begin(10_000);
  p.addRecords(1000, 0);
  p.addRecords(1000, 1000);
  assert.equal(p.rate(1000), 1000);
  assert.equal(p.rate(2000), 500, 'no records for a second: half the rate');
});

test('old samples leave the rate window', () => {
  const p = new DomainProgress();
  p.begin(null);
  p.addRecords(100, 0); // slow start
  for (let t = 1000; t <= 10_000; t += 1000) p.addRecords(5000, t);
  assert.ok(p.samples.every((s) => 10_000 - s.t <= RATE_WINDOW_MS));
  assert.equal(p.rate(10_000), 5000);
  assert.equal(p.text(10_000).eta, 'ETA —', 'no total, no ETA');
});

test('end: done with the whole-domain rate, or a mismatch with the server count', () => {
  const p = new DomainProgress();
  p.begin(300);
  p.addRecords(100, 1000);
  p.addRecords(200, 3000);
  assert.equal(p.end(4000, 300), true);
  assert.equal(p.end(5000, 999), false, 'a second end changes nothing');
  assert.equal(p.endedAt, 4000);
  const t = p.text(9000);
  assert.equal(t.status, 'done');
  assert.equal(t.fraction, 1);
  assert.equal(t.eta, 'took 3.0 s');
  assert.equal(p.rate(9000), 100);

  const q = new DomainProgress();
  q.begin(null);
  q.addRecords(10, 0);
  q.end(1000, 12);
  assert.equal(q.mismatch, true);
  assert.equal(q.text(1000).status, 'mismatch');
  assert.equal(q.text(1000).fraction, 1, 'done without a total: a full bar');
});

test('stop marks an unfinished domain stopped and leaves a done one alone', () => {
  const a = new DomainProgress();
  a.begin(10);
  a.stop();
  assert.equal(a.status, 'stopped');
  const b = new DomainProgress();
  b.begin(10);
  b.end(1);
  b.stop();
  assert.equal(b.status, 'done');
});

test('restart counts the rows of a domain from zero again', () => {
  const p = new DomainProgress();
  p.begin(100);
  p.addRecords(40, 0);
  p.restart();
  assert.equal(p.received, 0);
  assert.deepEqual(p.samples, []);
  assert.equal(p.total, 100);
});

test('formatDuration and formatCount', () => {
  assert.equal(formatDuration(0.2), '1 s');
  assert.equal(formatDuration(59), '59 s');
  assert.equal(formatDuration(187), '3 min 7 s');
  assert.equal(formatDuration(Infinity), '—');
  assert.equal(formatCount(1234567), '1,234,567');
});

test('a tiny job shows no rate: a few records in milliseconds are no measurement', async () => {
  const { DomainProgress: P, MIN_RATE_SPAN_MS } = await import('../progress.js');
  const p = new P();
  p.begin(12);
  p.addRecords(12, 1000);
  p.end(1012);
  const t = p.text(2000);
  assert.equal(t.rate, '— rec/s');
  assert.equal(t.eta, 'took < 0.1 s');
  const q = new P();
  q.begin(100);
  q.addRecords(50, 1000);
  q.addRecords(50, 1000 + MIN_RATE_SPAN_MS);
  q.end(1000 + MIN_RATE_SPAN_MS);
  assert.equal(q.text(5000).rate, '100 rec/s');
  assert.equal(q.text(5000).eta, 'took 1.0 s');
});

test('while reconnecting neither rate nor ETA is shown; a done domain keeps its figures', async () => {
  const { DomainProgress: P } = await import('../progress.js');
  const p = new P();
  p.begin(1000);
  p.addRecords(100, 0);
  p.addRecords(200, 2000);
  assert.notEqual(p.text(2000).rate, '— rec/s');
  assert.match(p.text(2000).eta, /^ETA \d/);
  assert.equal(p.text(2000, true).rate, '— rec/s');
  assert.equal(p.text(2000, true).eta, 'ETA —');
  p.end(2000);
  assert.match(p.text(3000, true).eta, /^took/);
});
