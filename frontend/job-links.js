// @ts-check
/**
 * The URLs the page derives from a created job (`POST api/trace/job`'s
 * answer): the stream it follows, the same stream as a download, and each
 * domain's CSV file. Pure: node tests.
 *
 * @module job-links
 */

/**
 * @typedef {object} JobLinks
 * @property {string} streamUrl `links.stream?format=arrays`: what the worker follows
 * @property {string} downloadUrl the same stream as NDJSON objects ("Download NDJSON")
 * @property {string} csvUrl `links.self/export.csv`, before `?domain=`
 */

/**
 * @param {{job_id: string, links?: {stream?: string, self?: string}}} job
 * @param {string} base the page's URL (`document.baseURI`): the links are relative
 * @returns {JobLinks}
 */
export function jobLinks(job, base) {
  const fallback = `api/trace/job/${encodeURIComponent(job.job_id)}`; // a service without `links`
  const streamUrl = new URL(job.links?.stream ?? `${fallback}/stream`, base);
  const download = new URL(streamUrl);
  download.searchParams.delete('format');
  streamUrl.searchParams.set('format', 'arrays');
  const csvUrl = new URL(`${job.links?.self ?? fallback}/export.csv`, base);
  return { streamUrl: streamUrl.href, downloadUrl: download.href, csvUrl: csvUrl.href };
}

/**
 * A domain's "Download CSV" link: GET <job>/export.csv?domain=D, saved as `<job>-<domain>.csv`
 * (the service's Content-Disposition name too).
 * @param {{job_id: string, csvUrl: string}} job
 * @param {string} domain
 * @returns {{href: string, filename: string}}
 */
export function domainCsv(job, domain) {
  const csv = new URL(job.csvUrl);
  csv.searchParams.set('domain', domain);
  return { href: csv.href, filename: `${job.job_id}-${domain}.csv` };
}
