// @ts-check
/**
 * The Filters box of the query panel: one labelled control per filterable
 * column of each domain (`GET api/domains` lists them): a value list for `in`
 * columns, from/to for ranges. filters.js turns what they hold into the job's
 * `where`. Distinct values are suggested (a datalist) from the last job's
 * count aggregations by that column: already computed, so free; otherwise
 * the user types values.
 *
 * @module filter-panel
 */

import { buildWhere, fieldKey, filterFields, suggestedValues } from './filters.js';

/** @typedef {import('./filters.js').FilterField} FilterField */
/** @typedef {import('./filters.js').DomainInfo} DomainInfo */

export class FilterPanel {
  /** @param {HTMLElement} host where the controls go */
  constructor(host) {
    this.host = host;
    /** @type {FilterField[]} */
    this.fields = [];
    /** @private @type {Map<string, {list?: HTMLInputElement, from?: HTMLInputElement, to?: HTMLInputElement, options?: HTMLDataListElement}>} */
    this.inputs = new Map();
  }

  /** @param {DomainInfo[]} catalog */
  show(catalog) {
    // The catalog is loaded again after a new API key: what was typed stays.
    /** @type {Map<string, string>} */
    const typed = new Map();
    for (const i of this.inputs.values()) {
      for (const input of [i.list, i.from, i.to]) if (input?.value) typed.set(input.id, input.value);
    }
    this.fields = [];
    this.inputs.clear();
    const groups = [];
    for (const domain of catalog) {
      const fields = filterFields(domain);
      if (!fields.length) continue;
      this.fields.push(...fields);
      const group = document.createElement('fieldset');
      group.className = 'filter-domain';
      group.dataset.domain = domain.name;
      const legend = document.createElement('legend');
      legend.textContent = domain.name;
      group.append(legend, ...fields.map((f) => this.field(f)));
      groups.push(group);
    }
    if (!groups.length) {
      const none = document.createElement('p');
      none.className = 'muted';
      none.textContent = 'No domain declares filterable columns.';
      groups.push(none);
    }
    this.host.replaceChildren(...groups);
    for (const i of this.inputs.values()) {
      for (const input of [i.list, i.from, i.to]) if (input) input.value = typed.get(input.id) ?? '';
    }
  }

  /**
   * @param {string[]} domains the job's domains
   * @returns {ReturnType<typeof buildWhere>}
   */
  where(domains) {
    /** @type {Record<string, import('./filters.js').FieldInput>} */
    const values = {};
    for (const [key, i] of this.inputs) {
      values[key] = { list: i.list?.value, from: i.from?.value, to: i.to?.value };
    }
    return buildWhere(this.fields, values, domains);
  }

  /** @returns {number} how many filters hold something (shown on the box's summary) */
  activeCount() {
    let n = 0;
    for (const i of this.inputs.values()) if (i.list?.value.trim() || i.from?.value || i.to?.value) n += 1;
    return n;
  }

  /**
   * Offer the values a job's aggregations found, for list columns.
   * @param {any} aggregation the stream's `aggregation` data
   */
  suggest(aggregation) {
    for (const f of this.fields) {
      const options = this.inputs.get(fieldKey(f))?.options;
      if (!options) continue;
      const values = suggestedValues(aggregation, f.domain, f.column);
      if (!values.length) continue;
      options.replaceChildren(
        ...values.map((v) => {
          const o = document.createElement('option');
          o.value = v;
          return o;
        }),
      );
    }
  }

  /**
   * @private
   * @param {FilterField} f
   * @returns {HTMLElement}
   */
  field(f) {
    const key = fieldKey(f);
    const id = `filter-${f.domain}-${f.column}`;
    const row = document.createElement('div');
    row.className = 'filter';
    const label = document.createElement('label');
    label.className = 'filter-name';
    label.textContent = f.column;
    row.append(label);
    /** @type {{list?: HTMLInputElement, from?: HTMLInputElement, to?: HTMLInputElement, options?: HTMLDataListElement}} */
    const inputs = {};
    if (f.list) {
      const list = input(id, 'text'); // numbers too: a list of them
      list.placeholder = f.type === 'number' ? 'numbers, comma-separated' : 'values, comma-separated';
      const options = document.createElement('datalist');
      options.id = `${id}-options`;
      list.setAttribute('list', options.id);
      label.htmlFor = id;
      row.append(list, options);
      Object.assign(inputs, { list, options });
    }
    if (f.range) {
      const kind = f.type === 'number' ? 'number' : 'text';
      const unit = f.type.startsWith('timestamp') ? ' (UTC, e.g. 2025-01-31T08:00)' : '';
      const from = input(`${id}-from`, kind);
      const to = input(`${id}-to`, kind);
      from.setAttribute('aria-label', `${f.domain} ${f.column} from${unit}, inclusive`);
      to.setAttribute('aria-label', `${f.domain} ${f.column} to${unit}, exclusive`);
      from.placeholder = f.type.startsWith('timestamp') ? 'from 2025-01-31' : 'from';
      to.placeholder = f.type.startsWith('timestamp') ? 'to (exclusive)' : 'to (exclusive)';
      if (!f.list) label.htmlFor = from.id;
      const pair = document.createElement('span');
      pair.className = 'filter-range';
      pair.append(from, to);
      row.append(pair);
      Object.assign(inputs, { from, to });
    }
    if (f.list) inputs.list?.setAttribute('aria-label', `${f.domain} ${f.column}: values, comma-separated`);
    this.inputs.set(key, inputs);
    return row;
  }
}

/**
 * @param {string} id
 * @param {string} type
 * @returns {HTMLInputElement}
 */
function input(id, type) {
  const i = document.createElement('input');
  i.id = id;
  i.type = type;
  if (type === 'number') i.step = 'any';
  i.dataset.testid = id;
  i.autocomplete = 'off';
  i.spellcheck = false;
  return i;
}
