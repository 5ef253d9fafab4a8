/**
 * Layer store against real drivers (overlay2 and vfs) on a temp data root: Docker's layout
 * byte for byte, register → tarStream round trips, dedup, chains, gc and depth limits.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';

import { overlay2 } from '../../src/drivers/overlay2.js';
import { vfs } from '../../src/drivers/vfs.js';
import type { Driver, DriverFactory } from '../../src/drivers/driver.js';
import { LayerStore, type ChainLayer } from '../../src/layers/layer-store.js';
import { buildTar, chainIdsOf, sha256, type TarEntry } from '../helpers/fixtures.js';

const EMPTY_TAR_DIFF = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';
const EMPTY_STREAM_DIFF = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const CHAIN_EMPTY_PAIR = 'sha256:33b3e894f3d840843a86495314bf58ac707860d3553f5535922e180a451dc751';

const T = 1_700_000_000;
const dir = (name: string, extra: Partial<TarEntry> = {}): TarEntry => ({ name, type: 'dir', mode: 0o755, mtime: T, ...extra });
const file = (name: string, data: string | Buffer, extra: Partial<TarEntry> = {}): TarEntry => ({ name, data, mode: 0o644, mtime: T, ...extra });
const whiteout = (d: string, base: string): TarEntry => file(`${d}/.wh.${base}`, '', { mode: 0o600 });

/** A base layer with most entry kinds, GNU-style padding after the end marker. */
function baseTar(): Buffer {
  return buildTar(
    [
      dir('etc/'),
      file('etc/hostname', 'strata\n'),
      file('etc/big.bin', Buffer.alloc(300_000, 7)),
      dir('usr/'),
      dir('usr/bin/'),
      file('usr/bin/tool', '#!/bin/sh\necho hi\n', { mode: 0o755 }),
      { name: 'usr/bin/alias', type: 'symlink', linkname: 'tool', mode: 0o777, mtime: T },
      { name: 'usr/bin/hard', type: 'hardlink', linkname: 'usr/bin/tool', mode: 0o755, mtime: T },
      dir('var/'),
      dir('var/cache/'),
      file('var/cache/a', 'a'),
      file(`deep/${'n'.repeat(120)}/file`, 'long name via PAX\n'),
      file('empty', ''),
    ],
    { blockingFactor: 20 },
  );
}

/** A child layer: modifies, deletes (whiteout) and makes a dir opaque. */
function childTar(): Buffer {
  return buildTar([
    dir('etc/'),
    file('etc/hostname', 'changed\n'),
    whiteout('etc', 'big.bin'),
    dir('var/cache/'),
    file('var/cache/.wh..wh..opq', '', { mode: 0o755, mtime: 0 }),
    file('var/cache/b', 'b'),
  ]);
}

/** The base tar and a child on it, registered. */
async function registerBaseAndChild(env: Env) {
  const base = baseTar();
  const child = childTar();
  const l1 = await env.store.register(Readable.from([base]), undefined);
  const l2 = await env.store.register(Readable.from([child]), l1.chainId);
  return { base, child, l1, l2 };
}

function tarOf(i: number): Buffer {
  return buildTar([dir(`l${i}/`), file(`l${i}/data`, `layer ${i}\n`.repeat(100 + i))]);
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

interface Env {
  root: string;
  imageRoot: string;
  driver: Driver;
  store: LayerStore;
  reopen(): Promise<LayerStore>;
}

const FACTORIES: DriverFactory[] = [overlay2, vfs];

async function setup(t: TestContext, factory: DriverFactory): Promise<Env | undefined> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'strata-layers-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const probe = await factory.probe(root);
  if (!probe.ok) {
    t.skip(`${factory.name}: ${probe.reason}`);
    return undefined;
  }
  const driver = await factory.open(root);
  const imageRoot = path.join(root, 'image', driver.name);
  const store = await LayerStore.open({ imageRoot, driver });
  return { root, imageRoot, driver, store, reopen: () => LayerStore.open({ imageRoot, driver }) };
}

/** Asserts that nothing is staged and that every driver dir belongs to a listed layer. */
async function assertClean(env: Env): Promise<void> {
  assert.deepEqual(await readdir(path.join(env.imageRoot, 'layerdb', 'tmp')), [], 'no staging leftovers');
  const cacheIds = (await env.store.list()).map((l) => l.cacheId).sort();
  assert.deepEqual((await env.driver.list()).sort(), cacheIds, 'driver dirs = layers');
  const names = await readdir(path.join(env.imageRoot, 'layerdb', 'sha256'));
  assert.deepEqual(names.filter((n) => n.endsWith('-removing')), []);
}

function modeOf(p: string): Promise<number> {
  return stat(p).then((s) => s.mode & 0o7777);
}

for (const factory of FACTORIES) {
  test(`${factory.name}: layout and file bytes match Docker's`, async (t) => {
    const env = await setup(t, factory);
    if (!env) return;
    const { imageRoot, store } = env;
    assert.equal(await modeOf(path.join(env.root, 'image')), 0o700);
    assert.equal(await modeOf(imageRoot), 0o700);
    const db = path.join(imageRoot, 'layerdb');
    assert.equal(await modeOf(db), 0o700);
    assert.equal(await modeOf(path.join(db, 'tmp')), 0o755);
    assert.equal(await modeOf(path.join(db, 'sha256')), 0o755);
    assert.equal(await modeOf(path.join(db, 'mounts')), 0o755);

    const base = baseTar();
    const l1 = await store.register(Readable.from([base]), undefined);
    const descriptor = { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: sha256('blob'), size: 42 };
    const l2 = await store.register(Readable.from([childTar()]), l1.chainId, { descriptor });
    const [c1, c2] = chainIdsOf([sha256(base), sha256(childTar())]);
    assert.equal(l1.chainId, c1);
    assert.equal(l1.diffId, sha256(base));
    assert.equal(l2.chainId, c2);
    assert.equal(l2.parent, c1);
    assert.equal(l1.depth, 1);
    assert.equal(l2.depth, 2);

    const d1 = path.join(db, 'sha256', c1!.slice(7));
    const d2 = path.join(db, 'sha256', c2!.slice(7));
    // Docker's files, plus strata's record of the tar's length (save sizes archives from it).
    assert.deepEqual((await readdir(d1)).sort(), ['cache-id', 'diff', 'size', 'strata-tar-size', 'tar-split.json.gz']);
    assert.deepEqual((await readdir(d2)).sort(), ['cache-id', 'descriptor.json', 'diff', 'parent', 'size', 'strata-tar-size', 'tar-split.json.gz']);
    assert.equal(await readFile(path.join(d1, 'strata-tar-size'), 'utf8'), String(base.length));
    assert.equal(await modeOf(d1), 0o700);
    for (const f of await readdir(d2)) assert.equal(await modeOf(path.join(d2, f)), 0o644, f);
    assert.equal(await readFile(path.join(d1, 'diff'), 'utf8'), sha256(base));
    assert.match(await readFile(path.join(d1, 'cache-id'), 'utf8'), /^[0-9a-f]{64}$/);
    assert.equal(await readFile(path.join(d1, 'cache-id'), 'utf8'), l1.cacheId);
    assert.equal(await readFile(path.join(d2, 'parent'), 'utf8'), c1);
    assert.equal(await readFile(path.join(d1, 'size'), 'utf8'), String(l1.size));
    assert.match(String(l1.size), /^[1-9][0-9]*$/);
    assert.equal(
      await readFile(path.join(d2, 'descriptor.json'), 'utf8'),
      `{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":42,"digest":"${descriptor.digest}"}`,
    );
    assert.deepEqual(await store.descriptor(l2.chainId), descriptor);

    // tar-split: gzip of JSON lines, first a header segment, then the first file entry.
    const lines = gunzipSync(await readFile(path.join(d1, 'tar-split.json.gz'))).toString('utf8').split('\n');
    assert.equal(lines.at(-1), '', 'newline-terminated');
    const first = JSON.parse(lines[0]!) as { type: number; payload: string; position: number };
    assert.equal(first.type, 2);
    assert.equal(first.position, 0);
    assert.deepEqual(Buffer.from(first.payload, 'base64'), base.subarray(0, 512));
    assert.deepEqual(JSON.parse(lines[1]!), { type: 1, name: 'etc/', payload: null, position: 1 });

    assert.ok(await env.driver.exists(l1.cacheId));
    assert.deepEqual(await store.list(), [l1, l2].sort((a, b) => (a.chainId < b.chainId ? -1 : 1)));
    assert.deepEqual(await (await env.reopen()).get(l2.chainId), l2);
    await assertClean(env);
  });

  test(`${factory.name}: register → tarStream is byte-identical`, async (t) => {
    const env = await setup(t, factory);
    if (!env) return;
    const { base, child, l1, l2 } = await registerBaseAndChild(env);
    assert.deepEqual(await collect(await env.store.tarStream(l1.chainId)), base);
    assert.deepEqual(await collect(await env.store.tarStream(l2.chainId)), child);
    // A gzip input registers under the diffID of the uncompressed bytes.
    const l3 = await env.store.register(Readable.from([gzipSync(tarOf(3))]), l2.chainId);
    assert.equal(l3.diffId, sha256(tarOf(3)));
    assert.deepEqual(await collect(await env.store.tarStream(l3.chainId)), tarOf(3));
  });

  test(`${factory.name}: writeTarAt puts the same bytes at an offset of a file; tarSize is their length`, async (t) => {
    const env = await setup(t, factory);
    if (!env) return;
    const { base, child, l1, l2 } = await registerBaseAndChild(env);
    assert.equal(await env.store.tarSize(l1.chainId), base.length);
    assert.equal(await env.store.tarSize(l2.chainId), child.length);
    // A layer Docker registered has no strata-tar-size: it is worked out from tar-split.
    await rm(path.join(env.imageRoot, 'layerdb', 'sha256', l2.chainId.slice(7), 'strata-tar-size'));
    assert.equal(await env.store.tarSize(l2.chainId), child.length);
    const file = path.join(env.root, 'out.bin');
    const fd = openSync(file, 'w+');
    try {
      // Both at once, as `save -o` runs them, into slots that abut.
      const progress: number[] = [];
      await Promise.all([
        env.store.writeTarAt(l1.chainId, { fd, position: 100, size: base.length }),
        env.store.writeTarAt(l2.chainId, { fd, position: 100 + base.length, size: child.length }, (n) => progress.push(n)),
      ]);
      assert.equal(progress.at(-1), child.length);
      // A slot of the wrong size is refused rather than overrun.
      await assert.rejects(env.store.writeTarAt(l2.chainId, { fd, position: 0, size: child.length - 512 }), /longer than its recorded/);
    } finally {
      closeSync(fd);
    }
    const out = await readFile(file);
    assert.ok(out.subarray(100, 100 + base.length).equals(base));
    assert.ok(out.subarray(100 + base.length, 100 + base.length + child.length).equals(child));
  });

  test(`${factory.name}: chainID vectors from the facts (empty tar, empty stream)`, async (t) => {
    const env = await setup(t, factory);
    if (!env) return;
    const l1 = await env.store.register(Readable.from([Buffer.alloc(1024)]), undefined);
    assert.equal(l1.chainId, EMPTY_TAR_DIFF);
    const l2 = await env.store.register(Readable.from([]), l1.chainId);
    assert.equal(l2.diffId, EMPTY_STREAM_DIFF);
    assert.equal(l2.chainId, CHAIN_EMPTY_PAIR);
    assert.ok(await stat(path.join(env.imageRoot, 'layerdb', 'sha256', CHAIN_EMPTY_PAIR.slice(7))));
  });

  test(`${factory.name}: registering the same layer twice stores it once`, async (t) => {
    const env = await setup(t, factory);
    if (!env) return;
    const a = await env.store.register(Readable.from([baseTar()]), undefined);
    const b = await env.store.register(Readable.from([baseTar()]), undefined);
    assert.deepEqual(b, a);
    // Concurrently, in one process: both finish the expensive part, one copy survives.
    const [c, d] = await Promise.all([
      env.store.register(Readable.from([childTar()]), a.chainId),
      env.store.register(Readable.from([childTar()]), a.chainId),
    ]);
    assert.deepEqual(c, d);
    assert.equal((await env.store.list()).length, 2);
    await assertClean(env);
  });

  test(`${factory.name}: failures leave nothing behind`, async (t) => {
    const env = await setup(t, factory);
    if (!env) return;
    const missing = sha256('no such layer');
    await assert.rejects(env.store.register(Readable.from([tarOf(1)]), missing), {
      code: 'ERR_NOT_FOUND',
      message: 'layer does not exist',
    });
    await assert.rejects(
      env.store.register(Readable.from([tarOf(1)]), undefined, { expectedDiffId: sha256('other') }),
      { code: 'ERR_DIGEST_MISMATCH' },
    );
    await assert.rejects(env.store.register(Readable.from([Buffer.from('this is not a tar archive at all'.repeat(40))]), undefined));
    const failing = new Readable({
      read() {
        this.push(tarOf(2).subarray(0, 1024));
        this.destroy(new Error('source broke'));
      },
    });
    await assert.rejects(env.store.register(failing, undefined), /source broke/);
    assert.deepEqual(await env.store.list(), []);
    await assertClean(env);
  });

  for (const concurrency of [1, 2]) {
    test(`${factory.name}: registerChain (concurrency ${concurrency}) skips stored layers, verifies diffIDs, returns the chain`, async (t) => {
      const env = await setup(t, factory);
      if (!env) return;
      const options = { concurrency };
      const tars = [0, 1, 2, 3, 4].map(tarOf);
      const diffIds = tars.map((b) => sha256(b));
      const chain = chainIdsOf(diffIds);
      const opened: number[] = [];
      const layer = (i: number): ChainLayer => ({
        diffId: diffIds[i]!,
        open: async () => {
          opened.push(i);
          return Readable.from([tars[i]!]);
        },
      });
      const progress = new Map<number, number>();
      const first = await env.store.registerChain([0, 1, 2].map(layer), {
        ...options,
        onProgress: (i, bytes) => progress.set(i, bytes),
      });
      assert.deepEqual(first.map((l) => l.chainId), chain.slice(0, 3));
      assert.deepEqual(first.map((l) => l.depth), [1, 2, 3]);
      assert.deepEqual([...progress.keys()].sort(), [0, 1, 2]);
      assert.equal(progress.get(2), tars[2]!.length);

      opened.length = 0;
      const all = await env.store.registerChain([0, 1, 2, 3, 4].map(layer), options);
      assert.deepEqual(opened.sort(), [3, 4], 'stored layers are never opened');
      assert.deepEqual(all.map((l) => l.chainId), chain);
      assert.deepEqual(all.slice(0, 3), first);
      assert.equal(all[4]!.parent, chain[3]);
      for (let i = 0; i < 5; i++) assert.deepEqual(await collect(await env.store.tarStream(chain[i]!)), tars[i]);

      // Layers given as byte ranges of a larger file are read by the workers themselves.
      const packed = path.join(env.root, 'packed.bin');
      const five = buildTar([file('five', '5'.repeat(5000))]);
      const six = buildTar([file('six', '6')]);
      await writeFile(packed, Buffer.concat([Buffer.from('junk'), five, Buffer.from('more junk'), six, Buffer.from('tail')]));
      const ranged = await env.store.registerChain([
        ...[0, 1, 2, 3, 4].map(layer),
        { diffId: sha256(five), file: { path: packed, start: 4, end: 4 + five.length } },
        { diffId: sha256(six), file: { path: packed, start: 13 + five.length, end: 13 + five.length + six.length } },
      ], options);
      assert.equal(ranged.length, 7);
      assert.deepEqual(await collect(await env.store.tarStream(ranged[6]!.chainId)), six);
      await env.store.gc(new Set([chain[4]!]));

      // A wrong diffID anywhere fails the whole call and leaves only what was stored before.
      const bad: ChainLayer[] = [0, 1, 2, 3, 4].map(layer);
      const extra = [buildTar([file('x', 'x')]), buildTar([file('y', 'y')])];
      bad.push({ diffId: sha256(extra[0]!), open: async () => Readable.from([extra[0]!]) });
      bad.push({ diffId: sha256('lie'), open: async () => Readable.from([extra[1]!]) });
      await assert.rejects(env.store.registerChain(bad, options), {
        code: 'ERR_DIGEST_MISMATCH',
        message: `invalid diffID for layer 6: expected "${sha256('lie')}", got "${sha256(extra[1]!)}"`,
      });
      assert.equal((await env.store.list()).length, 5);
      // A source that breaks mid-way fails the call with its own error.
      const broken: ChainLayer[] = [0, 1, 2, 3, 4].map(layer);
      broken.push({ diffId: sha256(extra[0]!), open: async () => Readable.from([extra[0]!]) });
      broken.push({
        diffId: sha256(extra[1]!),
        open: async () =>
          new Readable({
            read() {
              this.push(extra[1]!.subarray(0, 512));
              this.destroy(new Error('source broke'));
            },
          }),
      });
      await assert.rejects(env.store.registerChain(broken, options), /source broke/);
      assert.equal((await env.store.list()).length, 5);
      await assertClean(env);
    });
  }

  test(`${factory.name}: gc removes unkept layers top first and respects RW mounts`, async (t) => {
    const env = await setup(t, factory);
    if (!env) return;
    const { store } = env;
    // A ← B ← C, and A ← D
    const a = await store.register(Readable.from([tarOf(0)]), undefined);
    const b = await store.register(Readable.from([tarOf(1)]), a.chainId);
    const c = await store.register(Readable.from([tarOf(2)]), b.chainId);
    const d = await store.register(Readable.from([tarOf(3)]), a.chainId);

    assert.deepEqual(await store.gc(new Set([c.chainId])), [d.chainId]);
    assert.equal(await env.driver.exists(d.cacheId), false);

    // An RW layer whose parent is B keeps B and A once C goes.
    const mount = path.join(env.imageRoot, 'layerdb', 'mounts', 'ctr1');
    await mkdir(mount, { recursive: true });
    await writeFile(path.join(mount, 'parent'), b.chainId);
    assert.deepEqual(await store.gc(new Set()), [c.chainId]);
    await rm(mount, { recursive: true });
    assert.deepEqual(await store.gc(new Set()), [b.chainId, a.chainId], 'top first');
    assert.deepEqual(await store.list(), []);
    await assertClean(env);
    assert.deepEqual(await store.gc(new Set()), []);
  });

  test(`${factory.name}: get/list skip incomplete or inconsistent dirs; tarStream detects tampering`, async (t) => {
    const env = await setup(t, factory);
    if (!env) return;
    const { store } = env;
    const l = await store.register(Readable.from([baseTar()]), undefined);
    const sha = path.join(env.imageRoot, 'layerdb', 'sha256');
    // Only `diff`: Docker skips such a dir, so do we.
    const half = sha256('half');
    await mkdir(path.join(sha, half.slice(7)));
    await writeFile(path.join(sha, half.slice(7), 'diff'), half);
    // A child whose parent is missing.
    const orphanDiff = sha256('o');
    const orphan = sha256(`${half} ${orphanDiff}`);
    await mkdir(path.join(sha, orphan.slice(7)));
    await writeFile(path.join(sha, orphan.slice(7), 'diff'), orphanDiff);
    await writeFile(path.join(sha, orphan.slice(7), 'size'), '1');
    await writeFile(path.join(sha, orphan.slice(7), 'cache-id'), 'a'.repeat(64));
    await writeFile(path.join(sha, orphan.slice(7), 'parent'), half);
    assert.equal(await store.get(half), undefined);
    assert.equal(await store.get(orphan), undefined);
    assert.deepEqual((await store.list()).map((x) => x.chainId), [l.chainId]);

    // Same-size header change in the tar-split record: payload CRCs still pass, the diffID
    // check at the end of the stream does not.
    const tsPath = path.join(sha, l.chainId.slice(7), 'tar-split.json.gz');
    const lines = gunzipSync(await readFile(tsPath)).toString('utf8').split('\n');
    const seg = JSON.parse(lines[0]!) as { payload: string };
    const bytes = Buffer.from(seg.payload, 'base64');
    bytes[0] = 'f'.charCodeAt(0); // "etc/" → "ftc/"
    seg.payload = bytes.toString('base64');
    lines[0] = JSON.stringify(seg);
    await writeFile(tsPath, gzipSync(lines.join('\n')));
    const mismatch = {
      code: 'ERR_DIGEST_MISMATCH',
      message:
        `could not verify layer data for: ${l.diffId}. This may be because internal files in the layer store were ` +
        'modified. Re-pulling or rebuilding this image may resolve the issue',
    };
    await assert.rejects(collect(await store.tarStream(l.chainId)), mismatch);
    const fd = openSync(path.join(env.root, 'out.bin'), 'w');
    try {
      await assert.rejects(store.writeTarAt(l.chainId, { fd, position: 0, size: await store.tarSize(l.chainId) }), mismatch);
    } finally {
      closeSync(fd);
    }
    await assert.rejects(store.tarStream(sha256('nothing')), { message: 'layer does not exist' });
  });
}

test('depth: 125 layers register, a 126th fails with max depth exceeded', async (t) => {
  // overlay2 when the kernel has it: its lower lists are the tighter limit (128).
  const probeRoot = await mkdtemp(path.join(os.tmpdir(), 'strata-probe-'));
  const useOverlay = (await overlay2.probe(probeRoot)).ok;
  await rm(probeRoot, { recursive: true, force: true });
  const env = await setup(t, useOverlay ? overlay2 : vfs);
  if (!env) return;
  const tars = Array.from({ length: 126 }, (_, i) => buildTar([file(`f${i}`, `${i}`)]));
  const layers: ChainLayer[] = tars.map((b) => ({ diffId: sha256(b), open: async () => Readable.from([b]) }));
  await assert.rejects(env.store.registerChain(layers), { message: 'max depth exceeded' });
  const chain = await env.store.registerChain(layers.slice(0, 125));
  assert.equal(chain.at(-1)!.depth, 125);
  await assert.rejects(env.store.register(Readable.from([tars[125]!]), chain.at(-1)!.chainId), {
    message: 'max depth exceeded',
  });
  await assertClean(env);
});
