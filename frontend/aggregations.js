// @ts-check
/**
 * The aggregations panel: a small horizontal bar chart per count aggregation,
 * in plain SVG, and every number in a table. What to draw comes from
 * aggregation-model.js (pure); this module only builds the elements. Values are
 * set as text, never as markup: they come from the database.
 *
 * @module aggregations
 */

import { CHART, aggregationRows, chartModel } from './aggregation-model.js';

/** @typedef {import('./aggregation-model.js').JobAggregation} JobAggregation */
/** @typedef {import('./aggregation-model.js').CountAggregate} CountAggregate */

const SVG = 'http://www.w3.org/2000/svg';

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
  const { labelWidth, barHeight } = CHART;
  const chart = chartModel(domain, name, agg);
  const card = document.createElement('figure');
  card.className = 'agg-card';
  card.dataset.testid = chart.testId;
  const caption = document.createElement('figcaption');
  caption.textContent = chart.caption;
  const svg = svgEl('svg', {
    viewBox: `0 0 ${chart.width} ${chart.height}`,
    width: chart.width,
    height: chart.height,
    role: 'img',
    'aria-label': chart.caption,
  });
  for (const b of chart.bars) {
    const g = svgEl('g', { class: b.other ? 'agg-bar other' : 'agg-bar' });
    const label = svgEl('text', { x: labelWidth - 6, y: b.textY, 'text-anchor': 'end' }, b.label);
    label.appendChild(svgEl('title', {}, b.label));
    const rect = svgEl('rect', {
      x: labelWidth,
      y: b.y,
      width: b.width,
      height: barHeight,
      rx: 2,
      'data-label': b.label,
      'data-value': b.value,
    });
    const value = svgEl('text', { x: labelWidth + b.width + 4, y: b.textY }, b.valueText);
    g.append(label, rect, value);
    svg.appendChild(g);
  }
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
  // A scrolling box the keyboard can reach and a screen reader can name.
  scroll.tabIndex = 0;
  scroll.setAttribute('role', 'region');
  scroll.setAttribute('aria-label', 'Aggregations table');
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
