// The aggregations panel's data (aggregation-model.js): bars, chart layout, table rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHART, aggregationCount, aggregationRows, chartBars, chartModel, formatValue, keyLabel } from '../aggregation-model.js';

/** @returns {any} a count aggregation as the service sends it */
function events() {
  return {
    kind: 'count',
    by: ['EVENTNAME'],
    count: 130,
    groups: [
      { key: ['TrackIn'], count: 100 },
      { key: ['Hold'], count: 20 },
      { key: [null], count: 3 },
    ],
    other: { groups: 2, count: 7 },
    exact: true,
  };
}

test('bars: the listed groups then other, the longest as wide as the chart', () => {
  const bars = chartBars(events(), 200);
  assert.deepEqual(
    bars.map((b) => [b.label, b.value, b.width, b.other]),
    [
      ['TrackIn', 100, 200, false],
      ['Hold', 20, 40, false],
      ['(null)', 3, 6, false],
      ['other (2 groups)', 7, 14, true],
    ],
  );
});

test('bars: no other bucket when every group is listed; a tiny group stays visible', () => {
  const agg = events();
  agg.other = null;
  agg.groups = [{ key: ['a', ''], count: 100000 }, { key: ['b', 'x'], count: 1 }];
  const bars = chartBars(agg, 100);
  assert.deepEqual(bars.map((b) => [b.label, b.width]), [['a · (empty)', 100], ['b · x', 1]]);
  assert.deepEqual(chartBars({ ...agg, groups: [] }, 100), []);
});

test('labels and values are text, numbers grouped', () => {
  assert.equal(keyLabel(['WC-SAW', 3, null]), 'WC-SAW · 3 · (null)');
  assert.equal(formatValue(1234567), '1,234,567');
  assert.equal(formatValue(3718148.1760001), '3,718,148.176');
  assert.equal(formatValue('2025-01-01T00:59:07'), '2025-01-01T00:59:07');
  assert.equal(formatValue(null), '—');
});

test('table rows: totals, then every number of every kind', () => {
  const rows = aggregationRows({
    domains: { history: { records: 130, containers: 12 } },
    aggregations: {
      history: {
        events: events(),
        span: { kind: 'min_max', column: 'TXNDATE', min: '2025-01-01', max: '2025-02-01' },
        qty: { kind: 'sum', column: 'QTY', by: ['SPEC'], sum: 10.5, count: 4, groups: [{ key: ['A'], count: 4, sum: 10.5 }], other: null, exact: false },
        lots: { kind: 'distinct', column: 'LOT', count: 9 },
      },
    },
  });
  assert.deepEqual(
    rows.map((r) => [r.domain, r.name, r.label, r.value]),
    [
      ['history', 'records', '', '130'],
      ['history', 'containers', 'with records', '12'],
      ['history', 'events', 'rows · TrackIn', '100'],
      ['history', 'events', 'rows · Hold', '20'],
      ['history', 'events', 'rows · (null)', '3'],
      ['history', 'events', 'rows · other (2 groups)', '7'],
      ['history', 'span', 'min TXNDATE', '2025-01-01'],
      ['history', 'span', 'max TXNDATE', '2025-02-01'],
      ['history', 'qty', 'sum QTY (4 rows)', '10.5'],
      ['history', 'qty', 'sum QTY · A (approximate groups)', '10.5'],
      ['history', 'lots', 'distinct LOT', '9'],
    ],
  );
  assert.deepEqual(aggregationRows({ domains: {} }), [], 'an older service: totals only');
});

test('chart model: caption, size, and each bar at its row with its value as text', () => {
  const { width, labelWidth, valueWidth, barHeight, gap } = CHART;
  const chart = chartModel('history', 'events', events());
  assert.equal(chart.testId, 'agg-chart-history-events');
  assert.equal(chart.caption, 'history · events: rows by EVENTNAME');
  assert.equal(chart.width, width);
  assert.equal(chart.height, 4 * (barHeight + gap));
  assert.deepEqual(
    chart.bars.map((b) => [b.label, b.y, b.textY, b.valueText]),
    [
      ['TrackIn', 0, barHeight - 4, '100'],
      ['Hold', barHeight + gap, 2 * barHeight + gap - 4, '20'],
      ['(null)', 2 * (barHeight + gap), 3 * barHeight + 2 * gap - 4, '3'],
      ['other (2 groups)', 3 * (barHeight + gap), 4 * barHeight + 3 * gap - 4, '7'],
    ],
  );
  assert.equal(chart.bars[0].width, width - labelWidth - valueWidth, 'the longest bar fills the bar area');
});

test('chart model: approximate groups say so; an empty chart is 1 high', () => {
  const chart = chartModel('history', 'wc', { ...events(), by: ['WORKCENTERNAME', 'SPEC'], exact: false, groups: [], other: null });
  assert.equal(chart.caption, 'history · wc: rows by WORKCENTERNAME, SPEC (approximate)');
  assert.deepEqual(chart.bars, []);
  assert.equal(chart.height, 1);
});

test('aggregation count: every named aggregation of every domain', () => {
  const data = {
    domains: {},
    aggregations: { history: { events: events(), wc: events() }, materials: { lots: { kind: 'distinct', column: 'LOT', count: 9 } } },
  };
  assert.equal(aggregationCount(/** @type {any} */ (data)), 3);
  assert.equal(aggregationCount({ domains: {} }), 0);
});

test('a sum grouped by a unit is totalled per unit, never across units; groups by sum', async () => {
  const { aggregationRows: rowsOf, sumsByUnit } = await import('../aggregation-model.js');
  /** @type {any} */
  const agg = {
    kind: 'sum', column: 'QTYCONSUMED', by: ['MATERIALPARTNAME', 'UOM'], sum: 1510, count: 6, exact: true, other: null,
    groups: [
      { key: ['WIRE', 'm'], count: 3, sum: 10 },
      { key: ['EPOXY', 'g'], count: 2, sum: 1000 },
      { key: ['GLUE', 'g'], count: 1, sum: 500 },
    ],
  };
  assert.deepEqual(sumsByUnit(agg), [{ unit: 'g', sum: 1500, count: 3 }, { unit: 'm', sum: 10, count: 3 }]);
  const rows = rowsOf({ domains: {}, aggregations: { materials: { consumed: agg } } }).map((r) => [r.label, r.value]);
  assert.deepEqual(rows, [
    ['sum QTYCONSUMED in g (3 rows)', '1,500'],
    ['sum QTYCONSUMED in m (3 rows)', '10'],
    ['sum QTYCONSUMED · EPOXY · g', '1,000'],
    ['sum QTYCONSUMED · GLUE · g', '500'],
    ['sum QTYCONSUMED · WIRE · m', '10'],
  ]);
  assert.equal(sumsByUnit({ ...agg, groups: agg.groups.slice(1) }), null); // one unit: one total
  assert.equal(sumsByUnit({ ...agg, by: ['MATERIALPARTNAME'] }), null); // no unit column
});
