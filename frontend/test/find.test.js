// Find in the loaded rows (find.js), a bounded slice at a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { BatchEncoder, ColumnStore } from '../columns.js';
import { findRow } from '../find.js';

const store = new ColumnStore(['CID', 'EVENT', 'QTY']);
const enc = new BatchEncoder(3);
store.append(enc.encode([['C1', 'TrackIn', 1], ['C1', 'Hold', null], ['C2', 'TrackOut', 25]]).batch);
store.append(enc.encode([['C3', 'hold', 7]]).batch);

test('finds case-insensitively in the columns searched, from a row on', () => {
  assert.deepEqual(findRow(store, [0, 1, 2], 'HOLD', 0, 100), { row: 1, next: 2 });
  assert.deepEqual(findRow(store, [0, 1, 2], 'hold', 2, 100), { row: 3, next: 4 });
  assert.deepEqual(findRow(store, [0], 'hold', 0, 100), { row: null, next: 4 });
  assert.deepEqual(findRow(store, [2], '25', 0, 100), { row: 2, next: 3 });
  assert.deepEqual(findRow(store, [1], 'null', 0, 100), { row: null, next: 4 }); // SQL NULL is no text
});

test('looks at no more rows than its budget', () => {
  assert.deepEqual(findRow(store, [0, 1], 'C3', 0, 2), { row: null, next: 2 });
  assert.deepEqual(findRow(store, [0, 1], 'C3', 2, 2), { row: 3, next: 4 });
});
