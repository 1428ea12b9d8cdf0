// @ts-check
/**
 * A job's aggregations, from the stream's `aggregation` line (or
 * `GET api/trace/job/{id}/aggregation`, the same object): a small horizontal
 * bar chart per count aggregation, in plain SVG, and every number in a table.
 *
 * `chartBars`, `keyLabel`, `formatValue` and `aggregationRows` are pure (node
 * tests); `showAggregations` builds the elements. Values are set as text, never
 * as markup: they come from the database.
 *
 * @module aggregations
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
 */

const SVG = 'http://www.w3.org/2000/svg';
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

/**
 * Every number of the aggregation, one table row each, in the line's order.
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
        if (sum) row(`sum ${agg.column} (${formatCount(agg.count)} rows)`, agg.sum);
        for (const g of agg.groups) row(`${what} · ${keyLabel(g.key)}${approx}`, sum ? g.sum : g.count);
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
 * @param {string} tag
 * @param {Record<string, string|number>} attrs
 * @param {string} [text]
 * @returns {SVGElement}
 */
function svgEl(tag, attrs, text) {
  const e = /** @type {SVGElement} */ (document.createElementNS(SVG, tag));
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * One count aggregation's chart: a labelled horizontal bar per group.
 * @param {string} domain
 * @param {string} name
 * @param {CountAggregate} agg
 * @returns {HTMLElement}
 */
function chartCard(domain, name, agg) {
  const { width, labelWidth, valueWidth, barHeight, gap } = CHART;
  const barsWidth = width - labelWidth - valueWidth;
  const bars = chartBars(agg, barsWidth);
  const card = document.createElement('figure');
  card.className = 'agg-card';
  card.dataset.testid = `agg-chart-${domain}-${name}`;
  const caption = document.createElement('figcaption');
  caption.textContent = `${domain} · ${name}: rows by ${agg.by.join(', ')}${agg.exact === false ? ' (approximate)' : ''}`;
  const height = bars.length * (barHeight + gap);
  const svg = svgEl('svg', {
    viewBox: `0 0 ${width} ${Math.max(height, 1)}`,
    width,
    height: Math.max(height, 1),
    role: 'img',
    'aria-label': caption.textContent,
  });
  bars.forEach((b, i) => {
    const y = i * (barHeight + gap);
    const g = svgEl('g', { class: b.other ? 'agg-bar other' : 'agg-bar' });
    const label = svgEl('text', { x: labelWidth - 6, y: y + barHeight - 4, 'text-anchor': 'end' }, b.label);
    label.appendChild(svgEl('title', {}, b.label));
    const rect = svgEl('rect', {
      x: labelWidth,
      y,
      width: b.width,
      height: barHeight,
      rx: 2,
      'data-label': b.label,
      'data-value': b.value,
    });
    const value = svgEl('text', { x: labelWidth + b.width + 4, y: y + barHeight - 4 }, formatValue(b.value));
    g.append(label, rect, value);
    svg.appendChild(g);
  });
  card.append(caption, svg);
  return card;
}

/**
 * Show `data` in `host` (replacing what it held): the charts, then the table.
 * @param {HTMLElement} host
 * @param {JobAggregation} data
 */
export function showAggregations(host, data) {
  const charts = document.createElement('div');
  charts.className = 'agg-charts';
  for (const [domain, named] of Object.entries(data.aggregations ?? {})) {
    for (const [name, agg] of Object.entries(named)) {
      if (agg.kind === 'count') charts.append(chartCard(domain, name, agg));
    }
  }
  const table = document.createElement('table');
  table.className = 'agg-table';
  table.dataset.testid = 'agg-table';
  const head = table.createTHead().insertRow();
  for (const h of ['domain', 'aggregation', 'of', 'value']) {
    const th = document.createElement('th');
    th.textContent = h;
    head.append(th);
  }
  const body = table.createTBody();
  for (const r of aggregationRows(data)) {
    const tr = body.insertRow();
    tr.dataset.name = `${r.domain}.${r.name}`;
    for (const text of [r.domain, r.name, r.label, r.value]) tr.insertCell().textContent = text;
  }
  const scroll = document.createElement('div');
  scroll.className = 'agg-table-wrap';
  scroll.append(table);
  const title = document.createElement('h3');
  title.textContent = 'Aggregations';
  host.replaceChildren(title, charts, scroll);
  host.hidden = false;
}

/**
 * Empty `host` (a new job).
 * @param {HTMLElement} host
 */
export function clearAggregations(host) {
  host.replaceChildren();
  host.hidden = true;
}
