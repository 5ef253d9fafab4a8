import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { unpackLayer } from '../../src/archive/layer.js';
import { encodeHeader, type TarHeader } from '../../src/archive/tar-header.js';
import { goJsonString, readTarSplit, TarSplitRecorder } from '../../src/archive/tar-split.js';
import { InvalidArchiveError } from '../../src/errors.js';
import { buildTar } from '../helpers/tar-builder.js';

function tempDir(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'strata-ts-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Unpacks `tar` (given as chunks) into a fresh dir and returns the tar-split JSON lines. */
async function tarSplitLines(t: TestContext, chunks: Buffer[], whiteouts: 'overlay' | 'delete' = 'overlay'): Promise<string[]> {
  const sink = new PassThrough();
  const gz = collect(sink);
  await unpackLayer(Readable.from(chunks), { target: tempDir(t), whiteouts, tarSplit: sink });
  const text = gunzipSync(await gz).toString('utf8');
  assert.ok(text.endsWith('\n'));
  return text.slice(0, -1).split('\n');
}

function h(over: Partial<TarHeader>): TarHeader {
  return { name: '', linkname: '', typeflag: '0', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1700000000, uname: '', gname: '', devmajor: 0, devminor: 0, ...over };
}

describe('tar-split record', () => {
  it('matches the facts §9 vector for a Go-written tar (Docker ≥ 25 form)', async (t) => {
    const hdrA = encodeHeader(h({ name: 'a/', typeflag: '5', mode: 0o755 }));
    const hdrHello = encodeHeader(h({ name: 'a/hello', size: 6 }));
    const body = Buffer.concat([Buffer.from('hello\n'), Buffer.alloc(506)]);
    const tar = Buffer.concat([hdrA, hdrHello, body, Buffer.alloc(1024)]);
    const lines = await tarSplitLines(t, [tar]);
    assert.deepEqual(lines, [
      `{"type":2,"payload":"${hdrA.toString('base64')}","position":0}`,
      '{"type":1,"name":"a/","payload":null,"position":1}',
      `{"type":2,"payload":"${hdrHello.toString('base64')}","position":2}`,
      '{"type":1,"name":"a/hello","size":6,"payload":"YUw+7uLYEAA=","position":3}',
      `{"type":2,"payload":"${Buffer.alloc(506 + 1024).toString('base64')}","position":4}`,
    ]);
  });

  it('records GNU 10240 padding after the end marker as its own segment', async (t) => {
    const tar = buildTar([{ name: 'f', body: 'x' }], { gnuPadTo10240: true });
    const lines = await tarSplitLines(t, [tar]);
    assert.equal(lines.length, 4);
    const last = JSON.parse(lines[3]!);
    // header + 1 body block + 2 end-of-archive blocks precede it.
    assert.equal(Buffer.from(last.payload, 'base64').length, 10240 - 4 * 512);
  });

  it('cuts trailing data into segments of at most 1 MiB, wherever the input splits', async (t) => {
    const trailing = Buffer.alloc((5 << 19) + 3, 7); // 2.5 MiB + 3
    const tar = buildTar([{ name: 'f', body: 'x' }], { trailing });
    const lines = await tarSplitLines(t, [tar.subarray(0, tar.length - 10), tar.subarray(tar.length - 10)]);
    const segs = lines.slice(3).map((l) => Buffer.from(JSON.parse(l).payload, 'base64').length);
    assert.deepEqual(segs, [1 << 20, 1 << 20, (1 << 19) + 3 - 10, 10]);
  });

  it('escapes names like Go encoding/json and uses name_raw for non-UTF-8 names', async (t) => {
    const raw = Buffer.from([0x66, 0xff, 0x66]);
    const tar = Buffer.concat([
      buildTar([{ name: 'a<b>&c\u2028', body: '' }], { noTrailer: true }),
      rawNameEntry(raw),
      Buffer.alloc(1024),
    ]);
    const lines = await tarSplitLines(t, [tar]);
    assert.equal(lines[1], '{"type":1,"name":"a\\u003cb\\u003e\\u0026c\\u2028","payload":null,"position":1}');
    assert.equal(lines[3], `{"type":1,"name_raw":"${raw.toString('base64')}","payload":null,"position":3}`);
    assert.equal(goJsonString('tab\there"\\'), '"tab\\there\\"\\\\"');
  });

  it('rejects duplicate paths after cleaning', async (t) => {
    for (const names of [['a', 'a'], ['./a/', 'a'], ['d/', 'd/./']]) {
      const tar = buildTar(names.map((n) => (n.endsWith('/') ? { name: n } : { name: n, body: 'x' })));
      await assert.rejects(
        unpackLayer(Readable.from([tar]), { target: tempDir(t), whiteouts: 'delete', tarSplit: new PassThrough() }),
        (err: unknown) => err instanceof InvalidArchiveError && /duplicates of file paths not supported/.test(err.message),
        names.join(' + '),
      );
    }
  });

  it('records global PAX headers as payload-less file entries', async (t) => {
    const tar = buildTar([{ name: 'pax_global_header', type: 'g', body: '17 comment=hello\n' }, { name: 'f', body: 'x' }]);
    const lines = await tarSplitLines(t, [tar]);
    assert.equal(lines[1], '{"type":1,"name":"pax_global_header","payload":null,"position":1}');
  });

  it('reads back what it writes (either Docker form)', async () => {
    let text = '';
    const rec = new TarSplitRecorder((s) => { text += s; });
    rec.raw(Buffer.from('header'));
    rec.file(h({ name: 'x', size: 2 }));
    rec.fileData(Buffer.from('hi'));
    rec.fileEnd();
    rec.end();
    rec.close();
    // Docker 20.10–24 appended an empty segment; the reader must take it.
    text += '{"type":2,"payload":"","position":2}\n';
    const { gzipSync } = await import('node:zlib');
    const entries = [];
    for await (const e of readTarSplit(Readable.from([gzipSync(text)]))) entries.push(e);
    assert.equal(entries.length, 3);
    assert.equal(entries[1]!.name!.toString(), 'x');
    assert.equal(entries[1]!.size, 2);
    assert.equal(entries[2]!.payload!.length, 0);
  });
});

/** A ustar entry whose name bytes are not UTF-8 (the builder only takes strings). */
function rawNameEntry(name: Buffer): Buffer {
  const b = Buffer.from(buildTar([{ name: 'placeholder', body: '' }], { noTrailer: true }));
  b.fill(0, 0, 100);
  name.copy(b, 0);
  b.fill(0x20, 148, 156);
  let s = 0;
  for (const x of b.subarray(0, 512)) s += x;
  b.write(s.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return b;
}

describe('tar-split recorded on the worker thread', () => {
  it('produces the same record and diffID as the inline path, and reports errors', async (t) => {
    const { recordingOptions } = await import('../../src/archive/record.js');
    const saved = recordingOptions.offThreadAfter;
    t.after(() => { recordingOptions.offThreadAfter = saved; });
    const tar = buildTar(Array.from({ length: 50 }, (_, i) => ({ name: `d${i % 5}/f${i}`, body: Buffer.alloc(i * 1000, i) })), { gnuPadTo10240: true, trailing: Buffer.from('tail') });
    const chunks: Buffer[] = [];
    for (let i = 0; i < tar.length; i += 4096) chunks.push(tar.subarray(i, i + 4096));
    recordingOptions.offThreadAfter = Infinity;
    const inline = await tarSplitLines(t, chunks);
    recordingOptions.offThreadAfter = 10_000; // moves to the worker after a few chunks
    const offThread = await tarSplitLines(t, chunks);
    assert.deepEqual(offThread, inline);
    const res = await unpackLayer(Readable.from(chunks), { target: tempDir(t), whiteouts: 'overlay', tarSplit: new PassThrough() });
    const { createHash } = await import('node:crypto');
    assert.equal(res.diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`);
    const dup = buildTar([{ name: 'big', body: Buffer.alloc(50_000) }, { name: 'big', body: 'again' }]);
    await assert.rejects(
      unpackLayer(Readable.from([dup.subarray(0, 20_000), dup.subarray(20_000)]), { target: tempDir(t), whiteouts: 'delete', tarSplit: new PassThrough() }),
      (err: unknown) => err instanceof InvalidArchiveError && /duplicates of file paths not supported/.test((err as Error).message),
    );
  });
});
