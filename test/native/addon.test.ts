// Exercises every addon function against the running kernel: no mocks, real files,
// real mounts. Mount and trusted.* xattr checks need root and skip with a reason otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { native } from '../../src/native/addon.js';

const isRoot = process.getuid?.() === 0;
const rootOnly = isRoot ? {} : { skip: 'needs root' };

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'strata-native-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function assertNodeError(err: unknown, code: string, syscall: string, p?: string): true {
  const e = err as NodeJS.ErrnoException;
  assert.ok(e instanceof Error, 'expected an Error');
  assert.equal(e.code, code);
  assert.equal(e.syscall, syscall);
  assert.equal(typeof e.errno, 'number');
  assert.ok(e.errno! < 0, 'errno is negative like libuv');
  if (p !== undefined) {
    assert.equal(e.path, p);
    assert.match(e.message, new RegExp(`^${code}: [a-z0-9 ,'-]+, ${syscall} '${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}'`));
  }
  return true;
}

test('errors look like node:fs errors', () => {
  const c = native().constants;
  assert.throws(
    () => native().mknod('/nonexistent-strata-dir/x', c.S_IFCHR | 0o600, 0, 0),
    (err: NodeJS.ErrnoException) => {
      assertNodeError(err, 'ENOENT', 'mknod', '/nonexistent-strata-dir/x');
      assert.equal(err.errno, -2);
      assert.equal(err.message, "ENOENT: no such file or directory, mknod '/nonexistent-strata-dir/x'");
      return true;
    },
  );
  assert.throws(() => native().statfs(42 as unknown as string), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => native().statfs('/tmp\0x'), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
});

test('mknod creates a 0:0 character device (overlay whiteout)', rootOnly, async () => {
  await withTempDir(async (dir) => {
    const c = native().constants;
    const p = path.join(dir, 'wh');
    native().mknod(p, c.S_IFCHR | 0o600, 0, 0);
    const st = await stat(p);
    assert.ok(st.isCharacterDevice());
    assert.equal(st.rdev, 0);
    assert.equal(st.mode & 0o7777, 0o600 & ~process.umask());
    assert.throws(() => native().mknod(p, c.S_IFCHR | 0o600, 0, 0), (e) => assertNodeError(e, 'EEXIST', 'mknod', p));

    const fifo = path.join(dir, 'fifo');
    native().mknod(fifo, c.S_IFIFO | 0o644, 0, 0);
    assert.ok((await stat(fifo)).isFIFO());
  });
});

test('user.* xattrs: set, get, list, remove, flags, absent', async () => {
  await withTempDir(async (dir) => {
    const a = native();
    const f = path.join(dir, 'f');
    await writeFile(f, 'x');
    assert.equal(a.lgetxattr(f, 'user.missing'), undefined);
    assert.deepEqual(a.llistxattr(f).filter((n) => n.startsWith('user.')), []);

    a.lsetxattr(f, 'user.one', Buffer.from('hello'));
    a.lsetxattr(f, 'user.empty', Buffer.alloc(0));
    // Larger than any small first guess, so the size-then-read path is exercised.
    const big = Buffer.alloc(3000, 0xab);
    a.lsetxattr(f, 'user.big', big);
    assert.deepEqual(a.lgetxattr(f, 'user.one'), Buffer.from('hello'));
    assert.deepEqual(a.lgetxattr(f, 'user.empty'), Buffer.alloc(0));
    assert.deepEqual(a.lgetxattr(f, 'user.big'), big);
    assert.deepEqual(a.llistxattr(f).filter((n) => n.startsWith('user.')).sort(), ['user.big', 'user.empty', 'user.one']);

    assert.throws(() => a.lsetxattr(f, 'user.one', Buffer.from('x'), a.constants.XATTR_CREATE), (e) =>
      assertNodeError(e, 'EEXIST', 'lsetxattr', f),
    );
    assert.throws(() => a.lsetxattr(f, 'user.nope', Buffer.from('x'), a.constants.XATTR_REPLACE), (e) =>
      assertNodeError(e, 'ENODATA', 'lsetxattr', f),
    );

    a.lremovexattr(f, 'user.one');
    assert.equal(a.lgetxattr(f, 'user.one'), undefined);
    assert.throws(() => a.lremovexattr(f, 'user.one'), (e) => assertNodeError(e, 'ENODATA', 'lremovexattr', f));
    assert.throws(() => a.lgetxattr(path.join(dir, 'nope'), 'user.x'), (e) =>
      assertNodeError(e, 'ENOENT', 'lgetxattr', path.join(dir, 'nope')),
    );
    assert.throws(() => a.llistxattr(path.join(dir, 'nope')), (e) => assertNodeError(e, 'ENOENT', 'llistxattr'));
  });
});

test('trusted.* xattrs act on the link itself (l* variants)', rootOnly, async () => {
  await withTempDir(async (dir) => {
    const a = native();
    const d = path.join(dir, 'd');
    await mkdir(d);
    a.lsetxattr(d, 'trusted.overlay.opaque', Buffer.from('y'));
    assert.deepEqual(a.lgetxattr(d, 'trusted.overlay.opaque'), Buffer.from('y'));
    assert.ok(a.llistxattr(d).includes('trusted.overlay.opaque'));

    // A symlink's own xattrs: trusted.* is allowed on links, and the target stays untouched.
    const link = path.join(dir, 'link');
    execFileSync('ln', ['-s', 'd', link]);
    a.lsetxattr(link, 'trusted.mark', Buffer.from('link'));
    assert.deepEqual(a.lgetxattr(link, 'trusted.mark'), Buffer.from('link'));
    assert.equal(a.lgetxattr(d, 'trusted.mark'), undefined);
    a.lremovexattr(d, 'trusted.overlay.opaque');
    assert.equal(a.lgetxattr(d, 'trusted.overlay.opaque'), undefined);
  });
});

test('mount with cwd resolves relative overlay paths without moving the process cwd', rootOnly, async () => {
  await withTempDir(async (dir) => {
    const a = native();
    const lowers: string[] = [];
    for (let i = 0; i < 150; i++) {
      const name = `l/${String(i).padStart(16, 'x')}`;
      await mkdir(path.join(dir, name), { recursive: true });
      lowers.push(name);
    }
    await writeFile(path.join(dir, lowers[0]!, 'top'), 'top');
    await writeFile(path.join(dir, lowers[149]!, 'bottom'), 'bottom');
    for (const d of ['upper', 'work', 'merged']) await mkdir(path.join(dir, d));
    const relData = `lowerdir=${lowers.join(':')},upperdir=upper,workdir=work`;
    const absData = `lowerdir=${lowers.map((l) => path.join(dir, l)).join(':')},upperdir=${dir}/upper,workdir=${dir}/work`;
    assert.ok(absData.length > 4096, 'the absolute form must not fit in a page');
    assert.ok(relData.length < 4096);

    const cwdBefore = process.cwd();
    const merged = path.join(dir, 'merged');
    a.mount('overlay', merged, 'overlay', 0, relData, dir);
    try {
      assert.equal(process.cwd(), cwdBefore);
      assert.equal(await readFile(path.join(merged, 'top'), 'utf8'), 'top');
      assert.equal(await readFile(path.join(merged, 'bottom'), 'utf8'), 'bottom');
      await writeFile(path.join(merged, 'new'), 'upper');
      assert.equal(await readFile(path.join(dir, 'upper', 'new'), 'utf8'), 'upper');
      assert.equal(native().statfs(merged).type, 0x794c7630);
    } finally {
      a.umount2(merged, 0);
    }
    assert.equal(existsSync(path.join(merged, 'top')), false);
    assert.throws(() => a.umount2(merged, 0), (e) => assertNodeError(e, 'EINVAL', 'umount2', merged));

    // Without cwd the same relative paths resolve against the process cwd and fail.
    assert.throws(() => a.mount('overlay', merged, 'overlay', 0, relData), (e) => assertNodeError(e, 'ENOENT', 'mount', merged));
    assert.throws(() => a.mount('overlay', merged, 'overlay', 0, relData, path.join(dir, 'missing')), (e) =>
      assertNodeError(e, 'ENOENT', 'chdir', path.join(dir, 'missing')),
    );
  });
});

test('mount tmpfs with flags and detach unmount', rootOnly, async () => {
  await withTempDir(async (dir) => {
    const a = native();
    const c = a.constants;
    a.mount('tmpfs', dir, 'tmpfs', c.MS_NOSUID | c.MS_NODEV, 'size=1m,mode=0700');
    try {
      assert.equal(a.statfs(dir).type, 0x01021994);
      assert.equal(a.statfs(dir).flags & (c.MS_NOSUID | c.MS_NODEV), c.MS_NOSUID | c.MS_NODEV);
      assert.equal((await stat(dir)).mode & 0o777, 0o700);
    } finally {
      a.umount2(dir, c.MNT_DETACH);
    }
    assert.notEqual(a.statfs(dir).type, 0x01021994);
  });
});

test('renameat2 NOREPLACE refuses to replace and EXCHANGE swaps', async () => {
  await withTempDir(async (dir) => {
    const a = native();
    const c = a.constants;
    const x = path.join(dir, 'x');
    const y = path.join(dir, 'y');
    await writeFile(x, 'X');
    await writeFile(y, 'Y');
    assert.throws(
      () => a.renameat2(x, y, c.RENAME_NOREPLACE),
      (e: NodeJS.ErrnoException & { dest?: string }) => {
        assertNodeError(e, 'EEXIST', 'renameat2', x);
        assert.equal(e.dest, y);
        assert.equal(e.message, `EEXIST: file exists, renameat2 '${x}' -> '${y}'`);
        return true;
      },
    );
    assert.equal(await readFile(y, 'utf8'), 'Y');

    a.renameat2(x, y, c.RENAME_EXCHANGE);
    assert.equal(await readFile(x, 'utf8'), 'Y');
    assert.equal(await readFile(y, 'utf8'), 'X');

    const z = path.join(dir, 'z');
    a.renameat2(x, z, c.RENAME_NOREPLACE);
    assert.equal(await readFile(z, 'utf8'), 'Y');
    assert.equal(existsSync(x), false);
    assert.throws(() => a.renameat2(x, z, c.RENAME_EXCHANGE), (e) => assertNodeError(e, 'ENOENT', 'renameat2', x));
  });
});

test('flock: LOCK_NB conflicts per open file description, flockAsync waits', async () => {
  await withTempDir(async (dir) => {
    const a = native();
    const c = a.constants;
    const p = path.join(dir, 'lock');
    await writeFile(p, '');
    const h1 = await open(p, 'r');
    const h2 = await open(p, 'r');
    try {
      a.flock(h1.fd, c.LOCK_EX);
      assert.throws(() => a.flock(h2.fd, c.LOCK_SH | c.LOCK_NB), (e) => assertNodeError(e, 'EAGAIN', 'flock'));

      let acquired = false;
      const waiting = a.flockAsync(h2.fd, c.LOCK_EX).then(() => {
        acquired = true;
      });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(acquired, false, 'must wait while the other description holds the lock');
      a.flock(h1.fd, c.LOCK_UN);
      await waiting;
      assert.equal(acquired, true);
      assert.throws(() => a.flock(h1.fd, c.LOCK_SH | c.LOCK_NB), (e) => assertNodeError(e, 'EAGAIN', 'flock'));
    } finally {
      await h1.close();
      await h2.close();
    }
    await assert.rejects(a.flockAsync(987654, c.LOCK_EX), (e) => assertNodeError(e, 'EBADF', 'flock'));
  });
});

test('many waiting flockAsync calls do not starve the libuv pool', async () => {
  await withTempDir(async (dir) => {
    const a = native();
    const c = a.constants;
    const p = path.join(dir, 'lock');
    await writeFile(p, 'content');
    const holder = await open(p, 'r');
    a.flock(holder.fd, c.LOCK_EX);
    const waiters = await Promise.all(Array.from({ length: 12 }, () => open(p, 'r')));
    const pending = waiters.map((h) => a.flockAsync(h.fd, c.LOCK_SH));
    try {
      // With the waits parked on the (4-thread) pool this read could never run.
      const read = readFile(p, 'utf8');
      const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('fs starved')), 2000));
      assert.equal(await Promise.race([read, timeout]), 'content');
    } finally {
      await holder.close();
      await Promise.all(pending);
      await Promise.all(waiters.map((h) => h.close()));
    }
  });
});

test('ficlone: fails Node-style where reflink is unsupported, clones on btrfs', async (t) => {
  await withTempDir(async (dir) => {
    const a = native();
    const src = path.join(dir, 'src');
    await writeFile(src, 'payload');
    const s = await open(src, 'r');
    const d = await open(path.join(dir, 'dst'), 'w');
    try {
      let cloned = false;
      try {
        a.ficlone(d.fd, s.fd);
        cloned = true;
      } catch (err) {
        assertNodeError(err, (err as NodeJS.ErrnoException).code!, 'ioctl');
        assert.ok(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL'].includes((err as NodeJS.ErrnoException).code!));
      }
      if (cloned) assert.equal(await readFile(path.join(dir, 'dst'), 'utf8'), 'payload');
      assert.throws(() => a.ficlone(d.fd, 999999), (e) => assertNodeError(e, 'EBADF', 'ioctl'));
    } finally {
      await s.close();
      await d.close();
    }
  });

  const mkfs = ['/usr/sbin/mkfs.btrfs', '/sbin/mkfs.btrfs', '/usr/bin/mkfs.btrfs'].find((p) => existsSync(p));
  if (!isRoot || !mkfs) {
    t.diagnostic('btrfs reflink check skipped: needs root and mkfs.btrfs');
    return;
  }
  await withTempDir(async (dir) => {
    const img = path.join(dir, 'img');
    const mnt = path.join(dir, 'mnt');
    await mkdir(mnt);
    const imgHandle = await open(img, 'w');
    await imgHandle.truncate(128 * 1024 * 1024);
    await imgHandle.close();
    execFileSync(mkfs, ['-q', img]);
    const loop = execFileSync('losetup', ['--find', '--show', img], { encoding: 'utf8' }).trim();
    try {
      native().mount(loop, mnt, 'btrfs', 0, null);
      try {
        assert.equal(native().statfs(mnt).type, 0x9123683e);
        const data = Buffer.alloc(1 << 20, 7);
        await writeFile(path.join(mnt, 'a'), data);
        const s = await open(path.join(mnt, 'a'), 'r');
        const d = await open(path.join(mnt, 'b'), 'w');
        try {
          native().ficlone(d.fd, s.fd);
        } finally {
          await s.close();
          await d.close();
        }
        assert.deepEqual(await readFile(path.join(mnt, 'b')), data);
        t.diagnostic('reflink verified on a loop-mounted btrfs');
      } finally {
        native().umount2(mnt, 0);
      }
    } finally {
      execFileSync('losetup', ['-d', loop]);
    }
  });
});

test('statfs reports the same filesystem type as stat -f', async () => {
  await withTempDir(async (dir) => {
    const st = native().statfs(dir);
    const expected = parseInt(execFileSync('stat', ['-f', '-c', '%t', dir], { encoding: 'utf8' }).trim(), 16);
    assert.equal(st.type, expected);
    assert.ok(st.bsize > 0 && st.blocks > 0 && st.namelen > 0);
    if (execFileSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).trim().startsWith('ext')) {
      assert.equal(st.type, 0xef53);
    }
    assert.throws(() => native().statfs(path.join(dir, 'missing')), (e) => assertNodeError(e, 'ENOENT', 'statfs', path.join(dir, 'missing')));
  });
});

test('syncfs flushes the filesystem of an fd', async () => {
  await withTempDir(async (dir) => {
    await writeFile(path.join(dir, 'f'), 'data');
    const h = await open(dir, 'r');
    try {
      native().syncfs(h.fd);
    } finally {
      await h.close();
    }
    assert.throws(() => native().syncfs(999999), (e) => assertNodeError(e, 'EBADF', 'syncfs'));
  });
});

test('syncfsAsync and readahead run on a real fd; bad fds fail like node:fs', async () => {
  await withTempDir(async (dir) => {
    await writeFile(path.join(dir, 'f'), Buffer.alloc(1 << 20, 7));
    const h = await open(path.join(dir, 'f'), 'r');
    try {
      await native().syncfsAsync(h.fd);
      native().readahead(h.fd, 0, 1 << 20);
    } finally {
      await h.close();
    }
    await assert.rejects(native().syncfsAsync(999999), (e) => assertNodeError(e, 'EBADF', 'syncfs'));
    assert.throws(() => native().readahead(999999, 0, 1), (e) => assertNodeError(e, 'EBADF', 'readahead'));
  });
});

test('removeTree removes a tree without following symlinks or entering other mounts', rootOnly, async () => {
  await withTempDir(async (dir) => {
    const outside = path.join(dir, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'keep'), 'x');
    const tree = path.join(dir, 'tree');
    await mkdir(path.join(tree, 'a/b/c'), { recursive: true });
    await writeFile(path.join(tree, 'a/b/c/f'), 'x');
    await writeFile(path.join(tree, 'a/ro'), 'x', { mode: 0 });
    native().mknod(path.join(tree, 'a/.wh'), native().constants.S_IFCHR | 0o600, 0, 0);
    execFileSync('ln', ['-s', outside, path.join(tree, 'link')]);
    await native().removeTree(tree);
    assert.equal(existsSync(tree), false);
    assert.equal(await readFile(path.join(outside, 'keep'), 'utf8'), 'x', 'a symlink is removed, not followed');
    await native().removeTree(path.join(dir, 'never-was')); // rm -f: missing is fine

    const withMount = path.join(dir, 'with-mount');
    await mkdir(path.join(withMount, 'm'), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', path.join(withMount, 'm')]);
    try {
      await writeFile(path.join(withMount, 'm/precious'), 'x');
      await assert.rejects(native().removeTree(withMount), (e) => assertNodeError(e, 'ENOTEMPTY', 'rm', withMount));
      assert.equal(await readFile(path.join(withMount, 'm/precious'), 'utf8'), 'x', 'nothing removed across a mount');
    } finally {
      execFileSync('umount', [path.join(withMount, 'm')]);
    }
  });
});

test('readdirTypes reports raw d_type', async () => {
  await withTempDir(async (dir) => {
    const a = native();
    await writeFile(path.join(dir, 'f'), '');
    await mkdir(path.join(dir, 'd'));
    const entries = new Map(a.readdirTypes(dir));
    assert.equal(entries.size, 2);
    assert.equal(entries.get('f'), a.constants.DT_REG);
    assert.equal(entries.get('d'), a.constants.DT_DIR);
    assert.throws(() => a.readdirTypes(path.join(dir, 'f')), (e) => assertNodeError(e, 'ENOTDIR', 'opendir'));
  });
});
