// @ts-check
/**
 * A domain's progress as the page shows it: records received out of the
 * total, the rate over the last few seconds, the time left. Pure (no DOM, no
 * clock): every method that needs the time takes it (ms, as from
 * `performance.now()`), so the node tests drive the clock.
 *
 * @module progress
 */

/** The rate is measured over this much recent time: steady, yet it follows changes. */
export const RATE_WINDOW_MS = 3000;

/** A rate over less time than this is noise ("1,013,333 rec/s, took 0.0 s"): none is shown. */
export const MIN_RATE_SPAN_MS = 1000;

const numbers = new Intl.NumberFormat('en-US');

/** @param {number} n @returns {string} e.g. `12,345` */
export function formatCount(n) {
  return numbers.format(n);
}

/**
 * @param {number} seconds
 * @returns {string} `42 s`, `3 min 7 s`, or `—` when not finite
 */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return '—';
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - m * 60)} s`;
}

/** @typedef {'waiting'|'streaming'|'done'|'stopped'} DomainStatus */

/**
 * @typedef {object} ProgressText what a progress row shows
 * @property {number} fraction of the bar, 0..1
 * @property {string} count `received / total`
 * @property {string} rate
 * @property {string} eta
 * @property {DomainStatus|'mismatch'} status
 */

export class DomainProgress {
  constructor() {
    /** @type {number|null} the domain's record count, once the server knows it */
    this.total = null;
    this.received = 0;
    /** @type {number|null} `total_records` of the domain's `domain_end` */
    this.reportedEnd = null;
    /** @type {DomainStatus} */
    this.status = 'waiting';
    /** time of the first records */
    this.startedAt = 0;
    this.endedAt = 0;
    /** @type {{t: number, n: number}[]} recent (time, received) pairs for the rate */
    this.samples = [];
  }

  /**
   * A `domain_start` line. After a resume the server repeats it; a count that
   * took longer than the server waited comes in a repeated one too.
   * @param {number|null|undefined} total
   * @returns {'first'|'counted'|'continued'} the first sight, the first total
   *   of a domain already seen, or a plain continuation
   */
  begin(total) {
    const again = this.status !== 'waiting' || this.total !== null;
    const known = typeof total === 'number';
    const counted = this.total === null && known;
    if (known) this.total = total;
    if (this.status === 'waiting') this.status = 'streaming';
    if (!again) return 'first';
    return counted ? 'counted' : 'continued';
  }

  /**
   * `n` more records arrived at `now`.
   * @param {number} n
   * @param {number} now
   */
  addRecords(n, now) {
    this.received += n;
    if (!this.startedAt) this.startedAt = now;
    this.status = 'streaming';
    this.samples.push({ t: now, n: this.received });
    while (this.samples.length > 2 && now - this.samples[0].t > RATE_WINDOW_MS) this.samples.shift();
  }

  /** The columns changed before or during the domain: its rows start again. */
  restart() {
    this.received = 0;
    this.samples = [];
  }

  /**
   * The domain is complete (its `domain_end`, or the stream's `complete`).
   * @param {number} now
   * @param {number|null} [reportedEnd] the server's count, when it sent one
   * @returns {boolean} false when it was already done
   */
  end(now, reportedEnd = null) {
    if (this.status === 'done') return false;
    this.status = 'done';
    this.endedAt = now;
    this.reportedEnd = reportedEnd;
    return true;
  }

  /** The stream failed or was stopped before this domain was done. */
  stop() {
    if (this.status !== 'done') this.status = 'stopped';
  }

  /** @returns {boolean} the server counted a different number of records */
  get mismatch() {
    return this.status === 'done' && this.reportedEnd !== null && this.reportedEnd !== this.received;
  }

  /**
   * Records per second: over the whole domain once done, else over the recent
   * window up to `now`, so a stalled stream shows its rate falling, not frozen.
   * @param {number} now
   * @returns {number} 0 when unknown
   */
  rate(now) {
    if (this.status === 'done') {
      const took = this.endedAt - this.startedAt;
      return this.startedAt && took >= MIN_RATE_SPAN_MS ? (this.received * 1000) / took : 0;
    }
    if (this.samples.length < 2) return 0;
    const a = this.samples[0];
    const b = this.samples[this.samples.length - 1];
    const span = Math.max(b.t, now) - a.t;
    return span >= MIN_RATE_SPAN_MS ? ((b.n - a.n) * 1000) / span : 0;
  }

  /**
   * @param {number} now
   * @param {boolean} [paused] the connection is down (reconnecting): no rate nor ETA,
   *   which would only show the stall
   * @returns {ProgressText}
   */
  text(now, paused = false) {
    const rate = paused && this.status !== 'done' ? 0 : this.rate(now);
    let fraction = this.status === 'done' ? 1 : 0;
    if (this.total) fraction = Math.min(1, this.received / this.total);
    let eta = 'ETA —';
    if (this.status === 'done') {
      const took = (this.endedAt - this.startedAt) / 1000;
      eta = !this.startedAt ? '' : took < 0.1 ? 'took < 0.1 s' : `took ${took.toFixed(1)} s`;
    } else if (paused) {
      eta = 'ETA —';
    } else if (this.total !== null && rate > 0) {
      eta = `ETA ${formatDuration((this.total - this.received) / rate)}`;
    }
    return {
      fraction,
      count: `${formatCount(this.received)} / ${this.total === null ? '—' : formatCount(this.total)}`,
      rate: rate ? `${formatCount(Math.round(rate))} rec/s` : '— rec/s',
      eta,
      status: this.mismatch ? 'mismatch' : this.status,
    };
  }
}
