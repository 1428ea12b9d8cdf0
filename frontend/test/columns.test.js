import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchEncoder, ColumnStore } from '../columns.js';

/** Encode batches, send them through structuredClone with transfer (as postMessage does). */
function roundTrip(columns, batches) {
  const enc = new BatchEncoder(columns.length);
  const store = new ColumnStore(columns);
  const kinds = [];
  for (const rows of batches) {
    const { batch, transfer } = enc.encode(rows, columns);
    kinds.push(batch.cols.map((c) => c.k).join(','));
    store.append(structuredClone(batch, { transfer }));
  }
  return { store, kinds };
}

test('rows survive encoding, transfer and lookup exactly', () => {
  const columns = ['CID', 'SEQ', 'EVENT', 'QTY', 'FLAG', 'NOTE'];
  const rows = [];
  for (let i = 0; i < 1234; i++) {
    rows.push([
      `C${Math.floor(i / 10)}`,
      i,
      ['in', 'out', '王', '🏭'][i % 4],
      i % 5 === 0 ? null : i * 0.5,
      i % 3 === 0,
      i % 7 === 0 ? null : `n${i}`,
    ]);
  }
  const batches = [rows.slice(0, 500), rows.slice(500, 1000), rows.slice(1000)];
  const { store, kinds } = roundTrip(columns, batches);
  assert.equal(store.length, rows.length);
  assert.equal(kinds[0], 'dict,num,dict,num,dict,dict');
  for (let r = 0; r < rows.length; r++) {
    for (let c = 0; c < columns.length; c++) assert.deepEqual(store.get(r, c), rows[r][c], `row ${r} col ${c}`);
  }
  assert.deepEqual(store.column('CID'), rows.map((r) => r[0]));
  assert.throws(() => store.get(rows.length, 0), RangeError);
});

test('object rows are read by column name', () => {
  const { store } = roundTrip(['A', 'B'], [[{ A: 'x', B: 1 }, { B: 2, A: 'y' }, { A: 'z' }]]);
  assert.deepEqual(store.column('A'), ['x', 'y', 'z']);
  assert.deepEqual(store.column('B'), [1, 2, null]);
});

test('a mostly distinct column stops being dictionary-encoded', () => {
  const batches = [];
  for (let b = 0; b < 10; b++) {
    batches.push(Array.from({ length: 5000 }, (_, i) => [`t${b * 5000 + i}`, `cid${(b * 5000 + i) % 7}`]));
  }
  const { store, kinds } = roundTrip(['TS', 'CID'], batches);
  assert.equal(kinds[0], 'dict,dict');
  assert.equal(kinds.at(-1), 'raw,dict', 'timestamps go raw, CIDs stay a dictionary');
  assert.equal(store.length, 50000);
  assert.equal(store.get(0, 0), 't0');
  assert.equal(store.get(49999, 0), 't49999');
  assert.equal(store.get(49999, 1), `cid${49999 % 7}`);
});

test('empty batches are harmless; column count is checked', () => {
  const enc = new BatchEncoder(2);
  const store = new ColumnStore(['a', 'b']);
  store.append(enc.encode([]).batch);
  assert.equal(store.length, 0);
  assert.throws(() => store.append(new BatchEncoder(3).encode([[1, 2, 3]]).batch), /columns/);
});
