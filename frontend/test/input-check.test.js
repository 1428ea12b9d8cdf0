// Checks of the CID list and the pick size as they are typed (input-check.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { charKinds, checkCids, checkPickSize, maxCidsOf } from '../input-check.js';

const SAMPLES = ['C000123', 'C004567', 'C110000'];

test("a key's kinds of character: digits, lower, upper, anything else as itself", () => {
  assert.deepEqual([...charKinds('CNT-00a1')], ['A', '-', '9', 'a']);
});

test('hex keys of any digit/letter mix look like hex keys', () => {
  const hex = ['81e6d6c8e14aa460', '185bab635b09b845', '72c39a28df2eb3a1'];
  assert.equal(checkCids(['abd5a1ae70472ec8', '0000000000000000'], { samples: hex }).unlike, 0);
  assert.equal(checkCids(['ABD5A1AE70472EC8', 'abd5a1ae70472ec', 'hello'], { samples: hex }).unlike, 3);
});

test('real-looking CIDs pass; pasted garbage is named, with examples', () => {
  assert.deepEqual(checkCids(['C000001', 'C999999'], { max: 10, samples: SAMPLES }).level, 'ok');
  const garbage = checkCids('hello world!!! <script>'.split(' '), { max: 10, samples: SAMPLES });
  assert.equal(garbage.unlike, 3);
  assert.equal(garbage.level, 'warn');
  assert.match(garbage.text, /none look like container IDs \("hello", "world!!!", "<script>"\); the job may find no records/);
  const some = checkCids(['C000001', 'x'], { samples: SAMPLES });
  assert.equal(some.text, '1 does not look like container IDs ("x")');
});

test('without samples only what no key holds is flagged', () => {
  assert.equal(checkCids(['anything-1', 'ABC'], {}).unlike, 0);
  assert.equal(checkCids(['<script>', 'a"b'], {}).unlike, 2);
});

test('over the limit is an error before the job is made', () => {
  const c = checkCids(['C000001', 'C000002', 'C000003'], { max: 2, samples: SAMPLES });
  assert.equal(c.tooMany, true);
  assert.equal(c.level, 'error');
  assert.match(c.text, /over the service's limit of 2/);
  assert.equal(checkCids(['C000001'], { max: null }).tooMany, false);
});

test('the pick size is a whole number within the limit', () => {
  assert.deepEqual(checkPickSize('1000', 120000), { n: 1000, error: '' });
  assert.match(checkPickSize('200000', 120000).error, /At most 120,000/);
  assert.match(checkPickSize('', 120000).error, /whole number/);
  assert.match(checkPickSize('2.5', null).error, /whole number/);
  assert.deepEqual(checkPickSize('500000', null), { n: 500000, error: '' });
});

test("the CID limit is read from the OpenAPI document's demo pick", () => {
  const doc = { paths: { '/api/demo/cids': { get: { parameters: [{ name: 'n', schema: { type: 'integer', maximum: 120000 } }] } } } };
  assert.equal(maxCidsOf(doc), 120000);
  assert.equal(maxCidsOf({}), null);
});
