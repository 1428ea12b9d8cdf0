// @ts-check
/**
 * A job's filters (`where`, docs/protocol.md#filters) as the page builds them:
 * the filterable columns `GET api/domains` lists, the text the user typed in
 * each control, and the `where` object sent with the job. Pure (node tests);
 * filter-panel.js builds the controls.
 *
 * @module filters
 */

/**
 * @typedef {{ops: string[], type: string}} FilterInfo a column's filter kinds and value type
 * @typedef {{name: string, columns: string[], filters?: Record<string, FilterInfo>}} DomainInfo
 * @typedef {object} FilterField one filterable column of one domain
 * @property {string} domain
 * @property {string} column
 * @property {boolean} list takes a value list (`in`)
 * @property {boolean} range takes from/to (`range`)
 * @property {string} type `text`, `number`, `timestamp`, `timestamptz`
 * @typedef {{list?: string, from?: string, to?: string}} FieldInput what a field's controls hold
 * @typedef {Record<string, Record<string, any[]|{from?: any, to?: any}>>} Where
 */

/** The server's bound on one list (docs/protocol.md#filters). */
export const MAX_LIST_VALUES = 1000;

/**
 * @param {DomainInfo} domain
 * @returns {FilterField[]} its filterable columns, in the domain's column order
 */
export function filterFields(domain) {
  const filters = domain.filters ?? {};
  const names = [...domain.columns.filter((c) => c in filters), ...Object.keys(filters).filter((c) => !domain.columns.includes(c))];
  return names.map((column) => {
    const f = filters[column];
    return { domain: domain.name, column, list: f.ops.includes('in'), range: f.ops.includes('range'), type: f.type };
  });
}

/** @param {FilterField} f @returns {string} the key of a field's input, `domain.column` */
export function fieldKey(f) {
  return `${f.domain}.${f.column}`;
}

/**
 * A value list as typed: one value a line or comma-separated; blanks dropped.
 * @param {string} text
 * @returns {string[]}
 */
export function splitValues(text) {
  return text
    .split(/[\n,]/)
    .map((v) => v.trim())
    .filter(Boolean);
}

/**
 * One typed value as the wire wants it.
 * @param {FilterField} f
 * @param {string} text
 * @returns {string|number} a number for number columns; timestamps and text as typed
 */
function wireValue(f, text) {
  if (f.type !== 'number') return text;
  const n = Number(text);
  if (text === '' || !Number.isFinite(n)) throw new Error(`${fieldKey(f)}: "${text}" is not a number`);
  return n;
}

/**
 * The `where` of a job over `domains`, from what the controls hold. Fields of
 * domains not in the job are left out (the server refuses them).
 * @param {FilterField[]} fields
 * @param {Record<string, FieldInput>} inputs by `fieldKey`
 * @param {string[]} domains the job's domains
 * @returns {{where: Where|null, errors: string[]}} null: no filter at all
 */
export function buildWhere(fields, inputs, domains) {
  /** @type {Where} */
  const where = {};
  /** @type {string[]} */
  const errors = [];
  for (const f of fields) {
    if (!domains.includes(f.domain)) continue;
    const input = inputs[fieldKey(f)] ?? {};
    const values = f.list ? splitValues(input.list ?? '') : [];
    const from = f.range ? (input.from ?? '').trim() : '';
    const to = f.range ? (input.to ?? '').trim() : '';
    try {
      /** @type {any[]|{from?: any, to?: any}|null} */
      let cond = null;
      if (values.length && (from || to)) {
        throw new Error(`${fieldKey(f)}: give either values or a range, not both`);
      } else if (values.length) {
        if (values.length > MAX_LIST_VALUES) throw new Error(`${fieldKey(f)}: at most ${MAX_LIST_VALUES} values`);
        cond = values.map((v) => wireValue(f, v));
      } else if (from || to) {
        /** @type {{from?: any, to?: any}} */
        const range = {};
        if (from) range.from = wireValue(f, from);
        if (to) range.to = wireValue(f, to);
        if (from && to && !(range.from < range.to)) throw new Error(`${fieldKey(f)}: "from" must be before "to"`);
        cond = range;
      }
      if (cond) (where[f.domain] ??= {})[f.column] = cond;
    } catch (err) {
      errors.push(/** @type {Error} */ (err).message);
    }
  }
  return { where: Object.keys(where).length ? where : null, errors };
}

/**
 * A job's `where` in one line for people, e.g.
 * `history: EVENTNAME in Hold, Release; TXNDATE from 2025-01-01`.
 * @param {Where|null|undefined} where
 * @returns {string} `none` when there is no filter
 */
export function describeWhere(where) {
  if (!where || !Object.keys(where).length) return 'none';
  const parts = [];
  for (const [domain, columns] of Object.entries(where)) {
    const conds = Object.entries(columns).map(([column, cond]) => {
      if (Array.isArray(cond)) return `${column} in ${cond.join(', ')}`;
      const bounds = [];
      if (cond.from !== undefined) bounds.push(`from ${cond.from}`);
      if (cond.to !== undefined) bounds.push(`to ${cond.to}`);
      return `${column} ${bounds.join(' ')}`;
    });
    parts.push(`${domain}: ${conds.join('; ')}`);
  }
  return parts.join(' · ');
}

/**
 * Values worth suggesting for a list column: the group keys of the job's
 * count aggregations by that one column (already computed; no extra query).
 * @param {any} aggregation the stream's `aggregation` data
 * @param {string} domain
 * @param {string} column
 * @returns {string[]}
 */
export function suggestedValues(aggregation, domain, column) {
  const out = new Set();
  for (const agg of Object.values(aggregation?.aggregations?.[domain] ?? {})) {
    const a = /** @type {any} */ (agg);
    if ((a.kind === 'count' || a.kind === 'sum') && a.by?.length === 1 && a.by[0] === column) {
      for (const g of a.groups ?? []) if (g.key[0] !== null) out.add(String(g.key[0]));
    }
  }
  return [...out].sort();
}
