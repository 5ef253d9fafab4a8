// Docker's copy-up into an empty volume: everything a file can carry is kept, the volume
// root takes the source root's mode and owner, a non-empty volume is left alone, and an
// interrupted copy is never mistaken for a populated volume. Needs root (chown, mknod).
import assert from 'node:assert/strict';
import { constants as fsConstants, lstatSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';

import {
  applyFs,
  assertSameTree,
  chmod,
  chown,
  createFile,
  hardlink,
  mkdir as mkdirOp,
  mknod,
  setTimes,
  setXattr,
  snapshotTree,
  symlink,
} from '../../src/drivers/testsuite/fs-dsl.js';
import { native } from '../../src/native/addon.js';
import { copyTree } from '../../src/sys/copy-tree.js';
import { mountsUnder, unmount } from '../../src/sys/mount.js';
import { VolumeService } from '../../src/volumes/service.js';

const rootOnly = process.getuid?.() === 0 ? {} : { skip: 'needs root (chown, mknod)' };

async function fresh(t: TestContext): Promise<{ svc: VolumeService; tmp: string }> {
  const tmp = await realpath(await mkdtemp(path.join(os.tmpdir(), 'strata-volpop-')));
  t.after(async () => {
    for (const m of await mountsUnder(tmp)) await unmount(m, { detach: true });
    await rm(tmp, { recursive: true, force: true });
  });
  return { svc: await VolumeService.open({ dataRoot: path.join(tmp, 'root') }), tmp };
}

/** The image content at a VOLUME path, with every kind of entry and attribute. */
async function imageContent(dir: string): Promise<void> {
  await mkdir(dir);
  const old = new Date('2020-02-02T02:02:02.123Z');
  await applyFs(
    dir,
    createFile('/index.html', '<h1>hi</h1>', 0o640),
    chown('/index.html', 101, 101),
    mkdirOp('/conf.d', 0o750),
    chown('/conf.d', 33, 33),
    createFile('/conf.d/site.conf', 'server {}', 0o600),
    chown('/conf.d/site.conf', 33, 33),
    createFile('/bin-suid', '#!/bin/sh', 0o755),
    chown('/bin-suid', 0, 0),
    chmod('/bin-suid', 0o4755),
    mkdirOp('/sticky', 0o1777),
    symlink('index.html', '/default.html'),
    symlink('/does/not/exist', '/dangling'),
    hardlink('/index.html', '/conf.d/index-link'),
    mknod('/fifo', 'fifo', 0o620),
    mknod('/null', 'char', 0o666, 1, 3),
    setXattr('/index.html', 'user.origin', 'image'),
    setXattr('/conf.d', 'trusted.note', 'dir xattr'),
    // Sub-millisecond digits too: 1580608922.123456789 s.
    setTimes('/index.html', 1580608922.123456789, 1580608922.123456789),
    setTimes('/conf.d/site.conf', old, old),
    setTimes('/conf.d', old, old),
    setTimes('/default.html', old, old),
    chmod('/', 0o770),
    chown('/', 1234, 4321),
    setTimes('/', old, old),
  );
}

/** mtimes to the microsecond, which is what Node can set (see copy-tree.ts). */
function mtimes(dir: string, rels: string[]): Record<string, bigint> {
  return Object.fromEntries(rels.map((r) => [r, lstatSync(path.join(dir, r), { bigint: true }).mtimeNs / 1000n]));
}

test('prepopulate copies modes, owners, times, xattrs, symlinks, hard links and devices', rootOnly, async (t) => {
  const { svc, tmp } = await fresh(t);
  const src = path.join(tmp, 'image-html');
  await imageContent(src);
  await svc.create({ name: 'html' });
  assert.equal(await svc.prepopulate('html', src), true);
  const data = svc.mountpointOf('html');
  await assertSameTree(data, src);
  const rels = ['.', 'index.html', 'conf.d', 'conf.d/site.conf', 'default.html'];
  assert.deepEqual(mtimes(data, rels), mtimes(src, rels));
  // The root took the source's mode and owner (Docker chmods/chowns the volume root).
  const st = lstatSync(data);
  assert.deepEqual([st.mode & 0o7777, st.uid, st.gid], [0o770, 1234, 4321]);
  // The staging directory is gone.
  assert.ok(!(await readdir(data)).some((e) => e.startsWith('.strata-populate')));
  // Hard links stay hard links (one inode), not copies.
  assert.equal(lstatSync(path.join(data, 'index.html')).ino, lstatSync(path.join(data, 'conf.d/index-link')).ino);
});

test('prepopulate does nothing into a non-empty volume or from a missing source', rootOnly, async (t) => {
  const { svc, tmp } = await fresh(t);
  const src = path.join(tmp, 'image-html');
  await imageContent(src);
  await svc.create({ name: 'used' });
  const data = svc.mountpointOf('used');
  await writeFile(path.join(data, 'user-data'), 'mine');
  const before = await snapshotTree(data);
  assert.equal(await svc.prepopulate('used', src), false);
  assert.deepEqual(await snapshotTree(data), before);

  // Any entry counts, even an empty directory or a dotfile.
  await svc.create({ name: 'dotted' });
  await writeFile(path.join(svc.mountpointOf('dotted'), '.keep'), '');
  assert.equal(await svc.prepopulate('dotted', src), false);

  await svc.create({ name: 'empty' });
  assert.equal(await svc.prepopulate('empty', path.join(tmp, 'missing')), false);
  assert.equal(await svc.prepopulate('empty', path.join(src, 'index.html')), false);
  assert.deepEqual(await readdir(svc.mountpointOf('empty')), []);

  // Populated once, a second time is a no-op (Docker: only an empty volume is filled).
  assert.equal(await svc.prepopulate('empty', src), true);
  await writeFile(path.join(svc.mountpointOf('empty'), 'index.html'), 'edited');
  assert.equal(await svc.prepopulate('empty', src), false);
  assert.equal(await readFile(path.join(svc.mountpointOf('empty'), 'index.html'), 'utf8'), 'edited');

  await assert.rejects(svc.prepopulate('nope', src), { name: 'NotFoundError', message: 'get nope: no such volume' });
});

test('an interrupted copy is redone; an interrupted move is finished', rootOnly, async (t) => {
  const { svc, tmp } = await fresh(t);
  const src = path.join(tmp, 'image-html');
  await imageContent(src);

  // On-disk state a crash leaves (see service.ts: stage dir, magic file, completion marker).
  const stageName = '.strata-populate-0123456789abcdef';
  const magic = 'strata-populate v1\n';

  // Crash during the copy: a stage without the completion marker.
  await svc.create({ name: 'half' });
  const half = svc.mountpointOf('half');
  await mkdir(path.join(half, stageName, 'tree'), { recursive: true });
  await writeFile(path.join(half, stageName, 'strata-populate'), magic);
  await writeFile(path.join(half, stageName, 'tree', 'partial'), 'x');
  assert.equal(await svc.prepopulate('half', src), true);
  await assertSameTree(half, src);

  // User data that only looks like a stage (no magic file) is data: the volume is not empty.
  await svc.create({ name: 'lookalike' });
  await mkdir(path.join(svc.mountpointOf('lookalike'), stageName));
  assert.equal(await svc.prepopulate('lookalike', src), false);
  assert.deepEqual(await readdir(svc.mountpointOf('lookalike')), [stageName]);

  // Crash during the move: the marker exists, some entries already moved.
  await svc.create({ name: 'moving' });
  const moving = svc.mountpointOf('moving');
  const stage = path.join(moving, stageName);
  await mkdir(stage, { mode: 0o700 });
  await writeFile(path.join(stage, 'strata-populate'), magic);
  copyTree(src, path.join(stage, 'tree'));
  const rootTimes = lstatSync(path.join(stage, 'tree'), { bigint: true });
  await writeFile(path.join(stage, 'complete'), JSON.stringify({ atimeNs: String(rootTimes.atimeNs), mtimeNs: String(rootTimes.mtimeNs) }));
  await rename(path.join(stage, 'tree', 'conf.d'), path.join(moving, 'conf.d'));
  await rename(path.join(stage, 'tree', 'index.html'), path.join(moving, 'index.html'));
  assert.equal(await svc.prepopulate('moving', src), true);
  await assertSameTree(moving, src);
  assert.deepEqual(mtimes(moving, ['.']), mtimes(src, ['.']));
});

test('image content that contains a stage-like name is copied like any other entry', rootOnly, async (t) => {
  const { svc, tmp } = await fresh(t);
  const src = path.join(tmp, 'odd');
  await mkdir(path.join(src, '.strata-populate-0123456789abcdef'), { recursive: true });
  await writeFile(path.join(src, '.strata-populate-0123456789abcdef', 'strata-populate'), 'strata-populate v1\n');
  await writeFile(path.join(src, 'x'), 'y');
  await svc.create({ name: 'odd' });
  assert.equal(await svc.prepopulate('odd', src), true);
  await assertSameTree(svc.mountpointOf('odd'), src);
  // Later populate attempts leave it alone: it is not the only entry, so it is data.
  assert.equal(await svc.prepopulate('odd', src), false);
  await assertSameTree(svc.mountpointOf('odd'), src);
});

test('a volume with driver options is populated through its mount', rootOnly, async (t) => {
  const { svc, tmp } = await fresh(t);
  const src = path.join(tmp, 'image-html');
  await imageContent(src);
  await svc.create({ name: 'tv', options: { type: 'tmpfs', device: 'tmpfs', o: 'size=16m' } });
  // The container mounts the volume first; prepopulation then fills the tmpfs it will see.
  await svc.mount('tv', 'c1');
  assert.equal(await svc.prepopulate('tv', src), true);
  await assertSameTree(svc.mountpointOf('tv'), src, { xattrs: (name) => !name.startsWith('trusted.') && !name.startsWith('user.') });
  assert.deepEqual(await svc.mountUsers('tv'), ['c1']);
  await svc.unmount('tv', 'c1');
  assert.deepEqual(await readdir(svc.mountpointOf('tv')), []);
});

test('removal refuses a volume while it is being populated', async (t) => {
  const { svc } = await fresh(t);
  await svc.create({ name: 'busy' });
  await svc.create({});
  const anon = (await svc.list()).find((v) => v.Name !== 'busy')!.Name;
  // Another process populating holds an exclusive flock on the volume directory.
  const locks = await Promise.all(['busy', anon].map(async (name) => {
    const handle = await open(path.join(svc.root, name), fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    native().flock(handle.fd, native().constants.LOCK_EX);
    return handle;
  }));
  try {
    await assert.rejects(svc.remove('busy'), { name: 'ConflictError', message: 'remove busy: volume is being populated' });
    // prune skips it rather than failing or waiting.
    assert.deepEqual(await svc.prune(), { VolumesDeleted: [], SpaceReclaimed: 0 });
  } finally {
    for (const h of locks) await h.close();
  }
  await svc.remove('busy');
  assert.deepEqual((await svc.prune()).VolumesDeleted, [anon]);
});
