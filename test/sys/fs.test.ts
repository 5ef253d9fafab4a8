import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { backingFilesystem, exists, fsyncFile, removeAll, supportsDType } from '../../src/sys/fs.js';
import { mountAll, mountsUnder, unmount } from '../../src/sys/mount.js';

const rootOnly = process.getuid?.() === 0 ? {} : { skip: 'needs root' };

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'strata-fs-'));
  try {
    await fn(dir);
  } finally {
    for (const m of await mountsUnder(dir)) await unmount(m, { detach: true });
    await rm(dir, { recursive: true, force: true });
  }
}

test('removeAll detaches mounts below the path before deleting, sparing bind sources', rootOnly, async () => {
  await withTempDir(async (dir) => {
    const precious = path.join(dir, 'precious');
    await mkdir(precious);
    await writeFile(path.join(precious, 'keep'), 'k');
    const doomed = path.join(dir, 'doomed');
    const bindTarget = path.join(doomed, 'layer', 'merged');
    await mkdir(bindTarget, { recursive: true });
    await mountAll([{ type: 'bind', source: precious, options: ['rbind'] }], bindTarget);
    const tmpfsTarget = path.join(doomed, 'shm');
    await mkdir(tmpfsTarget);
    await mountAll([{ type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] }], tmpfsTarget);

    await removeAll(doomed);
    assert.equal(await exists(doomed), false);
    assert.deepEqual(await readdir(precious), ['keep'], 'rm -rf must not reach through the bind mount');
    assert.deepEqual(await mountsUnder(dir), []);
    await removeAll(path.join(dir, 'never-existed'));
  });
});

test('exists does not follow the final symlink; fsyncFile works on files and dirs', async () => {
  await withTempDir(async (dir) => {
    await symlink('nowhere', path.join(dir, 'dangling'));
    assert.equal(await exists(path.join(dir, 'dangling')), true);
    assert.equal(await exists(path.join(dir, 'missing')), false);
    assert.equal(await exists(path.join(dir, 'dangling', 'below')), false);
    await writeFile(path.join(dir, 'f'), 'x');
    await fsyncFile(path.join(dir, 'f'));
    await fsyncFile(dir);
    await assert.rejects(fsyncFile(path.join(dir, 'missing')), { code: 'ENOENT' });
  });
});

test('backingFilesystem names the filesystem the way Docker does', async () => {
  await withTempDir(async (dir) => {
    const kernelName = execFileSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).trim();
    const expected: Record<string, string> = { 'ext2/ext3': 'extfs', xfs: 'xfs', btrfs: 'btrfs', tmpfs: 'tmpfs', overlayfs: 'overlayfs' };
    if (expected[kernelName]) assert.equal(await backingFilesystem(dir), expected[kernelName]);
    else assert.equal(typeof (await backingFilesystem(dir)), 'string');
    assert.equal(await backingFilesystem('/proc'), '<unknown>');
    await assert.rejects(backingFilesystem(path.join(dir, 'missing')), { code: 'ENOENT' });
  });
});

test('backingFilesystem recognises tmpfs', rootOnly, async () => {
  await withTempDir(async (dir) => {
    await mountAll([{ type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] }], dir);
    try {
      assert.equal(await backingFilesystem(dir), 'tmpfs');
      assert.equal(await supportsDType(dir), true);
    } finally {
      await unmount(dir);
    }
  });
});

test('supportsDType is true on the temp filesystem and cleans up its probe', async () => {
  await withTempDir(async (dir) => {
    assert.equal(await supportsDType(dir), true);
    assert.deepEqual(await readdir(dir), []);
  });
});
