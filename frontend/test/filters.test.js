// The page's filters (filters.js): catalog -> fields, typed values -> the job's `where`.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { buildWhere, describeWhere, fieldKey, filterFields, splitValues, suggestedValues } from '../filters.js';

const HISTORY = {
  name: 'history',
  columns: ['CONTAINERID', 'TXNDATE', 'EVENTNAME', 'QTY'],
  filters: {
    EVENTNAME: { ops: ['in'], type: 'text' },
    QTY: { ops: ['in', 'range'], type: 'number' },
    TXNDATE: { ops: ['range'], type: 'timestamp' },
  },
};
const MATERIALS = { name: 'materials', columns: ['CONTAINERID', 'UOM'], filters: { UOM: { ops: ['in'], type: 'text' } } };
const FIELDS = [...filterFields(HISTORY), ...filterFields(MATERIALS)];

test('one field per filterable column, in the domain column order, with its kinds', () => {
  assert.deepEqual(
    filterFields(HISTORY).map((f) => [fieldKey(f), f.list, f.range, f.type]),
    [
      ['history.TXNDATE', false, true, 'timestamp'],
      ['history.EVENTNAME', true, false, 'text'],
      ['history.QTY', true, true, 'number'],
    ],
  );
  assert.deepEqual(filterFields({ name: 'x', columns: ['A'] }), []);
});

test('value lists split on commas and lines, blanks dropped', () => {
  assert.deepEqual(splitValues(' Hold, Release\n\nTrackIn ,'), ['Hold', 'Release', 'TrackIn']);
});

test('empty controls make no filter at all', () => {
  assert.deepEqual(buildWhere(FIELDS, {}, ['history', 'materials']), { where: null, errors: [] });
  assert.deepEqual(buildWhere(FIELDS, { 'history.EVENTNAME': { list: ' , ' } }, ['history']), { where: null, errors: [] });
});

test('lists, ranges and numbers as the wire wants them; domains not in the job left out', () => {
  const { where, errors } = buildWhere(
    FIELDS,
    {
      'history.EVENTNAME': { list: 'Hold, Release' },
      'history.TXNDATE': { from: '2025-01-20T00:00', to: '' },
      'history.QTY': { from: '1.5', to: '10' },
      'materials.UOM': { list: 'g' },
    },
    ['history'],
  );
  assert.deepEqual(errors, []);
  assert.deepEqual(where, {
    history: { TXNDATE: { from: '2025-01-20T00:00' }, EVENTNAME: ['Hold', 'Release'], QTY: { from: 1.5, to: 10 } },
  });
  assert.deepEqual(buildWhere(FIELDS, { 'history.QTY': { list: '3, 4' } }, ['history']).where, { history: { QTY: [3, 4] } });
});

test('bad input is named, never sent', () => {
  const errors = (/** @type {any} */ inputs) => buildWhere(FIELDS, inputs, ['history']).errors;
  assert.match(errors({ 'history.QTY': { list: 'three' } })[0], /history\.QTY: "three" is not a number/);
  assert.match(errors({ 'history.QTY': { list: '3', from: '1' } })[0], /either values or a range/);
  assert.match(errors({ 'history.QTY': { from: '5', to: '5' } })[0], /"from" must be before "to"/);
  assert.match(errors({ 'history.TXNDATE': { from: '2025-02-01', to: '2025-01-01' } })[0], /before/);
  const many = Array.from({ length: 1001 }, (_, i) => `E${i}`).join(',');
  assert.match(errors({ 'history.EVENTNAME': { list: many } })[0], /at most 1000 values/);
});

test('a where reads as one line', () => {
  assert.equal(describeWhere(null), 'none');
  assert.equal(
    describeWhere({ history: { EVENTNAME: ['Hold', 'Release'], TXNDATE: { from: '2025-01-01T00:00:00' } }, materials: { QTY: { to: 3 } } }),
    'history: EVENTNAME in Hold, Release; TXNDATE from 2025-01-01T00:00:00 · materials: QTY to 3',
  );
});

test("values are suggested from a job's aggregations by that one column", () => {
  const data = {
    domains: {},
    aggregations: {
      history: {
        events: { kind: 'count', by: ['EVENTNAME'], groups: [{ key: ['TrackIn'], count: 3 }, { key: [null], count: 1 }, { key: ['Hold'], count: 1 }] },
        pairs: { kind: 'count', by: ['EVENTNAME', 'SPEC'], groups: [{ key: ['Other', 'x'], count: 1 }] },
      },
    },
  };
  assert.deepEqual(suggestedValues(data, 'history', 'EVENTNAME'), ['Hold', 'TrackIn']);
  assert.deepEqual(suggestedValues(data, 'materials', 'UOM'), []);
  assert.deepEqual(suggestedValues(null, 'history', 'EVENTNAME'), []);
});
