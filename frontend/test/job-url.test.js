// The job in the address and the kept column choice (job-url.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { jobOf, parseHidden, shownIndexes, withJob } from '../job-url.js';

test('the address names the job, and only a plausible id', () => {
  assert.equal(jobOf('http://h/?job=abc_12-Z'), 'abc_12-Z');
  assert.equal(jobOf('http://h/'), null);
  assert.equal(jobOf('http://h/?job=%3Cscript%3E'), null);
  assert.equal(withJob('http://h/base/?x=1', 'J1'), 'http://h/base/?x=1&job=J1');
  assert.equal(withJob('http://h/?job=J1', null), 'http://h/');
});

test('the kept column choice survives anything stored', () => {
  assert.deepEqual(parseHidden('{"history": ["QTY", 3]}'), { history: ['QTY'] });
  assert.deepEqual(parseHidden('not json'), {});
  assert.deepEqual(parseHidden(null), {});
  assert.deepEqual(parseHidden('[1]'), {});
});

test('shown columns keep wire order; hiding all shows all', () => {
  assert.deepEqual(shownIndexes(['A', 'B', 'C'], ['B']), [0, 2]);
  assert.deepEqual(shownIndexes(['A', 'B'], ['A', 'B']), [0, 1]);
});
