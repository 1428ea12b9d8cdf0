// Downloads with the API key (downloads.js): the request, the saved file, errors, plain links.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { downloadWithKey, fetchFile, keyedDownload, saveBlob } from '../downloads.js';

/** A document whose links record how they were clicked. */
function fakeDocument() {
  /** @type {{href: string, download: string, clicked: number}[]} */
  const links = [];
  /** @type {(link: any) => void} */
  let onClick = () => {};
  return {
    links,
    clicked: () => new Promise((resolve) => { onClick = resolve; }),
    createElement(/** @type {string} */ tag) {
      assert.equal(tag, 'a');
      const a = { href: '', download: '', clicked: 0, click() { a.clicked += 1; onClick(a); } };
      links.push(a);
      return a;
    },
  };
}

/** A fetch that answers `response` and records its calls. */
function recordingFetch(/** @type {() => Response} */ response) {
  /** @type {any[]} */
  const calls = [];
  const fetch = async (/** @type {any} */ url, /** @type {any} */ init) => {
    calls.push([url, init]);
    return response();
  };
  return { fetch, calls };
}

test('fetchFile asks for the file with the headers and returns its bytes', async () => {
  const { fetch, calls } = recordingFetch(() => new Response('a,b\r\n1,2\r\n'));
  const blob = await fetchFile('http://x/f.csv', { authorization: 'Bearer k' }, fetch);
  assert.deepEqual(calls, [['http://x/f.csv', { headers: { authorization: 'Bearer k' } }]]);
  assert.equal(await blob.text(), 'a,b\r\n1,2\r\n');
});

test('fetchFile turns a problem answer into an error with its status and code', async () => {
  const { fetch } = recordingFetch(
    () => new Response(JSON.stringify({ code: 'unauthorized', detail: 'bad key' }), {
      status: 401, headers: { 'content-type': 'application/problem+json' },
    }),
  );
  await assert.rejects(fetchFile('http://x/f', {}, fetch), { status: 401, code: 'unauthorized' });
});

test('fetchFile rejects a body that breaks off: no partial file', async () => {
  const body = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode('a,b\r\n'));
      c.error(new Error('connection reset'));
    },
  });
  const { fetch } = recordingFetch(() => new Response(body));
  await assert.rejects(fetchFile('http://x/f', {}, fetch), /connection reset/);
});

test('saveBlob clicks a temporary link to an object URL named as asked, then revokes it', async () => {
  const doc = fakeDocument();
  saveBlob(new Blob(['x']), 'J-history.csv', { document: doc, revokeAfterMs: 0 });
  assert.equal(doc.links.length, 1);
  const [a] = doc.links;
  assert.equal(a.download, 'J-history.csv');
  assert.match(a.href, /^blob:/);
  assert.equal(a.clicked, 1);
  await new Promise((resolve) => setTimeout(resolve, 5));
  const revoked = await fetch(a.href).then(() => false, () => true);
  assert.ok(revoked, 'the object URL is revoked');
});

test('keyedDownload saves what it fetched', async () => {
  const doc = fakeDocument();
  const { fetch, calls } = recordingFetch(() => new Response('body'));
  await keyedDownload('http://x/e/file', 'trace-J.zip', { authorization: 'Bearer k' }, { fetch, document: doc, revokeAfterMs: 0 });
  assert.equal(calls[0][1].headers.authorization, 'Bearer k');
  assert.equal(doc.links[0].download, 'trace-J.zip');
});

/** A link that dispatches clicks like an anchor element. */
function fakeLink(/** @type {string} */ href) {
  return Object.assign(new EventTarget(), { href });
}

function click(/** @type {EventTarget} */ link) {
  const event = new Event('click', { cancelable: true });
  link.dispatchEvent(event);
  return event;
}

test('downloadWithKey: with a key the click is taken over and the file saved under the given name', async () => {
  const doc = fakeDocument();
  const { fetch, calls } = recordingFetch(() => new Response('body'));
  const link = fakeLink('http://x/job/J/export.csv?domain=history');
  downloadWithKey(link, {
    headers: () => ({ authorization: 'Bearer k' }),
    fileName: () => 'J-history.csv',
    onError: (err) => assert.fail(String(err)),
    fetch,
    document: doc,
    revokeAfterMs: 0,
  });
  const saved = doc.clicked();
  assert.ok(click(link).defaultPrevented);
  const a = await saved;
  assert.equal(a.download, 'J-history.csv');
  assert.deepEqual(calls, [['http://x/job/J/export.csv?domain=history', { headers: { authorization: 'Bearer k' } }]]);
});

test('downloadWithKey: without a key the browser follows the link itself', () => {
  const { fetch, calls } = recordingFetch(() => new Response('body'));
  const link = fakeLink('http://x/f');
  downloadWithKey(link, { headers: () => ({}), fileName: () => 'f', onError: () => {}, fetch });
  assert.equal(click(link).defaultPrevented, false);
  assert.equal(calls.length, 0);
});

test('downloadWithKey: a failed download goes to onError, nothing is saved', async () => {
  const doc = fakeDocument();
  const { fetch } = recordingFetch(
    () => new Response(JSON.stringify({ code: 'job_not_found' }), { status: 404, headers: { 'content-type': 'application/problem+json' } }),
  );
  const link = fakeLink('http://x/f');
  const failed = new Promise((resolve) => {
    downloadWithKey(link, { headers: () => ({ authorization: 'Bearer k' }), fileName: () => 'f', onError: resolve, fetch, document: doc });
  });
  click(link);
  const err = /** @type {any} */ (await failed);
  assert.equal(err.status, 404);
  assert.equal(err.code, 'job_not_found');
  assert.equal(doc.links.length, 0);
});
