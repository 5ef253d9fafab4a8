// The json-file log writer and reader: dockerd's byte-level format, partial lines, follow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  JsonLogWriter,
  MAX_LINE,
  encodeLogString,
  parseTimestampNs,
  readLog,
  type LogEntry,
} from '../../src/runtime/logs.js';
import { formatTimestamp } from '../../src/sys/go-time.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'strata-logs-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function records(file: string): Promise<Array<{ log: string; stream: string; time: string }>> {
  return (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogEntry);
}

test('strings are escaped byte for byte as dockerd writes them', () => {
  // Captured from Debian's dockerd 20.10: tab as \u0009, HTML characters escaped, é raw.
  assert.equal(encodeLogString('<a&b> é "q" \\ tab\tend\n'), '"\\u003ca\\u0026b\\u003e é \\"q\\" \\\\ tab\\u0009end\\n"');
  assert.equal(encodeLogString('nonl\u0001\ufffdx\r\n'), '"nonl\\u0001\\ufffdx\\r\\n"');
  assert.equal(encodeLogString('\u2028'), '"\\u2028"');
});

test('timestamps are RFC 3339 with trimmed nanoseconds', () => {
  assert.equal(formatTimestamp(1_767_323_045_123_456_789n), '2026-01-02T03:04:05.123456789Z');
  assert.equal(formatTimestamp(1_767_323_045_120_000_000n), '2026-01-02T03:04:05.12Z');
  assert.equal(formatTimestamp(1_767_323_045_000_000_000n), '2026-01-02T03:04:05Z');
  assert.equal(parseTimestampNs('2026-01-02T03:04:05.123456789Z'), 1_767_323_045_123_456_789n);
  assert.equal(parseTimestampNs('2026-01-02T04:04:05.5+01:00'), 1_767_323_045_500_000_000n);
});

test('lines are split at newlines, held when partial, cut at 16 KiB', async () => {
  await withDir(async (dir) => {
    const file = path.join(dir, 'c-json.log');
    const w = new JsonLogWriter(file);
    w.write('stdout', Buffer.from('hello\nwor'));
    w.write('stderr', Buffer.from('oops\n'));
    w.write('stdout', Buffer.from('ld\n'));
    w.write('stdout', Buffer.from('x'.repeat(MAX_LINE + 10)));
    w.write('stdout', Buffer.from([0xff, 0x41]));
    w.close();
    const r = await records(file);
    assert.deepEqual(r.map((e) => [e.stream, e.log]), [
      ['stdout', 'hello\n'],
      ['stderr', 'oops\n'],
      ['stdout', 'world\n'],
      ['stdout', 'x'.repeat(MAX_LINE)],
      ['stdout', `${'x'.repeat(10)}\ufffdA`],
    ]);
    for (const e of r) assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
    assert.ok(r.every((e, i) => i === 0 || parseTimestampNs(e.time) >= parseTimestampNs(r[i - 1]!.time)));
  });
});

test('readLog reads, tails, filters by time and skips a torn line', async () => {
  await withDir(async (dir) => {
    const file = path.join(dir, 'c-json.log');
    const lines = [1, 2, 3, 4].map((i) => `{"log":"${i}\\n","stream":"stdout","time":"2026-01-01T00:00:0${i}Z"}\n`);
    await appendFile(file, `${lines.join('')}{"log":"torn`);
    const all: string[] = [];
    for await (const e of readLog(file)) all.push(e.log);
    assert.deepEqual(all, ['1\n', '2\n', '3\n', '4\n']);
    const tail: string[] = [];
    for await (const e of readLog(file, { tail: 2 })) tail.push(e.log);
    assert.deepEqual(tail, ['3\n', '4\n']);
    const window: string[] = [];
    for await (const e of readLog(file, { since: '2026-01-01T00:00:02Z', until: '2026-01-01T00:00:04Z' })) window.push(e.log);
    assert.deepEqual(window, ['2\n', '3\n']);
    const none: string[] = [];
    for await (const e of readLog(path.join(dir, 'absent'))) none.push(e.log);
    assert.deepEqual(none, []);
  });
});

test('readLog follows a growing file until aborted and misses nothing written before', async () => {
  await withDir(async (dir) => {
    const file = path.join(dir, 'c-json.log');
    const w = new JsonLogWriter(file);
    w.write('stdout', Buffer.from('first\n'));
    const ac = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const e of readLog(file, { follow: true, signal: ac.signal })) seen.push(e.log);
    })();
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 30));
      w.write(i % 2 ? 'stderr' : 'stdout', Buffer.from(`line ${i}\n`));
    }
    w.write('stdout', Buffer.from('last\n'));
    w.close();
    ac.abort();
    await reading;
    assert.deepEqual(seen, ['first\n', 'line 0\n', 'line 1\n', 'line 2\n', 'line 3\n', 'line 4\n', 'last\n']);
  });
});
