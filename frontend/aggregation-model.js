// @ts-check
/**
 * A job's aggregations as data for the page, from the stream's `aggregation`
 * line (or `GET api/trace/job/{id}/aggregation`, the same object): the bars of
 * each count aggregation's chart, with their geometry, and every number as a
 * table row. Pure (node tests); aggregations.js draws it.
 *
 * @module aggregation-model
 */

import { formatCount } from './progress.js';

/**
 * @typedef {{key: any[], count: number, sum?: any}} Group
 * @typedef {{groups: number, count: number, sum?: any}} OtherGroups
 * @typedef {{kind: 'count', by: string[], count: number, groups: Group[], other: OtherGroups|null, exact: boolean}} CountAggregate
 * @typedef {{kind: 'sum', column: string, by: string[], sum: any, count: number, groups: Group[], other: OtherGroups|null, exact: boolean}} SumAggregate
 * @typedef {{kind: 'min_max', column: string, min: any, max: any}} MinMaxAggregate
 * @typedef {{kind: 'distinct', column: string, count: number}} DistinctAggregate
 * @typedef {CountAggregate|SumAggregate|MinMaxAggregate|DistinctAggregate} Aggregate
 * @typedef {{domains: Record<string, {records: number, containers: number}>, aggregations?: Record<string, Record<string, Aggregate>>}} JobAggregation
 * @typedef {{label: string, value: number, width: number, other: boolean}} Bar
 * @typedef {{domain: string, name: string, label: string, value: string}} TableRow
 * @typedef {object} ChartModel one count aggregation's chart, laid out
 * @property {string} testId
 * @property {string} caption
 * @property {number} width
 * @property {number} height at least 1, so an empty chart is still a valid SVG
 * @property {PlacedBar[]} bars
 * @typedef {Bar & {y: number, textY: number, valueText: string}} PlacedBar a bar at its row
 */

export const CHART = { width: 360, labelWidth: 130, valueWidth: 64, barHeight: 16, gap: 4 };

/**
 * A group's key as a label: its columns' values joined; NULL and '' shown as such.
 * @param {any[]} key
 * @returns {string}
 */
export function keyLabel(key) {
  return key.map((v) => (v === null ? '(null)' : v === '' ? '(empty)' : String(v))).join(' · ');
}

/**
 * @param {any} v
 * @returns {string} a number grouped by thousands (at most 3 decimals), text as it is, null as —
 */
export function formatValue(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v !== 'number') return String(v);
  return Number.isInteger(v) ? formatCount(v) : v.toLocaleString('en-US', { maximumFractionDigits: 3 });
}

/**
 * The bars of a count aggregation's chart: its listed groups, then "other".
 * The longest bar is `width` wide; a bar of any rows is at least 1 wide.
 * @param {CountAggregate} agg
 * @param {number} width
 * @returns {Bar[]}
 */
export function chartBars(agg, width) {
  /** @type {{label: string, value: number, other: boolean}[]} */
  const bars = agg.groups.map((g) => ({ label: keyLabel(g.key), value: g.count, other: false }));
  if (agg.other && agg.other.count) {
    const n = agg.other.groups;
    bars.push({ label: `other (${formatCount(n)} group${n === 1 ? '' : 's'})`, value: agg.other.count, other: true });
  }
  const max = Math.max(1, ...bars.map((b) => b.value));
  return bars.map((b) => ({ ...b, width: b.value > 0 ? Math.max(1, Math.round((b.value / max) * width)) : 0 }));
}

/** A group-by column that holds a unit of measure: sums are only added up within one unit. */
export const UNIT_COLUMN = /^(uom|units?|unit_?of_?measure|measure_?unit)$/i;

/**
 * A sum's totals per unit, when it is grouped by a unit column and its groups
 * hold more than one unit (`g` and `ml` added up are no number at all).
 * @param {SumAggregate} agg
 * @returns {{unit: string, sum: number, count: number}[]|null} null: one total is right
 */
export function sumsByUnit(agg) {
  const u = agg.by.findIndex((c) => UNIT_COLUMN.test(c));
  if (u < 0) return null;
  /** @type {Map<string, {unit: string, sum: number, count: number}>} */
  const units = new Map();
  for (const g of agg.groups) {
    const unit = g.key[u] === null ? '(no unit)' : String(g.key[u]);
    const t = units.get(unit) ?? { unit, sum: 0, count: 0 };
    t.sum += typeof g.sum === 'number' ? g.sum : 0;
    t.count += g.count;
    units.set(unit, t);
  }
  return units.size > 1 || agg.other ? [...units.values()].sort((a, b) => b.sum - a.sum) : null;
}

/**
 * Every number of the aggregation, one table row each, in the line's order;
 * a sum's groups by their sum (largest first), per unit when grouped by one.
 * @param {JobAggregation} data
 * @returns {TableRow[]}
 */
export function aggregationRows(data) {
  /** @type {TableRow[]} */
  const rows = [];
  for (const [domain, t] of Object.entries(data.domains ?? {})) {
    rows.push({ domain, name: 'records', label: '', value: formatValue(t.records) });
    rows.push({ domain, name: 'containers', label: 'with records', value: formatValue(t.containers) });
  }
  for (const [domain, named] of Object.entries(data.aggregations ?? {})) {
    for (const [name, agg] of Object.entries(named)) {
      const row = (/** @type {string} */ label, /** @type {any} */ value) =>
        rows.push({ domain, name, label, value: formatValue(value) });
      if (agg.kind === 'min_max') {
        row(`min ${agg.column}`, agg.min);
        row(`max ${agg.column}`, agg.max);
      } else if (agg.kind === 'distinct') {
        row(`distinct ${agg.column}`, agg.count);
      } else {
        const sum = agg.kind === 'sum';
        const what = sum ? `sum ${agg.column}` : 'rows';
        const approx = agg.exact === false ? ' (approximate groups)' : '';
        const units = agg.kind === 'sum' ? sumsByUnit(agg) : null;
        if (units && agg.kind === 'sum') {
          const part = agg.other ? ', listed groups' : '';
          for (const t of units) row(`sum ${agg.column} in ${t.unit} (${formatCount(t.count)} rows${part})`, t.sum);
        } else if (sum) {
          row(`sum ${agg.column} (${formatCount(agg.count)} rows)`, agg.sum);
        }
        const groups = sum ? [...agg.groups].sort((a, b) => Number(b.sum ?? 0) - Number(a.sum ?? 0)) : agg.groups;
        for (const g of groups) row(`${what} · ${keyLabel(g.key)}${approx}`, sum ? g.sum : g.count);
        if (agg.other) {
          const o = agg.other;
          row(`${what} · other (${formatCount(o.groups)} groups)${approx}`, sum ? o.sum : o.count);
        }
      }
    }
  }
  return rows;
}

/**
 * How many named aggregations the data holds, over every domain.
 * @param {JobAggregation} data
 * @returns {number}
 */
export function aggregationCount(data) {
  return Object.values(data?.aggregations ?? {}).reduce((k, named) => k + Object.keys(named).length, 0);
}

/**
 * A count aggregation's chart: caption, size and the bars at their rows
 * (labels right-aligned before `CHART.labelWidth`, the value after the bar).
 * @param {string} domain
 * @param {string} name
 * @param {CountAggregate} agg
 * @returns {ChartModel}
 */
export function chartModel(domain, name, agg) {
  const { width, labelWidth, valueWidth, barHeight, gap } = CHART;
  const bars = chartBars(agg, width - labelWidth - valueWidth).map((b, i) => {
    const y = i * (barHeight + gap);
    return { ...b, y, textY: y + barHeight - 4, valueText: formatValue(b.value) };
  });
  return {
    testId: `agg-chart-${domain}-${name}`,
    caption: `${domain} · ${name}: rows by ${agg.by.join(', ')}${agg.exact === false ? ' (approximate)' : ''}`,
    width,
    height: Math.max(bars.length * (barHeight + gap), 1),
    bars,
  };
}
