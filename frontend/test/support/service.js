// The real trace service for the node tests: `trace-svc serve` from the repository's
// venv, on a free loopback port, over a demo SQLite database built in a temporary
// directory on first start.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const TRACE_SVC = path.join(ROOT, '.venv/bin/trace-svc');

/** @returns {Promise<number>} a loopback port that was free a moment ago */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

/**
 * Start the service and wait until /readyz answers.
 * @param {{demoCids?: number, batchSize?: number, timeoutMs?: number, env?: Record<string, string>}} [options]
 *   `env`: more TRACE_* settings of the service
 * @returns {Promise<{base: string, stop: () => Promise<void>, output: () => string}>}
 */
export async function startService({ demoCids = 500, batchSize = 50, timeoutMs = 90_000, env: extraEnv = {} } = {}) {
  if (!existsSync(TRACE_SVC)) {
    throw new Error(
      `${TRACE_SVC} is missing: these tests run against the real service. ` +
        'Set it up first: `python3 -m venv .venv && .venv/bin/pip install -e ".[dev]"` in the repository root.',
    );
  }
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'trace-node-test-'));
  const port = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TRACE_')));
  Object.assign(env, {
    TRACE_DATA_DIR: dataDir,
    TRACE_DEMO_CIDS: String(demoCids),
    TRACE_STREAM_BATCH_SIZE: String(batchSize),
    ...extraEnv,
  });
  const proc = spawn(TRACE_SVC, ['serve', '--host', '127.0.0.1', '--port', String(port)], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (b) => (output += b));
  proc.stderr.on('data', (b) => (output += b));
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      await stop();
      throw new Error(`trace-svc exited (${proc.exitCode ?? proc.signalCode}) before it was ready:\n${output}`);
    }
    try {
      const res = await fetch(`${base}/readyz`);
      await res.arrayBuffer();
      if (res.ok) return { base, stop, output: () => output };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`trace-svc was not ready within ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Pick `n` random demo CIDs and create a job of them.
 * @param {string} base
 * @param {number} n
 * @param {string[]} [domains]
 * @returns {Promise<{cids: string[], jobId: string, stream: string}>} `stream`: the job's stream path
 */
export async function createJob(base, n, domains = ['history', 'materials']) {
  const cids = (await (await fetch(`${base}/api/demo/cids?n=${n}`)).json()).container_ids;
  const res = await fetch(`${base}/api/trace/job`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ container_ids: cids, domains }),
  });
  if (res.status !== 201) throw new Error(`job not created: ${res.status} ${await res.text()}`);
  const job = await res.json();
  return { cids, jobId: job.job_id, stream: job.links.stream };
}

/**
 * Every line of a stream read in one plain request, no consumer involved: what a
 * fault-free connection yields, to compare the consumer's result with.
 * @param {string} url
 * @returns {Promise<{lines: any[], rows: Record<string, any[][]>}>}
 */
export async function readWhole(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`stream: HTTP ${res.status}`);
  const lines = (await res.text())
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  /** @type {Record<string, any[][]>} */
  const rows = {};
  for (const l of lines) if (l.type === 'records') (rows[l.domain] ??= []).push(...l.data);
  return { lines, rows };
}
