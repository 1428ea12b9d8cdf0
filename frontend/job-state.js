// @ts-check
/**
 * A job's state on the page and the handlers of what its stream brings: the
 * worker's `records` chunks, the other lines (`meta`, `domain_start`,
 * `domain_end`, `aggregating`, `aggregation`, `reconnect`, `error`, `complete`), connection
 * states and the stream's end.
 *
 * Pure: no DOM, and every handler takes the time (`performance.now()` on the
 * page), so node tests feed it lines and check the state. What the page does
 * about a change (log it, build or reset a domain's table, draw the
 * aggregations, show the connection) goes to the `JobEvents` it was given.
 *
 * @module job-state
 */

import { aggregationCount } from './aggregation-model.js';
import { ColumnStore } from './columns.js';
import { DomainProgress, formatCount } from './progress.js';

/** @typedef {import('./columns.js').EncodedBatch} EncodedBatch */
/** @typedef {import('./aggregation-model.js').JobAggregation} JobAggregation */
/** @typedef {'info'|'ok'|'warn'|'error'} LogKind */

/**
 * @typedef {object} DomainState one domain of the job: its columns, rows and progress
 * @property {string} name
 * @property {string[]} columns
 * @property {DomainProgress} progress
 * @property {ColumnStore} store
 */

/**
 * @typedef {object} ConnState the consumer's connection, as the worker reports it
 * @property {string} state `idle`, `connecting`, `streaming`, `reconnecting`, `done`, `failed`, `aborted`
 * @property {number} attempt
 * @property {number} connections
 * @property {string|null} since the last token received: where a reconnect resumes
 */

/**
 * @typedef {object} Metrics performance.now() of: Start pressed, job created
 *   (stream requested), the stream's first line (`meta`) and first `records`
 *   reached the page, first rows painted, `complete` received
 * @property {number} clickedAt
 * @property {number} startedAt
 * @property {number|null} firstLineAt
 * @property {number|null} firstRecordsAt
 * @property {number|null} firstRowsAt
 * @property {number|null} doneAt
 */

/**
 * @template {DomainState} D
 * @typedef {object} JobEvents what the page does about the state's changes
 * @property {(name: string, columns: string[]) => D} addDomain a domain's state
 *   (the page's also holds its table); `newDomain` when there is no page
 * @property {(text: string, kind?: LogKind) => void} log
 * @property {(text: string) => void} say tell the user (the stream failed)
 * @property {(d: D) => void} columnsChanged the domain's columns and store were replaced
 * @property {(d: D) => void} domainStarted after each of its `domain_start` lines
 * @property {(d: D) => void} rowsAdded
 * @property {(data: JobAggregation) => void} aggregation the `aggregation` line's data, once
 * @property {(s: any) => void} connChanged a `state` message from the worker
 */

/**
 * A domain's state without a page.
 * @param {string} name
 * @param {string[]} columns
 * @returns {DomainState}
 */
export function newDomain(name, columns) {
  return { name, columns, progress: new DomainProgress(), store: new ColumnStore(columns) };
}

/**
 * How many rows repeat an earlier row's key.
 * @param {ColumnStore} store
 * @param {string[]} keyColumns
 * @returns {number}
 */
export function duplicateKeys(store, keyColumns) {
  const idx = keyColumns.map((c) => store.columns.indexOf(c));
  if (idx.some((i) => i < 0)) throw new Error(`unknown key column in ${keyColumns}`);
  const seen = new Set();
  let dup = 0;
  for (let r = 0; r < store.length; r++) {
    const key = idx.map((j) => String(store.get(r, j))).join('\u0000');
    if (seen.has(key)) dup += 1;
    else seen.add(key);
  }
  return dup;
}

/** @template {DomainState} [D=DomainState] */
export class JobState {
  /**
   * @param {JobEvents<D>} events
   * @param {{clickedAt: number, startedAt: number}|null} times of a started job;
   *   null: the page before any job (connection `idle`)
   */
  constructor(events, times) {
    /** @private */
    this.events = events;
    /** the worker follows this job's stream */
    this.running = false;
    /** @type {Map<string, D>} */
    this.domains = new Map();
    /** @type {ConnState} */
    this.conn = { state: times ? 'connecting' : 'idle', attempt: 0, connections: 0, since: null };
    /** `meta` lines with `resumed: true` */
    this.resumes = 0;
    /** "Drop connection" presses */
    this.drops = 0;
    this.startedAt = times?.startedAt ?? 0;
    /** 0 while running */
    this.endedAt = 0;
    /** @type {JobAggregation|null} the stream's aggregation line */
    this.aggregation = null;
    /** @type {string[]|null} the domains of an `aggregating` line: computed still */
    this.aggregating = null;
    /** @type {Metrics} */
    this.metrics = {
      clickedAt: times?.clickedAt ?? 0,
      startedAt: this.startedAt,
      firstLineAt: null,
      firstRecordsAt: null,
      firstRowsAt: null,
      doneAt: null,
    };
  }

  /**
   * @param {string} name
   * @param {string[]} columns
   * @returns {D}
   */
  addDomain(name, columns) {
    const d = this.events.addDomain(name, columns);
    this.domains.set(name, d);
    return d;
  }

  /** @returns {number} the records received so far, over every domain */
  get received() {
    let n = 0;
    for (const d of this.domains.values()) n += d.progress.received;
    return n;
  }

  /**
   * The job's phase as the header shows it: `aggregating` once every domain's
   * records are in (or the server said so) while its aggregations are not; else
   * the connection's state.
   * @returns {string}
   */
  get phase() {
    const state = this.conn.state;
    if (!this.running || this.aggregation !== null || state !== 'streaming') return state;
    if (this.aggregating) return 'aggregating';
    const domains = [...this.domains.values()];
    return domains.length && domains.every((d) => d.progress.status === 'done') ? 'aggregating' : state;
  }

  /**
   * A `records` line, as the worker encoded it.
   * @param {string} name its domain
   * @param {EncodedBatch} batch
   * @param {string|undefined} since the token after this batch
   * @param {number} now
   */
  onRecords(name, batch, since, now) {
    const d = this.domains.get(name) ?? this.addDomain(name, []);
    if (this.metrics.firstRecordsAt === null) this.metrics.firstRecordsAt = now;
    d.store.append(batch);
    d.progress.addRecords(batch.n, now);
    // Shown by the next paint, at most once per frame however fast batches come.
    if (typeof since === 'string') this.conn.since = since;
    this.events.rowsAdded(d);
  }

  /**
   * Any other line.
   * @param {any} line
   * @param {number} now
   */
  onLine(line, now) {
    const { log } = this.events;
    if (this.metrics.firstLineAt === null) this.metrics.firstLineAt = now;
    switch (line.type) {
      case 'meta':
        if (line.resumed) {
          this.resumes += 1;
          log(`resumed (${this.resumes}): the server continues after the last since token`, 'ok');
        } else {
          log(`stream opened: ${formatCount(line.cid_count)} CIDs, ${line.domains?.join(', ')}`);
        }
        break;
      case 'domain_start':
        this.onDomainStart(line);
        break;
      case 'domain_end':
        this.onDomainEnd(line, now);
        break;
      case 'aggregating':
        if (this.aggregating === null) {
          const domains = Array.isArray(line.domains) ? line.domains : [];
          this.aggregating = domains;
          log(`computing aggregations (${domains.join(', ')})…`);
        }
        break;
      case 'aggregation':
        if (this.aggregation === null) {
          this.aggregation = line.data;
          this.events.aggregation(line.data);
          log(`aggregations: ${aggregationCount(line.data)} computed over the whole job`, 'ok');
        }
        break;
      case 'reconnect':
        log(`server asked to reconnect (${line.reason ?? 'no reason'})`, 'warn');
        break;
      case 'error':
        log(
          `stream error ${line.code}: ${line.message} (${line.retryable ? 'retrying' : 'not retryable'})`,
          line.retryable ? 'warn' : 'error',
        );
        break;
      case 'complete':
        this.onComplete(line, now);
        break;
    }
  }

  /**
   * A `domain_start`: the first, a resume's repeat, or a late total.
   * @private
   * @param {any} line
   */
  onDomainStart(line) {
    const { log } = this.events;
    const d = this.domains.get(line.domain) ?? this.addDomain(line.domain, line.columns);
    const sameColumns = d.columns.join('\u0000') === (line.columns ?? []).join('\u0000');
    if (!sameColumns) {
      // First sight of the real columns (or a changed schema before any row).
      if (d.progress.received) log(`${d.name}: columns changed mid-stream; starting the table again`, 'warn');
      d.columns = line.columns;
      d.store = new ColumnStore(line.columns);
      d.progress.restart();
      this.events.columnsChanged(d);
    }
    const seen = d.progress.begin(line.total);
    const total = d.progress.total;
    if (seen === 'first') {
      log(`${d.name}: ${total === null ? 'counting' : formatCount(total)} records in ${line.total_batches ?? '?'} batches`);
    } else if (seen === 'counted') {
      // A count that took longer than the server's wait arrives in a repeated domain_start.
      log(`${d.name}: counted ${formatCount(total ?? 0)} records in ${line.total_batches} batches`);
    }
    this.events.domainStarted(d);
  }

  /**
   * @private
   * @param {any} line
   * @param {number} now
   */
  onDomainEnd(line, now) {
    const d = this.domains.get(line.domain);
    if (!d || !d.progress.end(now, line.total_records ?? null)) return;
    const p = d.progress;
    this.events.log(
      `${d.name}: done, ${formatCount(p.received)} records` +
        (p.mismatch ? ` but the server counted ${formatCount(p.reportedEnd ?? 0)}` : ''),
      p.mismatch ? 'error' : 'ok',
    );
  }

  /**
   * @private
   * @param {any} line
   * @param {number} now
   */
  onComplete(line, now) {
    this.metrics.doneAt = now;
    const serverTime =
      typeof line.elapsed_seconds === 'number'
        ? `, server time ${line.elapsed_seconds.toFixed(1)} s${this.resumes ? ' (last connection)' : ''}`
        : '';
    this.events.log(`complete: ${formatCount(this.received)} records${serverTime}`, 'ok');
    for (const d of this.domains.values()) d.progress.end(now);
  }

  /**
   * A `state` message: the consumer connects, streams, reconnects, fails...
   * @param {any} s
   */
  onState(s) {
    const prev = this.conn.state;
    this.conn = { state: s.state, attempt: s.attempt, connections: s.connections, since: s.since };
    if (s.state === 'reconnecting') {
      const why = s.error ? `${s.error.code}` : 'unknown';
      this.events.log(
        `connection ended (${why}); reconnecting in ${(s.delayMs / 1000).toFixed(2)} s, attempt ${s.attempt}`,
        'warn',
      );
    } else if (s.state === 'failed' && prev !== 'failed') {
      this.events.say(`Stream failed: ${s.error?.code ?? ''} ${s.error?.message ?? ''}`.trim());
    } else if (s.state === 'aborted') {
      this.events.log('stopped by the user', 'warn');
    }
    this.events.connChanged(s);
  }

  /**
   * The stream's `end` message: done, failed or stopped.
   * @param {{ok: boolean, error?: any}} msg
   * @param {number} now
   */
  onEnd(msg, now) {
    if (!msg.ok) {
      if (msg.error?.name !== 'AbortError') {
        this.events.log(`failed: ${msg.error?.code ?? ''} ${msg.error?.message ?? ''}`, 'error');
      }
      for (const d of this.domains.values()) d.progress.stop();
    }
    this.finish(now);
  }

  /**
   * The stream is over (its end, or the worker crashed).
   * @param {number} now
   */
  finish(now) {
    this.running = false;
    this.endedAt = now;
  }

  /** "Drop connection" was pressed. */
  drop() {
    this.drops += 1;
    this.events.log(`drop requested by the user (${this.drops})`, 'warn');
  }
}
