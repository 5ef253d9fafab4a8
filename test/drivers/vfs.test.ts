// vfs: the shared conformance suite, then vfs's own promises — Docker's layout, a faithful
// and fast full copy per snapshot, no inode shared between snapshots.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, lchownSync, linkSync, lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';

import type { Driver } from '../../src/drivers/driver.js';
import { runDriverSuite } from '../../src/drivers/testsuite/index.js';
import { vfs } from '../../src/drivers/vfs.js';
import { native } from '../../src/native/addon.js';
import { mountsUnder, unmount } from '../../src/sys/mount.js';
import { diffTrees, snapshotTree } from '../helpers/fs-dsl.js';

runDriverSuite({ name: 'vfs', open: (root) => vfs.open(root) });

const privileged = process.getuid?.() === 0 ? false : 'needs root (chown, mknod)';

async function fresh(t: TestContext, root?: string): Promise<{ driver: Driver; tmp: string }> {
  const tmp = root ?? (await mkdtemp(path.join(os.tmpdir(), 'strata-vfs-')));
  t.after(async () => {
    for (const m of await mountsUnder(tmp)) await unmount(m, { detach: true });
    await rm(tmp, { recursive: true, force: true });
  });
  return { driver: await vfs.open(path.join(tmp, 'root')), tmp };
}

async function mode(p: string): Promise<number> {
  return (await lstat(p)).mode & 0o7777;
}

/** Inode numbers of every entry under `dir`. */
function inodes(dir: string, out = new Set<number>()): Set<number> {
  out.add(lstatSync(dir).ino);
  for (const e of execFileSync('find', [dir, '-mindepth', '1', '-printf', '%i\n'], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n')) {
    if (e) out.add(Number(e));
  }
  return out;
}

test('on-disk layout is Docker vfs', { skip: privileged }, async (t) => {
  const { driver } = await fresh(t);
  assert.equal(await mode(driver.home), 0o710);
  assert.equal(await mode(path.join(driver.home, 'dir')), 0o710);
  await driver.prepare('base');
  assert.equal(driver.layerDir('base'), path.join(driver.home, 'dir', 'base'));
  assert.equal(await mode(driver.layerDir('base')), 0o755);
  assert.deepEqual(await readdir(path.join(driver.home, 'dir')), ['base']);
  assert.deepEqual(await driver.status(), []);
  assert.deepEqual(await driver.metadata('base'), {});
  assert.equal(driver.mountpoint('base'), driver.layerDir('base'));
});

test('the copy carries the root dir, sockets and every attribute; no inode is shared', { skip: privileged }, async (t) => {
  const { driver } = await fresh(t);
  await driver.prepare('base');
  const dir = driver.layerDir('base');
  const addon = native();
  chmodSync(dir, 0o750);
  lchownSync(dir, 1000, 1001);
  addon.lsetxattr(dir, 'user.root', Buffer.from('r'));
  addon.mknod(path.join(dir, 'sock'), 0o140755, 0, 0);
  writeFileSync(path.join(dir, 'cap'), 'x');
  addon.lsetxattr(path.join(dir, 'cap'), 'security.capability', Buffer.from('0100000200200000000000000000000000000000', 'hex'));
  symlinkSync('cap', path.join(dir, 'link'));
  addon.lsetxattr(path.join(dir, 'link'), 'trusted.on-a-symlink', Buffer.from('s'));
  linkSync(path.join(dir, 'link'), path.join(dir, 'link2'));
  await driver.commit('base');
  await driver.prepare('child', 'base');
  const child = driver.layerDir('child');
  assert.deepEqual(diffTrees(await snapshotTree(child), await snapshotTree(dir)), []);
  const shared = [...inodes(child)].filter((ino) => inodes(dir).has(ino));
  assert.deepEqual(shared, []);
});

test('prepare copies a 10k-file tree quickly', { skip: privileged }, async (t) => {
  const { driver } = await fresh(t);
  await driver.prepare('base');
  const dir = driver.layerDir('base');
  const payload = Buffer.alloc(1024, 'x');
  for (let d = 0; d < 100; d++) {
    const sub = path.join(dir, `d${d}`);
    mkdirSync(sub);
    for (let f = 0; f < 100; f++) writeFileSync(path.join(sub, `f${f}`), payload);
    linkSync(path.join(sub, 'f0'), path.join(sub, 'hard'));
    symlinkSync('f1', path.join(sub, 'sym'));
  }
  await driver.commit('base');
  const started = process.hrtime.bigint();
  await driver.prepare('child', 'base');
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.diagnostic(`vfs prepare of 10,100 files + 200 links in 100 dirs: ${ms.toFixed(0)} ms`);
  const usage = await driver.usage('child');
  assert.equal(usage.size, 100 * (100 * 1024 + 2));
  assert.deepEqual(diffTrees(await snapshotTree(driver.layerDir('child')), await snapshotTree(dir)), []);
  // Generous: a slow CI disk must not fail this; a promise-per-file copy would.
  assert.ok(ms < 20_000, `took ${ms} ms`);
});

test('on btrfs the copy shares extents (reflink)', { skip: privileged }, async (t) => {
  let hasMkfs = true;
  try {
    execFileSync('mkfs.btrfs', ['--version'], { stdio: 'ignore' });
  } catch {
    hasMkfs = false;
  }
  if (!hasMkfs) {
    t.skip('mkfs.btrfs is not installed (btrfs-progs)');
    return;
  }
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'strata-vfs-btrfs-'));
  const mnt = path.join(tmp, 'mnt');
  t.after(async () => {
    for (const m of await mountsUnder(tmp)) await unmount(m, { detach: true });
    await rm(tmp, { recursive: true, force: true });
  });
  const image = path.join(tmp, 'fs.img');
  execFileSync('truncate', ['-s', '512M', image]);
  execFileSync('mkfs.btrfs', ['-q', image]);
  await mkdir(mnt);
  execFileSync('mount', ['-o', 'loop', image, mnt]);
  const driver = await vfs.open(path.join(mnt, 'root'));
  await driver.prepare('base');
  writeFileSync(path.join(driver.layerDir('base'), 'big'), Buffer.alloc(200 << 20, 7));
  execFileSync('sync');
  const free = () => {
    const s = native().statfs(mnt);
    return s.bfree * s.bsize;
  };
  const before = free();
  await driver.prepare('child', 'base');
  execFileSync('sync');
  const used = before - free();
  t.diagnostic(`btrfs space used by copying a 200 MiB file: ${(used / 2 ** 20).toFixed(1)} MiB`);
  assert.ok(used < 50 << 20, `copy used ${used} bytes: not a reflink`);
});
