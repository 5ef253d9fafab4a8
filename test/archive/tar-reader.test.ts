import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { indexTarFile, readTarEntries, TarParser } from '../../src/archive/tar-reader.js';
import { InvalidArchiveError } from '../../src/errors.js';
import { buildTar, type TarSpec } from '../helpers/tar-builder.js';

function tempDir(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'strata-rd-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const specs: TarSpec[] = [
  { name: 'dir/', mode: 0o755 },
  { name: 'dir/file', body: 'hello\n', uid: 1000, gid: 1000, mtime: 1_700_000_000 },
  { name: '././@LongLink', type: 'L', body: `${'long/'.repeat(30)}name\0` },
  { name: 'truncated-in-ustar', body: Buffer.alloc(1000, 7) },
  { name: '././@LongLink', type: 'K', body: `${'t'.repeat(200)}\0` },
  { name: 'sym', type: '2', linkname: 'short' },
  { name: 'pax_global_header', type: 'g', body: '16 comment=abcd\n' },
  { name: 'p', body: 'pax body', pax: { path: 'pax/\u00fcber', mtime: '1700000000.5', 'SCHILY.xattr.user.a': 'b' } },
  { name: 'empty', body: '' },
];

const expected = [
  { name: 'dir/', typeflag: '5', body: '' },
  { name: 'dir/file', typeflag: '0', body: 'hello\n' },
  { name: `${'long/'.repeat(30)}name`, typeflag: '0', body: Buffer.alloc(1000, 7).toString() },
  { name: 'sym', typeflag: '2', body: '', linkname: 't'.repeat(200) },
  { name: 'pax_global_header', typeflag: 'g', body: '' },
  { name: 'pax/\u00fcber', typeflag: '0', body: 'pax body' },
  { name: 'empty', typeflag: '0', body: '' },
];

async function readAll(input: Iterable<Buffer> | AsyncIterable<Buffer>, skipBodies = false) {
  const out: Array<{ name: string; typeflag: string; body: string; linkname: string; mtime: number; xattr?: string }> = [];
  for await (const { header, body } of readTarEntries(input)) {
    let text = '';
    if (!skipBodies) for await (const c of body) text += c.toString();
    out.push({ name: header.name, typeflag: header.typeflag, body: text, linkname: header.linkname, mtime: header.mtime, xattr: header.xattrs?.get('user.a')?.toString() });
  }
  return out;
}

describe('readTarEntries', () => {
  it('applies PAX records and GNU long names, surfaces global headers', async () => {
    const got = await readAll([buildTar(specs)]);
    assert.deepEqual(got.map((e) => e.name), expected.map((e) => e.name));
    assert.deepEqual(got.map((e) => e.typeflag), expected.map((e) => e.typeflag));
    assert.deepEqual(got.map((e) => e.body), expected.map((e) => e.body));
    assert.equal(got[3]!.linkname, 't'.repeat(200));
    assert.equal(got[5]!.mtime, 1_700_000_000.5);
    assert.equal(got[5]!.xattr, 'b');
  });

  it('gives the same result however the input is chunked, and when bodies are skipped', async () => {
    const tar = buildTar(specs);
    const want = await readAll([tar]);
    for (const size of [1, 7, 511, 513, 4096]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < tar.length; i += size) chunks.push(tar.subarray(i, i + size));
      assert.deepEqual(await readAll(Readable.from(chunks)), want, `chunk ${size}`);
    }
    const skipped = await readAll([tar], true);
    assert.deepEqual(skipped.map((e) => e.name), want.map((e) => e.name));
  });

  it('ends cleanly without end-of-archive blocks (as Go does) but not mid-entry', async () => {
    const noTrailer = buildTar([{ name: 'a', body: 'x'.repeat(1000) }], { noTrailer: true });
    assert.deepEqual((await readAll([noTrailer])).map((e) => e.name), ['a']);
    // Cut inside the padding after the payload: Go (and so Docker) take it as the end.
    assert.deepEqual((await readAll([noTrailer.subarray(0, 512 + 1000 + 5)])).map((e) => e.name), ['a']);
    await assert.rejects(readAll([noTrailer.subarray(0, 600)]), InvalidArchiveError);
    await assert.rejects(readAll([noTrailer.subarray(0, 300)]), /truncated/);
  });

  it('does not read past the end-of-archive marker', async () => {
    const tar = buildTar([{ name: 'a', body: 'x' }], { trailing: Buffer.from('not a tar header at all') });
    assert.deepEqual((await readAll([tar])).map((e) => e.name), ['a']);
  });
});

describe('TarParser raw accounting', () => {
  it('reports every byte exactly once as raw, payload or trailing', () => {
    const tar = buildTar(specs, { gnuPadTo10240: true, trailing: Buffer.from('tail') });
    let raw = 0;
    let data = 0;
    let trailing = 0;
    const p = new TarParser({ header() {}, data: (c) => { data += c.length; }, entryEnd() {}, raw: (c) => { raw += c.length; }, trailing: (c) => { trailing += c.length; } });
    for (let i = 0; i < tar.length; i += 333) p.write(tar.subarray(i, i + 333));
    p.finish();
    assert.equal(raw + data + trailing, tar.length);
    assert.equal(data, 6 + 1000 + 8);
  });
});

describe('indexTarFile', () => {
  it('lists entries with payload offsets without reading payloads', async (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'x.tar');
    const tar = buildTar(specs);
    writeFileSync(path, tar);
    const idx = await indexTarFile(path);
    assert.deepEqual(idx.map((e) => e.header.name), expected.map((e) => e.name));
    const bytes = readFileSync(path);
    idx.forEach((e, i) => {
      assert.equal(bytes.subarray(e.offset, e.offset + e.size).toString(), expected[i]!.body, e.header.name);
    });
  });

  it('refuses truncated files', async (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'x.tar');
    writeFileSync(path, buildTar([{ name: 'a', body: Buffer.alloc(2000) }]).subarray(0, 1500));
    await assert.rejects(indexTarFile(path), /truncated/);
  });
});
