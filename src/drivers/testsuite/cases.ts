/**
 * The driver conformance cases. Each runs on a fresh data root (see harness.ts), writes
 * through real mounts, and decides driver-specific expectations from `capabilities` only.
 */
import assert from 'node:assert/strict';
import { lstat, mkdir as fsMkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { native } from '../../native/addon.js';
import type { CaseContext } from './harness.js';
import {
  applyFs,
  chmod,
  chown,
  createFile,
  hardlink,
  mkdir,
  mknod,
  remove,
  rename,
  setTimes,
  setXattr,
  snapshotTree,
  symlink,
  type FsOp,
} from './fs-dsl.js';

export interface SuiteCase {
  name: string;
  run(ctx: CaseContext): Promise<void>;
}

/** Every path under `dir`, relative, sorted: a layout fingerprint that needs no driver knowledge. */
async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const r = `${rel}/${e.name}`;
      out.push(r);
      if (e.isDirectory()) await walk(path.join(d, e.name), r);
    }
  };
  await walk(dir, '');
  return out.sort();
}

function errorCode(err: unknown): string | undefined {
  return (err as { code?: string }).code;
}

/** Builds a stack of `depth` committed layers through mounts; returns the ids, base first. */
async function buildStack(ctx: CaseContext, depth: number, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < depth; i++) {
    const ops: FsOp[] = [createFile(`/layer-${i}`, `layer ${i}\n`), createFile('/top', `written by ${i}\n`)];
    if (i >= 2) ops.push(remove(`/layer-${i - 2}`));
    if (i % 5 === 0) ops.push(mkdir(`/dir-${i}`), createFile(`/dir-${i}/f`, String(i)));
    if (i % 5 === 1 && i > 5) ops.push(remove(`/dir-${i - 6}`));
    await ctx.layer(`${prefix}${i}`, ids.at(-1), ...ops);
    ids.push(`${prefix}${i}`);
  }
  return ids;
}

export const cases: SuiteCase[] = [
  {
    name: 'create, commit and view a base layer and a child',
    async run(ctx) {
      await ctx.layer('base', undefined, createFile('/a', 'hello\n'), mkdir('/etc'), createFile('/etc/conf', 'x=1\n', 0o600));
      await ctx.assertTree('base');
      await ctx.layer('child', 'base', createFile('/a', 'changed\n'), createFile('/etc/new', 'new\n'), mkdir('/var/lib/app', 0o750));
      await ctx.assertTree('child');
      // The parent's view is unchanged by its child.
      await ctx.assertTree('base');
    },
  },
  {
    name: 'deleting files and dirs in a child hides them',
    async run(ctx) {
      await ctx.layer(
        'base',
        undefined,
        createFile('/keep', 'k'),
        createFile('/gone', 'g'),
        mkdir('/dir/sub'),
        createFile('/dir/sub/deep', 'd'),
        createFile('/dir/file', 'f'),
        mkdir('/other'),
        createFile('/other/x', 'x'),
      );
      await ctx.layer('child', 'base', remove('/gone'), remove('/dir/sub'), remove('/other'));
      await ctx.assertTree('child');
      await ctx.layer('grandchild', 'child', createFile('/gone', 'back again'));
      await ctx.assertTree('grandchild');
    },
  },
  {
    name: 'a dir removed and recreated in a child hides the old children (opaque)',
    async run(ctx) {
      await ctx.layer('base', undefined, mkdir('/d', 0o755), createFile('/d/old1', '1'), mkdir('/d/olddir'), createFile('/d/olddir/x', 'x'));
      await ctx.layer('child', 'base', remove('/d'), mkdir('/d', 0o700), createFile('/d/new', 'n'));
      await ctx.assertTree('child');
      await ctx.layer('grandchild', 'child', createFile('/d/newer', 'nn'));
      await ctx.assertTree('grandchild');
    },
  },
  {
    name: 'hard links within a layer stay linked in the views above it',
    async run(ctx) {
      await ctx.layer('base', undefined, createFile('/a', 'shared content'), hardlink('/a', '/b'), mkdir('/d'), hardlink('/a', '/d/c'));
      await ctx.assertTree('base');
      await ctx.layer('child', 'base', createFile('/n1', 'new'), hardlink('/n1', '/n2'));
      await ctx.assertTree('child');
      const tree = await snapshotTree(await ctx.expected('child'));
      assert.equal(tree.find((e) => e.path === '/d/c')?.hardlinkOf, '/a');
    },
  },
  {
    name: 'xattrs on files and dirs survive commit and stacking',
    async run(ctx) {
      await ctx.layer(
        'base',
        undefined,
        createFile('/f', 'x'),
        setXattr('/f', 'user.greeting', 'hello'),
        setXattr('/f', 'trusted.app', Buffer.from([0, 1, 2, 255])),
        mkdir('/d'),
        setXattr('/d', 'user.dir', 'yes'),
      );
      await ctx.layer('child', 'base', setXattr('/f', 'user.greeting', 'changed'), createFile('/g', 'g'), setXattr('/g', 'user.new', 'v'));
      await ctx.assertTree('child');
    },
  },
  {
    name: 'a stack of 40 layers',
    async run(ctx) {
      const ids = await buildStack(ctx, 40, 'L');
      await ctx.assertTree(ids.at(-1)!);
      await ctx.assertTree(ids[20]!);
      await ctx.driver.prepare('rw', ids.at(-1));
      ctx.record('rw', ids.at(-1));
      await ctx.assertTree('rw', { rw: true });
    },
  },
  {
    name: 'a stack at the maximum depth mounts, one more layer is refused',
    async run(ctx) {
      const max = ctx.driver.capabilities.maxDepth;
      if (!Number.isFinite(max)) return;
      // A snapshot with `max` ancestors: max + 1 snapshots in all.
      const ids = await buildStack(ctx, max + 1, 'M');
      await ctx.assertTree(ids.at(-1)!);
      await assert.rejects(ctx.driver.prepare('too-deep', ids.at(-1)), /max depth exceeded/);
      assert.equal(await ctx.driver.exists('too-deep'), false);
    },
  },
  {
    name: 'a file replaced by a dir and a dir by a file',
    async run(ctx) {
      await ctx.layer('base', undefined, createFile('/x', 'file'), mkdir('/y'), createFile('/y/child', 'c'), symlink('target', '/z'));
      await ctx.layer('child', 'base', remove('/x'), mkdir('/x'), createFile('/x/inner', 'i'), remove('/y'), createFile('/y', 'now a file'), remove('/z'), mkdir('/z'));
      await ctx.assertTree('child');
      await ctx.layer('grandchild', 'child', remove('/x'), createFile('/x', 'a file again'), remove('/y'), mkdir('/y'));
      await ctx.assertTree('grandchild');
    },
  },
  {
    name: 'symlinks are kept verbatim and can be replaced',
    async run(ctx) {
      await ctx.layer(
        'base',
        undefined,
        createFile('/target', 't'),
        symlink('target', '/rel'),
        symlink('/etc/passwd', '/abs'),
        symlink('../../nowhere', '/dangling'),
        mkdir('/d'),
        symlink('d', '/dirlink'),
        chown('/rel', 1000, 1000),
      );
      await ctx.layer('child', 'base', remove('/rel'), symlink('other', '/rel'), rename('/abs', '/abs2'), createFile('/d/f', 'f'));
      await ctx.assertTree('child');
    },
  },
  {
    name: 'special bits, modes and ownership',
    async run(ctx) {
      await ctx.layer(
        'base',
        undefined,
        createFile('/suid', '#!/bin/sh\n'),
        chown('/suid', 1000, 1000),
        chmod('/suid', 0o4755),
        createFile('/sgid', 's', 0o2755),
        mkdir('/sticky', 0o1777),
        mkdir('/owned', 0o750),
        chown('/owned', 1000, 1000),
        createFile('/owned/file', 'o', 0o640),
        chown('/owned/file', 1000, 1001),
        createFile('/nomode', 'n', 0o000),
      );
      await ctx.assertTree('base');
      await ctx.layer('child', 'base', chown('/sgid', 1000, 1000), chmod('/sgid', 0o2755), chmod('/nomode', 0o444), mkdir('/owned/sub', 0o2770), chown('/owned/sub', 1000, 1000));
      await ctx.assertTree('child');
    },
  },
  {
    name: 'device nodes and fifos',
    async run(ctx) {
      await ctx.layer('base', undefined, mkdir('/dev'), mknod('/dev/null', 'char', 0o666, 1, 3), mknod('/dev/loopx', 'block', 0o660, 7, 200), mknod('/fifo', 'fifo', 0o600));
      await ctx.layer('child', 'base', createFile('/other', 'o'));
      await ctx.assertTree('child');
    },
  },
  {
    name: 'modification times are preserved',
    async run(ctx) {
      const mtime = 1_000_000_000.5;
      await ctx.layer('base', undefined, createFile('/f', 'x'), mkdir('/d'), createFile('/d/g', 'y'), setTimes('/d/g', mtime, mtime), setTimes('/f', mtime, mtime), setTimes('/d', mtime, mtime));
      await ctx.driver.prepare('child', 'base');
      const target = await ctx.mount(await ctx.driver.view('base'));
      for (const p of ['f', 'd', 'd/g']) {
        const st = await lstat(path.join(target, p));
        assert.ok(Math.abs(st.mtimeMs - mtime * 1000) < 0.01, `${p}: mtime ${st.mtimeMs}`);
      }
      await ctx.unmount(target);
      const rw = await ctx.mount(await ctx.driver.mounts('child'));
      for (const p of ['f', 'd', 'd/g']) {
        const st = await lstat(path.join(rw, p));
        assert.ok(Math.abs(st.mtimeMs - mtime * 1000) < 0.01, `${p} in child: mtime ${st.mtimeMs}`);
      }
    },
  },
  {
    name: 'removing snapshots leaves nothing behind',
    async run(ctx) {
      const before = await listTree(ctx.driver.home);
      await ctx.layer('base', undefined, createFile('/a', 'a'));
      await ctx.layer('child', 'base', remove('/a'), createFile('/b', 'b'));
      await ctx.driver.prepare('rw', 'child');
      const target = await ctx.mount(await ctx.driver.mounts('rw'), ctx.driver.mountpoint('rw'));
      await writeFile(path.join(target, 'c'), 'c');
      await ctx.unmount(target);
      assert.deepEqual(await ctx.driver.list(), ['base', 'child', 'rw']);
      for (const id of ['rw', 'child', 'base']) {
        await ctx.driver.remove(id);
        assert.equal(await ctx.driver.exists(id), false);
      }
      assert.deepEqual(await ctx.driver.list(), []);
      assert.deepEqual(await listTree(ctx.driver.home), before);
      // Removing what is gone is not an error: an interrupted removal can be retried.
      await ctx.driver.remove('base');
    },
  },
  {
    name: 'remove detaches a snapshot still mounted at its mountpoint',
    async run(ctx) {
      await ctx.layer('base', undefined, createFile('/a', 'a'));
      await ctx.driver.prepare('rw', 'base');
      const target = ctx.driver.mountpoint('rw');
      await fsMkdir(target, { recursive: true });
      await ctx.mount(await ctx.driver.mounts('rw'), target);
      await ctx.driver.remove('rw');
      assert.equal(await ctx.driver.exists('rw'), false);
      // The parent is intact.
      await ctx.assertTree('base');
    },
  },
  {
    name: 'two children of one parent are isolated',
    async run(ctx) {
      await ctx.layer('base', undefined, createFile('/f', 'base'), createFile('/g', 'g'), mkdir('/d'));
      await ctx.driver.prepare('a', 'base');
      await ctx.driver.prepare('b', 'base');
      const ta = await ctx.mount(await ctx.driver.mounts('a'));
      const tb = await ctx.mount(await ctx.driver.mounts('b'));
      const opsA = [createFile('/f', 'from a'), createFile('/a-only', 'a'), remove('/g'), createFile('/d/x', 'ax')];
      const opsB = [createFile('/b-only', 'b'), chmod('/d', 0o700)];
      await applyFs(ta, ...opsA);
      await applyFs(tb, ...opsB);
      ctx.record('a', 'base', ...opsA);
      ctx.record('b', 'base', ...opsB);
      await ctx.unmount(ta);
      await ctx.unmount(tb);
      await ctx.driver.commit('a');
      await ctx.driver.commit('b');
      await ctx.assertTree('a');
      await ctx.assertTree('b');
      await ctx.assertTree('base');
    },
  },
  {
    name: 'usage counts non-directories once per inode',
    async run(ctx) {
      await ctx.layer(
        'base',
        undefined,
        createFile('/a', 'x'.repeat(100)),
        hardlink('/a', '/b'),
        symlink('abc', '/l'),
        createFile('/empty', ''),
        mkdir('/d'),
      );
      const base = await ctx.driver.usage('base');
      assert.equal(base.size, 103);
      assert.ok(base.inodes >= 4, `inodes ${base.inodes}`);
      await ctx.layer('child', 'base', createFile('/c', 'y'.repeat(50)), remove('/empty'));
      const child = await ctx.driver.usage('child');
      // A diff holds only the child's own file (a whiteout weighs 0); a full copy holds all.
      assert.equal(child.size, ctx.driver.capabilities.layerDirIsDiff ? 50 : 153);
      await assert.rejects(ctx.driver.usage('missing'), (err) => errorCode(err) === 'ERR_NOT_FOUND');
    },
  },
  {
    name: 'deletions show in layerDir in the declared whiteout format',
    async run(ctx) {
      await ctx.layer('base', undefined, createFile('/gone', 'g'), mkdir('/dir'), createFile('/dir/x', 'x'), createFile('/kept', 'k'));
      await ctx.layer('child', 'base', remove('/gone'), remove('/dir'), mkdir('/dir'), createFile('/dir/y', 'y'));
      const dir = ctx.driver.layerDir('child');
      const addon = native();
      if (ctx.driver.capabilities.whiteouts === 'overlay') {
        const st = await lstat(path.join(dir, 'gone'));
        assert.ok(st.isCharacterDevice() && st.rdev === 0, 'a char 0:0 whiteout for /gone');
        assert.equal(addon.lgetxattr(path.join(dir, 'dir'), 'trusted.overlay.opaque')?.toString(), 'y');
        await assert.rejects(lstat(path.join(dir, 'kept')), { code: 'ENOENT' });
      } else {
        await assert.rejects(lstat(path.join(dir, 'gone')), { code: 'ENOENT' });
        assert.deepEqual((await readdir(path.join(dir, 'dir'))).sort(), ['y']);
        assert.equal(await readFile(path.join(dir, 'kept'), 'utf8'), 'k');
      }
      await ctx.assertTree('child');
    },
  },
  {
    name: 'changes applied straight into layerDir show in the views',
    async run(ctx) {
      // The unpack path: no mount, the archive module writes into layerDir in the driver's
      // whiteout format.
      const { driver } = ctx;
      await driver.prepare('base', undefined);
      const baseOps = [mkdir('/d'), createFile('/d/a', 'a'), createFile('/d/b', 'b'), createFile('/f', 'f'), createFile('/g', 'g')];
      await applyFs(driver.layerDir('base'), ...baseOps);
      await driver.commit('base');
      ctx.record('base', undefined, ...baseOps);

      await driver.prepare('child', 'base');
      const dir = driver.layerDir('child');
      if (driver.capabilities.whiteouts === 'overlay') {
        await applyFs(dir, mknod('/f', 'char', 0o000, 0, 0), mkdir('/d'), setXattr('/d', 'trusted.overlay.opaque', 'y'), createFile('/d/c', 'c'), createFile('/h', 'h'));
      } else {
        await applyFs(dir, remove('/f'), remove('/d/a'), remove('/d/b'), createFile('/d/c', 'c'), createFile('/h', 'h'));
      }
      await driver.commit('child');
      ctx.record('child', 'base', remove('/f'), remove('/d'), mkdir('/d'), createFile('/d/c', 'c'), createFile('/h', 'h'));
      await ctx.assertTree('child');
    },
  },
  {
    name: 'mountpoint is where an active snapshot is used',
    async run(ctx) {
      const { driver } = ctx;
      await driver.prepare('base', undefined);
      const mp = driver.mountpoint('base');
      await fsMkdir(mp, { recursive: true });
      await ctx.mount(await driver.mounts('base'), mp);
      await writeFile(path.join(mp, 'hello'), 'world');
      await ctx.unmount(mp);
      assert.equal(await readFile(path.join(driver.layerDir('base'), 'hello'), 'utf8'), 'world');
      await driver.commit('base');

      await driver.prepare('child', 'base');
      const mp2 = driver.mountpoint('child');
      await fsMkdir(mp2, { recursive: true });
      await ctx.mount(await driver.mounts('child'), mp2);
      assert.equal(await readFile(path.join(mp2, 'hello'), 'utf8'), 'world');
      await writeFile(path.join(mp2, 'second'), '2');
      await ctx.unmount(mp2);
      assert.equal(await readFile(path.join(driver.layerDir('child'), 'second'), 'utf8'), '2');
    },
  },
  {
    name: 'a view mounted elsewhere is read-only',
    async run(ctx) {
      await ctx.layer('base', undefined, createFile('/a', 'a'));
      await ctx.layer('child', 'base', createFile('/b', 'b'));
      for (const id of ['base', 'child']) {
        const target = await ctx.mount(await ctx.driver.view(id));
        await assert.rejects(writeFile(path.join(target, 'new'), 'x'), { code: 'EROFS' });
        await ctx.unmount(target);
      }
    },
  },
  {
    name: 'errors: missing parent, duplicate id, bad id, missing snapshot',
    async run(ctx) {
      const { driver } = ctx;
      await assert.rejects(driver.prepare('x', 'missing'), (err) => errorCode(err) === 'ERR_NOT_FOUND');
      assert.equal(await driver.exists('x'), false);
      await driver.prepare('x');
      await assert.rejects(driver.prepare('x'), (err) => errorCode(err) === 'ERR_ALREADY_EXISTS');
      for (const bad of ['', '.', '..', '../x', 'a/b', 'a:b', 'a,b']) {
        await assert.rejects(driver.prepare(bad), (err) => errorCode(err) === 'ERR_INVALID_ARGUMENT', `id ${JSON.stringify(bad)}`);
        assert.equal(await driver.exists(bad), false);
      }
      await assert.rejects(driver.mounts('missing'), (err) => errorCode(err) === 'ERR_NOT_FOUND');
      await assert.rejects(driver.view('missing'), (err) => errorCode(err) === 'ERR_NOT_FOUND');
      await assert.rejects(driver.commit('missing'), (err) => errorCode(err) === 'ERR_NOT_FOUND');
      await assert.rejects(driver.metadata('missing'), (err) => errorCode(err) === 'ERR_NOT_FOUND');
      assert.equal(await driver.exists('missing'), false);
      assert.deepEqual(await driver.list(), ['x']);
    },
  },
  {
    name: 'status and metadata are string pairs',
    async run(ctx) {
      const status = await ctx.driver.status();
      for (const pair of status) {
        assert.equal(pair.length, 2);
        assert.ok(pair.every((s) => typeof s === 'string'));
      }
      await ctx.layer('base', undefined, createFile('/a', 'a'));
      for (const value of Object.values(await ctx.driver.metadata('base'))) assert.equal(typeof value, 'string');
      assert.equal(ctx.driver.home, path.join(ctx.root, ctx.driver.name));
      assert.ok((await stat(ctx.driver.home)).isDirectory());
    },
  },
  {
    name: 'reopening a root keeps its snapshots',
    async run(ctx) {
      await ctx.layer('base', undefined, createFile('/a', 'a'));
      await ctx.layer('child', 'base', createFile('/b', 'b'));
      // The suite's own driver stays in use; a second instance must see the same state.
      const again = await ctx.reopen();
      assert.deepEqual(await again.list(), ['base', 'child']);
      const target = await ctx.mount(await again.view('child'));
      assert.equal(await readFile(path.join(target, 'a'), 'utf8'), 'a');
      assert.equal(await readFile(path.join(target, 'b'), 'utf8'), 'b');
    },
  },
];
