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
  assert.equal(kinds.at(-1), 'str,dict', 'timestamps go packed, CIDs stay a dictionary');
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

test('distinct strings with nulls, emoji and empty strings pack exactly; mixed types go raw', () => {
  const batches = [];
  const want = [];
  for (let b = 0; b < 6; b++) {
    const rows = [];
    for (let i = 0; i < 5000; i++) {
      const k = b * 5000 + i;
      const s = k % 11 === 0 ? null : k % 13 === 0 ? '' : `🏭${k}é\u2028`;
      const mixed = b < 4 ? `m${k}` : k % 2 ? k : `m${k}`;
      rows.push([s, mixed]);
      want.push([s, mixed]);
    }
    batches.push(rows);
  }
  const { store, kinds } = roundTrip(['S', 'M'], batches);
  assert.deepEqual(kinds, ['dict,dict', 'dict,dict', 'dict,dict', 'dict,dict', 'str,raw', 'str,raw']);
  for (let r = 0; r < want.length; r++) {
    assert.equal(store.get(r, 0), want[r][0]);
    assert.equal(store.get(r, 1), want[r][1]);
  }
});

test('dictionary codes take 1, 2 or 4 bytes as the dictionary grows', () => {
  const enc = new BatchEncoder(1);
  const store = new ColumnStore(['CID']);
  const widths = [];
  const want = [];
  // 200 distinct values, then 70,000 (past 2^16), repeated 4 times each
  for (const distinct of [200, 70_000]) {
    const rows = [];
    for (let i = 0; i < distinct * 4; i++) rows.push([`c${distinct}-${i % distinct}`]);
    const { batch, transfer } = enc.encode(rows);
    widths.push(batch.cols[0].c.BYTES_PER_ELEMENT);
    store.append(structuredClone(batch, { transfer }));
    for (const r of rows) want.push(r[0]);
  }
  assert.deepEqual(widths, [1, 4]);
  assert.deepEqual(store.column(0), want);
});
