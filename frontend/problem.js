// @ts-check
/**
 * RFC 9457 problem+json answers as Errors: the one place that turns an HTTP
 * error status and its body into `message`, `code` and `status`, for the page,
 * the worker and the consumer alike.
 *
 * @module problem
 */

/**
 * @typedef {Error & {status: number, code: string, problem: any}} ProblemError
 */

/**
 * The body of `response` when it is JSON (problem+json included), else null.
 * A body that is not JSON is cancelled, so the connection can be reused.
 * @param {Response} response
 * @returns {Promise<any>}
 */
export async function readJsonBody(response) {
  const type = response.headers.get('content-type') ?? '';
  if (!type.includes('json')) {
    await response.body?.cancel().catch(() => {});
    return null;
  }
  return response.json().catch(() => null);
}

/**
 * An Error for an HTTP error answer: the problem's `detail` (or `title`) as the
 * message, its `code` (or `http_<status>`) as the code.
 * @param {number} status
 * @param {any} body the parsed problem+json, or null
 * @param {string} [statusText]
 * @returns {ProblemError}
 */
export function problemError(status, body, statusText = '') {
  const message = body?.detail || body?.title || `HTTP ${status} ${statusText}`.trim();
  const code = typeof body?.code === 'string' && body.code ? body.code : `http_${status}`;
  return Object.assign(new Error(String(message)), { status, code, problem: body ?? undefined });
}
