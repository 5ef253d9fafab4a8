/**
 * RW layers (layerdb/mounts) on real overlay2 and vfs: Docker's record files, the init layer,
 * copy-on-write through the merged mount, `changes()` as docker diff reports them, commit of
 * the diff as a new layer, gc protection of the parent, removal and crash leftovers.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, unlink, writeFile, appendFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';

import { changeLetter } from '../../src/archive/changes.js';
import { overlay2 } from '../../src/drivers/overlay2.js';
import { vfs } from '../../src/drivers/vfs.js';
import type { Driver, DriverFactory } from '../../src/drivers/driver.js';
import { LayerStore } from '../../src/layers/layer-store.js';
import { mountsUnder } from '../../src/sys/mount.js';
import { buildTar, parseTar as readTar, type TarEntry } from '../helpers/fixtures.js';

const T = 1_700_000_000;
const dir = (name: string): TarEntry => ({ name, type: 'dir', mode: 0o755, mtime: T });
const file = (name: string, data: string): TarEntry => ({ name, data, mode: 0o644, mtime: T });

function imageTar(): Buffer {
  return buildTar([
    dir('etc/'),
    file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n'),
    file('etc/motd', 'hello\n'),
    dir('data/'),
    file('data/keep', 'keep\n'),
    file('data/gone', 'gone\n'),
    dir('www/'),
    file('www/index.html', '<h1>image</h1>\n'),
  ]);
}

interface Env {
  root: string;
  imageRoot: string;
  driver: Driver;
  store: LayerStore;
}

async function setup(t: TestContext, factory: DriverFactory): Promise<Env | undefined> {
  if (process.getuid?.() !== 0) {
    t.skip('needs root (mounts)');
    return undefined;
  }
  const root = await mkdtemp(path.join(os.tmpdir(), 'strata-rw-'));
  const probe = await factory.probe(root);
  if (!probe.ok) {
    await rm(root, { recursive: true, force: true });
    t.skip(`${factory.name}: ${probe.reason}`);
    return undefined;
  }
  const driver = await factory.open(root);
  const imageRoot = path.join(root, 'image', driver.name);
  const store = await LayerStore.open({ imageRoot, driver });
  t.after(async () => {
    for (const m of await mountsUnder(root)) await import('../../src/sys/mount.js').then((x) => x.unmount(m, { detach: true }));
    await rm(root, { recursive: true, force: true });
  });
  return { root, imageRoot, driver, store };
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Docker's init layer placeholders, a subset. */
async function initLayer(root: string): Promise<void> {
  await mkdir(path.join(root, 'dev', 'pts'), { recursive: true });
  await mkdir(path.join(root, 'proc'), { recursive: true });
  await writeFile(path.join(root, 'etc', 'hosts'), '');
  await writeFile(path.join(root, '.dockerenv'), '');
}

for (const factory of [overlay2, vfs]) {
  test(`${factory.name}: RW layer records, copy-on-write, changes, commit, removal`, async (t) => {
    const env = await setup(t, factory);
    if (!env) return;
    const { store, driver, imageRoot } = env;
    const base = await store.register((await import('node:stream')).Readable.from([imageTar()]), undefined);

    const rw = await store.createRWLayer('c1', base.chainId, { init: initLayer });
    // Docker's record: three files, no trailing newline.
    const rec = path.join(imageRoot, 'layerdb', 'mounts', 'c1');
    assert.deepEqual((await readdir(rec)).sort(), ['init-id', 'mount-id', 'parent']);
    assert.equal(await readFile(path.join(rec, 'mount-id'), 'utf8'), rw.info.mountId);
    assert.equal(await readFile(path.join(rec, 'init-id'), 'utf8'), `${rw.info.mountId}-init`);
    assert.equal(await readFile(path.join(rec, 'parent'), 'utf8'), base.chainId);
    assert.match(rw.info.mountId, /^[0-9a-f]{64}$/);
    await assert.rejects(store.createRWLayer('c1', base.chainId), /already exists/);

    const merged = await rw.mount();
    assert.equal(await rw.mount(), merged, 'mount is idempotent');
    assert.ok(await rw.isMounted());
    assert.equal(await readFile(path.join(merged, 'etc/motd'), 'utf8'), 'hello\n');
    assert.equal(await readFile(path.join(merged, 'etc/hosts'), 'utf8'), '', 'init layer visible');

    // A second container on the same image is isolated.
    const rw2 = await store.createRWLayer('c2', base.chainId, { init: initLayer });
    const merged2 = await rw2.mount();

    await writeFile(path.join(merged, 'new.txt'), 'new\n');
    await appendFile(path.join(merged, 'etc/motd'), 'more\n');
    await unlink(path.join(merged, 'data/gone'));
    await mkdir(path.join(merged, 'data/sub'));
    await writeFile(path.join(merged, 'data/sub/x'), 'x');

    assert.equal(await readFile(path.join(merged2, 'etc/motd'), 'utf8'), 'hello\n', 'other container unchanged');
    await assert.rejects(readFile(path.join(merged2, 'new.txt')));
    assert.equal(await readFile(path.join(merged2, 'data/gone'), 'utf8'), 'gone\n');
    // The image layer itself is untouched.
    assert.equal(await readFile(path.join(driver.layerDir(base.cacheId), 'etc/motd'), 'utf8'), 'hello\n');

    if (factory.name === 'overlay2') {
      // New files and copies land only in the upper dir; deletes are whiteouts there.
      const upper = rw.layerDir;
      assert.equal(await readFile(path.join(upper, 'new.txt'), 'utf8'), 'new\n');
      assert.equal(await readFile(path.join(upper, 'etc/motd'), 'utf8'), 'hello\nmore\n');
      const { lstat } = await import('node:fs/promises');
      const wh = await lstat(path.join(upper, 'data/gone'));
      assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'whiteout is char 0:0');
    }

    const lines = (await rw.changes()).map((c) => `${changeLetter(c.Kind)} ${c.Path}`);
    for (const expected of ['A /new.txt', 'C /etc/motd', 'D /data/gone', 'C /data', 'A /data/sub', 'A /data/sub/x']) {
      assert.ok(lines.includes(expected), `${expected} in ${JSON.stringify(lines)}`);
    }
    assert.ok(!lines.some((l) => l.includes("hosts") || l.includes("dockerenv") || l.includes("/dev")), `init files are not changes: ${lines.join(", ")}`);
    assert.ok(!lines.some((l) => l.includes('keep') || l.includes('passwd')));

    // Commit: the diff as a layer on the image layer, readable as a new stack.
    const tar = await collect(await rw.tarStream());
    const names = readTar(tar).map((e) => e.name);
    assert.ok(names.includes('new.txt') && names.includes('etc/motd') && names.includes('data/.wh.gone'), names.join(','));
    assert.ok(!names.some((n) => n.includes('hosts') || n.includes('dockerenv')));
    const committed = await store.register((await import('node:stream')).Readable.from([tar]), base.chainId);
    assert.equal(committed.parent, base.chainId);

    // gc keeps the RW layer's parent even when no image holds it.
    assert.deepEqual(await store.gc(new Set([committed.chainId])), []);
    assert.deepEqual((await store.listRWLayers()).map((l) => l.name).sort(), ['c1', 'c2']);

    await store.removeRWLayer('c1');
    await store.removeRWLayer('c2');
    await assert.rejects(store.getRWLayer('c1'), /does not exist/);
    assert.deepEqual(await mountsUnder(driver.home), [], 'nothing left mounted');
    assert.deepEqual(await readdir(path.join(imageRoot, 'layerdb', 'mounts')), []);
    assert.deepEqual(await readdir(path.join(imageRoot, 'layerdb', 'tmp')), []);
    const layerDirs = (await store.list()).map((l) => l.cacheId).sort();
    assert.deepEqual((await driver.list()).sort(), layerDirs, 'only committed layers remain in the driver');
  });

  test(`${factory.name}: recover reaps driver dirs of an RW layer whose record was lost`, async (t) => {
    const env = await setup(t, factory);
    if (!env) return;
    const { store, driver, imageRoot } = env;
    const base = await store.register((await import('node:stream')).Readable.from([imageTar()]), undefined);
    const rw = await store.createRWLayer('c1', base.chainId, { init: initLayer });
    await rw.mount();
    await rw.unmount();
    // A crash between removing the record and the driver dirs.
    await rm(path.join(imageRoot, 'layerdb', 'mounts', 'c1'), { recursive: true });
    await store.recover();
    assert.deepEqual((await driver.list()).sort(), [base.cacheId]);
  });

  test(`${factory.name}: RW layer without init sits directly on its parent (scratch too)`, async (t) => {
    const env = await setup(t, factory);
    if (!env) return;
    const { store } = env;
    const rw = await store.createRWLayer('build-step', undefined);
    assert.equal(rw.info.initId, undefined);
    const merged = await rw.mount();
    await writeFile(path.join(merged, 'hello'), 'hi');
    const lines = (await rw.changes()).map((c) => `${changeLetter(c.Kind)} ${c.Path}`);
    assert.deepEqual(lines, ['A /hello']);
    const tar = await collect(await rw.tarStream());
    assert.deepEqual(readTar(tar).map((e) => e.name), ['hello']);
    await store.removeRWLayer('build-step');
  });
}

test('RW layer names are checked', async (t) => {
  const env = await setup(t, vfs);
  if (!env) return;
  await assert.rejects(env.store.createRWLayer('../x', undefined), /invalid RW layer name/);
  await assert.rejects(env.store.createRWLayer('a/b', undefined), /invalid RW layer name/);
});

test('overlay2: changes from the upper dir alone equal a full-tree comparison (Docker\'s rule)', async (t) => {
  const env = await setup(t, overlay2);
  if (!env) return;
  const { store, driver } = env;
  const { Readable } = await import('node:stream');
  const { chmod, rename, symlink, link, rm: rmrf } = await import('node:fs/promises');
  const { mountAll, unmount } = await import('../../src/sys/mount.js');
  const { treeChanges } = await import('../../src/archive/changes.js');
  const base = await store.register(Readable.from([imageTar()]), undefined);
  const second = await store.register(
    Readable.from([buildTar([dir('opt/'), file('opt/a', 'a'), file('opt/b', 'b'), dir('opt/sub/'), file('opt/sub/c', 'c')])]),
    base.chainId,
  );
  const rw = await store.createRWLayer('cmp', second.chainId, { init: initLayer });
  const m = await rw.mount();
  // Operations that exercise every rule: add, modify, delete, chmod a dir, replace a dir
  // (opaque), rename a dir, symlink, hard link, file→dir type change, nested adds.
  await writeFile(path.join(m, 'etc/motd'), 'changed\n');
  await unlink(path.join(m, 'data/gone'));
  await chmod(path.join(m, 'www'), 0o700);
  await rmrf(path.join(m, 'opt'), { recursive: true });
  await mkdir(path.join(m, 'opt'));
  await writeFile(path.join(m, 'opt/new'), 'n');
  await rename(path.join(m, 'www/index.html'), path.join(m, 'www/moved.html'));
  await symlink('/etc/motd', path.join(m, 'link'));
  await mkdir(path.join(m, 'a/b/c'), { recursive: true });
  await writeFile(path.join(m, 'a/b/c/d'), 'd');
  await link(path.join(m, 'a/b/c/d'), path.join(m, 'a/hard'));
  await unlink(path.join(m, 'etc/passwd'));
  await mkdir(path.join(m, 'etc/passwd'));
  const fast = (await rw.changes()).map((c) => `${changeLetter(c.Kind)} ${c.Path}`).sort();
  const view = await mkdtemp(path.join(env.root, 'view-'));
  await mountAll(await driver.view(rw.info.initId!), view);
  try {
    const full = (await treeChanges(m, view)).map((c) => `${changeLetter(c.Kind)} ${c.Path}`).sort();
    assert.deepEqual(fast, full);
  } finally {
    await unmount(view);
  }
  await store.removeRWLayer('cmp');
});

test('overlay2: an init layer written without a mount shows what a mounted one would (copy-up of dirs, no opaque leak)', async (t) => {
  const env = await setup(t, overlay2);
  if (!env) return;
  const { store, driver } = env;
  const { Readable } = await import('node:stream');
  const { lstat } = await import('node:fs/promises');
  const { native } = await import('../../src/native/addon.js');
  const { INIT_LAYER_DIRS, setupInitLayer } = await import('../../src/engine/container-files.js');
  // A base with /etc (0751, owned 7:8, a hosts file) and an upper layer making /etc opaque.
  const base = await store.register(Readable.from([buildTar([
    { name: 'etc/', type: 'dir', mode: 0o751, uid: 7, gid: 8, mtime: T },
    file('etc/hosts', 'image hosts\n'),
    file('etc/old', 'hidden by the opaque dir\n'),
    { name: 'proc/', type: 'dir', mode: 0o555, mtime: T },
  ])]), undefined);
  const top = await store.register(Readable.from([buildTar([
    { name: 'etc/', type: 'dir', mode: 0o751, uid: 7, gid: 8, mtime: T },
    file('etc/.wh..wh..opq', ''),
    file('etc/group', 'root:x:0:\n'),
  ])]), base.chainId);
  const fast = await store.createRWLayer('fast', top.chainId, { init: setupInitLayer, initDirs: INIT_LAYER_DIRS });
  const slow = await store.createRWLayer('slow', top.chainId, { init: setupInitLayer });
  const a = await fast.mount();
  const b = await slow.mount();
  for (const rel of ['etc', 'proc', 'dev', 'dev/pts', 'sys']) {
    const [x, y] = [await lstat(path.join(a, rel)), await lstat(path.join(b, rel))];
    assert.equal(x.mode, y.mode, rel);
    assert.equal(x.uid, y.uid, rel);
    assert.equal(x.gid, y.gid, rel);
  }
  assert.deepEqual((await readdir(path.join(a, 'etc'))).sort(), (await readdir(path.join(b, 'etc'))).sort());
  assert.equal(await readFile(path.join(a, 'etc/group'), 'utf8'), 'root:x:0:\n', 'lower content still visible');
  assert.equal(await readFile(path.join(a, 'etc/hosts'), 'utf8'), '', 'placeholder shadows the image file');
  const initUpper = driver.layerDir(fast.info.initId!);
  assert.ok(!native().llistxattr(path.join(initUpper, 'etc')).some((n) => n.startsWith('trusted.overlay.')), 'no overlay xattr copied up');
  await store.removeRWLayer('fast');
  await store.removeRWLayer('slow');
});
