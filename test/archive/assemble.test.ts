import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { assembleLayer, assembleLayerSync, unpackLayer, type WhiteoutFormat } from '../../src/archive/layer.js';
import { tarSplitTarSize } from '../../src/archive/tar-split.js';
import { encodeHeader, type TarHeader } from '../../src/archive/tar-header.js';
import { DigestMismatchError, NotFoundError } from '../../src/errors.js';
import { native } from '../../src/native/addon.js';
import { buildTar } from '../helpers/tar-builder.js';

const isRoot = process.getuid?.() === 0;

function tempDir(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'strata-asm-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function addonReady(): boolean {
  try {
    native();
    return true;
  } catch {
    return false;
  }
}

/** Unpacks `tar` into a fresh dir; returns the dir, the tar-split bytes and the diffID. */
async function unpack(t: TestContext, tar: Buffer, whiteouts: WhiteoutFormat = 'overlay', chunk = 7777) {
  const dir = tempDir(t);
  const sink = new PassThrough();
  const split = collect(sink);
  const chunks: Buffer[] = [];
  for (let i = 0; i < tar.length; i += chunk) chunks.push(tar.subarray(i, i + chunk));
  const res = await unpackLayer(Readable.from(chunks), { target: dir, whiteouts, tarSplit: sink });
  return { dir, tarSplit: await split, diffId: res.diffId };
}

function syncAssemble(tarSplit: Buffer, dir: string): Buffer {
  const out = Buffer.alloc(64 << 10);
  const parts: Buffer[] = [];
  assembleLayerSync(tarSplit, dir, out, (n) => parts.push(Buffer.from(out.subarray(0, n))));
  return Buffer.concat(parts);
}

async function roundTrip(t: TestContext, tar: Buffer, whiteouts: WhiteoutFormat = 'overlay'): Promise<void> {
  const { dir, tarSplit, diffId } = await unpack(t, tar, whiteouts);
  const back = await collect(assembleLayer(Readable.from([tarSplit]), dir));
  assert.equal(back.length, tar.length);
  assert.ok(back.equals(tar), 'reassembled bytes differ');
  assert.equal(`sha256:${createHash('sha256').update(back).digest('hex')}`, diffId);
  // The worker's synchronous path, with a buffer small enough to split headers and payloads.
  const out = Buffer.alloc(700);
  const parts: Buffer[] = [];
  assembleLayerSync(tarSplit, dir, out, (n) => parts.push(Buffer.from(out.subarray(0, n))));
  assert.ok(Buffer.concat(parts).equals(tar), 'synchronously reassembled bytes differ');
  assert.equal(tarSplitTarSize(tarSplit), tar.length);
}

function goHeader(over: Partial<TarHeader>): TarHeader {
  return { name: '', linkname: '', typeflag: '0', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1700000000, uname: '', gname: '', devmajor: 0, devminor: 0, ...over };
}

/** A tar written the way Go's archive/tar (Docker) writes it. */
function goTar(entries: Array<Partial<TarHeader> & { body?: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.body ?? Buffer.alloc(0);
    const h = goHeader({ ...e, size: e.typeflag === undefined || e.typeflag === '0' ? body.length : 0 });
    parts.push(encodeHeader(h));
    if (body.length) parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

describe('assembleLayer: byte-identical reassembly', () => {
  it('Go/Docker-written tar with PAX headers, long names, xattrs, hard links', async (t) => {
    const long = `${'p'.repeat(130)}/${'q'.repeat(110)}`;
    const xattrs = new Map([['user.k', Buffer.from('v')]]);
    await roundTrip(t, goTar([
      { name: 'd/', typeflag: '5', mode: 0o755 },
      { name: 'd/f', body: Buffer.from('hello\n') },
      { name: `${long}`, body: Buffer.alloc(70_000, 3) },
      { name: 'd/caf\u00e9', body: Buffer.from('unicode name') },
      { name: 'd/x', body: Buffer.from('x'), xattrs },
      { name: 'd/h', typeflag: '1', linkname: 'd/f' },
      { name: 'd/s', typeflag: '2', linkname: `../${'t'.repeat(200)}` },
    ]));
  });

  it('GNU tar output (gnu and posix formats, 10240-byte records)', async (t) => {
    if (spawnSync('tar', ['--version']).status !== 0) return t.skip('GNU tar is not installed');
    const dir = tempDir(t);
    const src = join(dir, 'src');
    const long = `${'a'.repeat(100)}/${'b'.repeat(100)}`;
    mkdirSync(join(src, long), { recursive: true });
    writeFileSync(join(src, long, 'f'), Buffer.alloc(12345, 9));
    writeFileSync(join(src, 'small'), 'abc');
    linkSync(join(src, 'small'), join(src, 'small-link'));
    symlinkSync(`${'c'.repeat(150)}`, join(src, 'sym'));
    writeFileSync(join(src, 'exec'), '#!/bin/sh\n');
    chmodSync(join(src, 'exec'), 0o755);
    for (const format of ['gnu', 'posix']) {
      const out = join(dir, `${format}.tar`);
      const r = spawnSync('tar', ['-C', src, `--format=${format}`, '-cf', out, '.'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const bytes = readFileSync(out);
      assert.equal(bytes.length % 10240, 0, 'GNU tar pads to its record size');
      await roundTrip(t, bytes);
    }
  });

  it('whiteouts in overlay form (nothing to read for .wh. entries)', async (t) => {
    if (!isRoot || !addonReady()) return t.skip('needs root and the native addon (mknod)');
    await roundTrip(t, goTar([
      { name: 'etc/', typeflag: '5', mode: 0o755 },
      { name: 'etc/.wh.passwd', mode: 0o600 },
      { name: 'var/', typeflag: '5', mode: 0o755 },
      { name: 'var/.wh..wh..opq', mode: 0o755, mtime: 0 },
      { name: 'var/new', body: Buffer.from('n') },
    ]));
  });

  it('delete-mode trees, trailing garbage, global headers, empty layers', async (t) => {
    await roundTrip(t, buildTar([{ name: 'a/' }, { name: 'a/b', body: 'b' }], { trailing: Buffer.from('garbage after the end') }), 'delete');
    await roundTrip(t, buildTar([{ name: 'pax_global_header', type: 'g', body: '16 comment=abcd\n' }, { name: 'f', body: 'x' }]), 'delete');
    await roundTrip(t, Buffer.alloc(1024), 'delete');
    await roundTrip(t, buildTar([{ name: 'big', body: Buffer.alloc(3 << 20, 1) }], { gnuPadTo10240: true, trailing: Buffer.alloc(3 << 20) }));
  });

  it('names that look like record keys do not confuse the tar size', async (t) => {
    await roundTrip(t, buildTar([
      { name: 'a,"size":99999,"payload":"x"', body: 'one' },
      { name: 'b\\",\\"size\\":7', body: 'two' },
      { name: 'empty', body: '' },
    ]));
  });

  it('a hard link whose header carries a size reassembles without reading anything', async (t) => {
    // Some writers put the target's size on hard link headers; Go reads no payload for them.
    const tar = buildTar([{ name: 'f', body: 'data' }, { name: 'h', type: '1', linkname: 'f', size: 4 }]);
    await roundTrip(t, tar);
  });

  it('honours backpressure from a slow consumer', async (t) => {
    const tar = buildTar(Array.from({ length: 40 }, (_, i) => ({ name: `f${i}`, body: Buffer.alloc(200_000, i) })));
    const { dir, tarSplit } = await unpack(t, tar, 'overlay', 65536);
    const parts: Buffer[] = [];
    let maxBuffered = 0;
    const src = assembleLayer(Readable.from([tarSplit]), dir);
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, cb) {
        parts.push(chunk);
        maxBuffered = Math.max(maxBuffered, src.readableLength);
        setImmediate(cb);
      },
    });
    await pipeline(src, slow);
    assert.ok(Buffer.concat(parts).equals(tar));
    assert.ok(maxBuffered <= 8 << 20, `buffered ${maxBuffered} bytes`);
  });
});

describe('assembleLayer: integrity', () => {
  it('fails with "file integrity checksum failed" when a payload changed', async (t) => {
    const { dir, tarSplit } = await unpack(t, buildTar([{ name: 'a/file', body: 'original' }]));
    writeFileSync(join(dir, 'a/file'), 'tampered');
    await assert.rejects(collect(assembleLayer(Readable.from([tarSplit]), dir)), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError);
      assert.equal((err as Error).message, 'file integrity checksum failed for "a/file"');
      return true;
    });
    writeFileSync(join(dir, 'a/file'), 'short');
    await assert.rejects(collect(assembleLayer(Readable.from([tarSplit]), dir)), /file integrity checksum failed for "a\/file"/);
    // The synchronous path checks sizes; content is left to the caller's diffID check.
    assert.throws(() => syncAssemble(tarSplit, dir), /file integrity checksum failed for "a\/file"/);
  });

  it('fails clearly when a payload file is missing', async (t) => {
    const { dir, tarSplit } = await unpack(t, buildTar([{ name: 'gone', body: 'x' }]));
    rmSync(join(dir, 'gone'));
    await assert.rejects(collect(assembleLayer(Readable.from([tarSplit]), dir)), NotFoundError);
    assert.throws(() => syncAssemble(tarSplit, dir), NotFoundError);
  });

  it('never follows a symlink planted in the layer dir', async (t) => {
    const { dir, tarSplit } = await unpack(t, buildTar([{ name: 'a/' }, { name: 'a/secret', body: 'same!' }]));
    const elsewhere = tempDir(t);
    writeFileSync(join(elsewhere, 'secret'), 'same!');
    rmSync(join(dir, 'a'), { recursive: true });
    symlinkSync(elsewhere, join(dir, 'a'));
    await assert.rejects(collect(assembleLayer(Readable.from([tarSplit]), dir)), /is a symlink/);
    assert.throws(() => syncAssemble(tarSplit, dir), /is a symlink/);
    rmSync(join(dir, 'a'));
    mkdirSync(join(dir, 'a'));
    symlinkSync(join(elsewhere, 'secret'), join(dir, 'a/secret'));
    await assert.rejects(collect(assembleLayer(Readable.from([tarSplit]), dir)), NotFoundError);
    assert.throws(() => syncAssemble(tarSplit, dir), NotFoundError);
  });

  it('rejects a corrupt tar-split record', async (t) => {
    await assert.rejects(collect(assembleLayer(Readable.from([Buffer.from('not gzip')]), tempDir(t))), /tar-split/);
    assert.throws(() => syncAssemble(Buffer.from('not gzip'), tempDir(t)), /tar-split/);
    assert.throws(() => tarSplitTarSize(Buffer.from('not gzip')), /tar-split/);
  });
});
