// mountAll/unmount/mountsUnder against real mounts. Needs root; skips otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { native } from '../../src/native/addon.js';
import { mountAll, mountsUnder, unmount } from '../../src/sys/mount.js';
import { shortLinkId } from '../../src/sys/ids.js';

const rootOnly = process.getuid?.() === 0 ? {} : { skip: 'needs root' };

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'strata-mount-'));
  try {
    await fn(dir);
  } finally {
    // Whatever a failed assertion left mounted must go before the tree can be removed.
    for (const m of await mountsUnder(dir)) await unmount(m, { detach: true });
    await rm(dir, { recursive: true, force: true });
  }
}

async function isMountPoint(p: string): Promise<boolean> {
  return (await mountsUnder(p)).includes(p);
}

test('overlay with a label longer than a page mounts through relative paths', rootOnly, async () => {
  await withTempDir(async (dir) => {
    // Docker's shape: <home>/l/<26-char id> lowers, <home>/<id>/{diff,work,merged}.
    const lowers: string[] = [];
    for (let i = 0; i < 128; i++) {
      const l = path.join(dir, 'l', shortLinkId());
      await mkdir(l, { recursive: true });
      await writeFile(path.join(l, `f${i}`), String(i));
      lowers.push(l);
    }
    await writeFile(path.join(lowers[0]!, 'shadowed'), 'top');
    await writeFile(path.join(lowers[127]!, 'shadowed'), 'bottom');
    const layer = path.join(dir, 'abc');
    for (const d of ['diff', 'work', 'merged']) await mkdir(path.join(layer, d), { recursive: true });
    const merged = path.join(layer, 'merged');
    const options = [`lowerdir=${lowers.join(':')}`, `upperdir=${layer}/diff`, `workdir=${layer}/work`];
    assert.ok(options.join(',').length > 4095);

    const cwd = process.cwd();
    await mountAll([{ type: 'overlay', source: 'overlay', options }], merged);
    try {
      assert.equal(process.cwd(), cwd);
      assert.equal(await isMountPoint(merged), true);
      assert.equal(await readFile(path.join(merged, 'f0'), 'utf8'), '0');
      assert.equal(await readFile(path.join(merged, 'f127'), 'utf8'), '127');
      assert.equal(await readFile(path.join(merged, 'shadowed'), 'utf8'), 'top');
      await writeFile(path.join(merged, 'new'), 'n');
      assert.equal(await readFile(path.join(layer, 'diff', 'new'), 'utf8'), 'n');
    } finally {
      await unmount(merged);
    }
    assert.equal(await isMountPoint(merged), false);
  });
});

test('overlay label still too long after shortening is refused; kernel errors are wrapped', rootOnly, async () => {
  await withTempDir(async (dir) => {
    const merged = path.join(dir, 'merged');
    await mkdir(merged);
    const lowers = Array.from({ length: 200 }, () => path.join(dir, 'l', `${shortLinkId()}${shortLinkId()}`));
    const options = [`lowerdir=${lowers.join(':')}`];
    await assert.rejects(mountAll([{ type: 'overlay', source: 'overlay', options }], merged), (err: Error) => {
      assert.match(err.message, /^cannot mount layer, mount label too large \d+$/);
      return true;
    });

    const missing = [`lowerdir=${path.join(dir, 'nope1')}:${path.join(dir, 'nope2')}`];
    await assert.rejects(mountAll([{ type: 'overlay', source: 'overlay', options: missing }], merged), (err: Error) => {
      assert.equal(err.message, `error creating overlay mount to ${merged}: ENOENT: no such file or directory, mount '${merged}'`);
      assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOENT');
      return true;
    });
    assert.equal(await isMountPoint(merged), false);
  });
});

test('bind mounts: ro is applied by remount, same source and target is a no-op', rootOnly, async () => {
  await withTempDir(async (dir) => {
    const src = path.join(dir, 'src');
    const dst = path.join(dir, 'dst');
    await mkdir(src);
    await mkdir(dst);
    await writeFile(path.join(src, 'f'), 'data');

    await mountAll([{ type: 'bind', source: src, options: ['rbind', 'ro', 'nosuid', 'rprivate'] }], dst);
    try {
      assert.equal(await readFile(path.join(dst, 'f'), 'utf8'), 'data');
      await assert.rejects(writeFile(path.join(dst, 'g'), 'x'), { code: 'EROFS' });
      const c = native().constants;
      assert.equal(native().statfs(dst).flags & (c.MS_RDONLY | c.MS_NOSUID), c.MS_RDONLY | c.MS_NOSUID);
      const info = await readFile('/proc/self/mountinfo', 'utf8');
      const line = info.split('\n').find((l) => l.split(' ')[4] === dst)!;
      assert.ok(line, 'bind mount listed');
      assert.doesNotMatch(line.split(' - ')[0]!, /shared:/, 'rprivate applied');
    } finally {
      await unmount(dst, { detach: true });
    }

    await mountAll([{ type: 'bind', source: src, options: ['rbind', 'ro'] }], src);
    assert.equal(await isMountPoint(src), false);
    await writeFile(path.join(src, 'still-writable'), 'x');
  });
});

test('unmount ignores targets that are not mounted or missing', async () => {
  await withTempDir(async (dir) => {
    await unmount(dir);
    await unmount(path.join(dir, 'missing'), { detach: true });
  });
});

test('mountsUnder decodes escapes and lists the deepest first', rootOnly, async () => {
  await withTempDir(async (dir) => {
    const outer = path.join(dir, 'a b');
    await mkdir(outer);
    await mountAll([{ type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] }], outer);
    const inner = path.join(outer, 'in\\ner');
    await mkdir(inner);
    await mountAll([{ type: 'tmpfs', source: 'tmpfs', options: ['size=1m', 'nodev'] }], inner);

    assert.deepEqual(await mountsUnder(dir), [inner, outer]);
    assert.deepEqual(await mountsUnder(inner), [inner]);
    assert.deepEqual(await mountsUnder(path.join(dir, 'a')), [], 'a prefix of a name is not a parent');

    await unmount(inner);
    await unmount(outer);
    assert.deepEqual(await mountsUnder(dir), []);
  });
});
