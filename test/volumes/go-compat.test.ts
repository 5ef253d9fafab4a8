// The Go behaviours Docker's output depends on: natural sort, sizes, path.Clean, RFC3339, JSON.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { cleanPath, formatRFC3339, goJSON, naturalCompare, parseGoBool, ramInBytes, sortedMap } from '../../src/volumes/go-compat.js';

test('natural order is the docker CLI\'s (sortorder.NaturalLess)', () => {
  const names = ['vol10', 'vol2', 'Vol1', 'vol1', 'a', 'a01', 'a1', 'a001', '10', '9', 'x-2', 'x-10', 'data', 'data1', '_z', 'b.1', 'b.01'];
  assert.deepEqual([...names].sort(naturalCompare), ['9', '10', 'Vol1', '_z', 'a', 'a1', 'a01', 'a001', 'b.1', 'b.01', 'data', 'data1', 'vol1', 'vol2', 'vol10', 'x-2', 'x-10']);
});

test('ramInBytes (go-units RAMInBytes)', () => {
  assert.equal(ramInBytes('64m'), 64 * 2 ** 20);
  assert.equal(ramInBytes('1.5GiB'), 1.5 * 2 ** 30);
  assert.equal(ramInBytes('100'), 100);
  assert.equal(ramInBytes('10 kb'), 10 * 1024);
  assert.equal(ramInBytes('0'), 0);
  for (const bad of ['', 'abc', '-1', '1x', '1.2.3m', 'm']) assert.throws(() => ramInBytes(bad), { message: `invalid size: '${bad}'` });
});

test('cleanPath (path.Clean)', () => {
  const cases: Array<[string, string]> = [['', '.'], ['/', '/'], ['/a/b/', '/a/b'], ['//a//b', '/a/b'], ['/a/./b/../c', '/a/c'], ['/..', '/'], ['a/../..', '..'], ['./x', 'x'], ['/a/b/..', '/a']];
  for (const [input, want] of cases) assert.equal(cleanPath(input), want, input);
});

test('parseGoBool (strconv.ParseBool)', () => {
  for (const t of ['1', 't', 'T', 'true', 'TRUE', 'True']) assert.equal(parseGoBool(t), true);
  for (const f of ['0', 'f', 'F', 'false', 'FALSE', 'False']) assert.equal(parseGoBool(f), false);
  for (const x of ['', 'yes', 'tRuE', '2']) assert.equal(parseGoBool(x), undefined);
});

test('formatRFC3339 drops fractions and writes the local offset', () => {
  const d = new Date('2024-05-01T10:00:00.987Z');
  const s = formatRFC3339(d);
  assert.match(s, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/);
  assert.equal(new Date(s).getTime(), Date.parse('2024-05-01T10:00:00Z'));
  if (d.getTimezoneOffset() === 0) assert.equal(s, '2024-05-01T10:00:00Z');
});

test('goJSON escapes like encoding/json; sortedMap orders keys bytewise', () => {
  assert.equal(goJSON({ a: '<b>&\u2028' }), '{"a":"\\u003cb\\u003e\\u0026\\u2028"}');
  assert.equal(JSON.stringify(sortedMap({ b: '1', B: '2', a: '3', _: '4' })), '{"B":"2","_":"4","a":"3","b":"1"}');
  assert.equal(sortedMap(null), null);
});
