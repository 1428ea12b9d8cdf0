import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineDecoder } from '../ndjson.js';

/** Feed `pieces` to a fresh decoder, return every line including flush(). */
function decodeAll(pieces, options) {
  const d = new LineDecoder(options);
  const out = [];
  for (const p of pieces) out.push(...d.decode(p));
  out.push(...d.flush());
  return out;
}

test('whole lines in one piece', () => {
  assert.deepEqual(decodeAll(['{"a":1}\n{"b":2}\n']), ['{"a":1}', '{"b":2}']);
});

test('a line split across many pieces is joined', () => {
  const line = '{"type":"records","data":[1,2,3]}';
  for (let cut = 0; cut <= line.length; cut++) {
    assert.deepEqual(decodeAll([line.slice(0, cut), line.slice(cut), '\n{"x":1}\n']), [
      line,
      '{"x":1}',
    ]);
  }
  const oneByOne = decodeAll([...`${line}\n${line}\n`]);
  assert.deepEqual(oneByOne, [line, line]);
});

test('nothing is returned before the newline; flush returns the tail', () => {
  const d = new LineDecoder();
  assert.deepEqual(d.decode('{"a":'), []);
  assert.equal(d.hasPending, true);
  assert.deepEqual(d.decode('1}'), []);
  assert.deepEqual(d.flush(), ['{"a":1}']);
  assert.equal(d.hasPending, false);
  assert.deepEqual(d.flush(), []);
});

test('CRLF line endings, also with CR and LF in different pieces', () => {
  assert.deepEqual(decodeAll(['{"a":1}\r\n{"b":2}\r\n']), ['{"a":1}', '{"b":2}']);
  assert.deepEqual(decodeAll(['{"a":1}\r', '\n{"b":2}\r', '\n']), ['{"a":1}', '{"b":2}']);
  assert.deepEqual(decodeAll(['{"a":1}\r\n{"b":2}\r']), ['{"a":1}', '{"b":2}']);
});

test('empty and blank lines are dropped unless asked for', () => {
  const text = '\n{"a":1}\n\n\r\n  \t\n{"b":2}\n\n';
  assert.deepEqual(decodeAll([text]), ['{"a":1}', '{"b":2}']);
  assert.deepEqual(decodeAll([text], { keepEmpty: true }), [
    '',
    '{"a":1}',
    '',
    '',
    '  \t',
    '{"b":2}',
    '',
  ]);
});

test('U+2028 and U+2029 inside a JSON string do not split the line', () => {
  const line = JSON.stringify({ s: 'a\u2028b\u2029c\u0085d' });
  assert.deepEqual(decodeAll([`${line}\n`]), [line]);
  assert.deepEqual(JSON.parse(decodeAll([line])[0]).s, 'a\u2028b\u2029c\u0085d');
});

test('a long line in many pieces is joined once (linear time)', () => {
  const d = new LineDecoder();
  const piece = 'x'.repeat(1024);
  const t0 = performance.now();
  for (let i = 0; i < 4096; i++) assert.deepEqual(d.decode(piece), []);
  const [line] = d.decode('\n');
  assert.equal(line.length, 4096 * 1024);
  assert.ok(performance.now() - t0 < 2000);
});
