import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { WriteSet, atomicWriteFile, syncDirectory } from '../../src/sys/atomic.js';
import { isLockHeld } from '../../src/sys/lock.js';

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'strata-atomic-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('atomicWriteFile replaces content, applies mode despite umask, leaves no temp', async () => {
  await withTempDir(async (dir) => {
    const f = path.join(dir, 'repositories.json');
    await writeFile(f, 'old');
    const before = await stat(f);
    const oldMask = process.umask(0o077);
    try {
      await atomicWriteFile(f, '{"new":true}');
      assert.equal((await stat(f)).mode & 0o7777, 0o644);
      await atomicWriteFile(path.join(dir, 'exec'), Buffer.from('#!/bin/sh\n'), { mode: 0o755, fsync: false });
      assert.equal((await stat(path.join(dir, 'exec'))).mode & 0o7777, 0o755);
    } finally {
      process.umask(oldMask);
    }
    assert.equal(await readFile(f, 'utf8'), '{"new":true}');
    assert.notEqual((await stat(f)).ino, before.ino, 'replaced by rename, not rewritten in place');
    assert.deepEqual((await readdir(dir)).sort(), ['exec', 'repositories.json']);
  });
});

test('atomicWriteFile removes its temp file when the rename fails', async () => {
  await withTempDir(async (dir) => {
    const target = path.join(dir, 'target');
    await mkdir(path.join(target, 'child'), { recursive: true });
    await assert.rejects(atomicWriteFile(target, 'x'), { code: 'EISDIR' });
    assert.deepEqual(await readdir(dir), ['target']);
    await assert.rejects(atomicWriteFile(path.join(dir, 'missing', 'f'), 'x'), { code: 'ENOENT' });
  });
});

test('WriteSet stages files under a lock and commits by renaming the directory', async () => {
  await withTempDir(async (dir) => {
    const tmp = path.join(dir, 'tmp');
    await mkdir(tmp);
    const ws = await WriteSet.create(tmp);
    assert.equal(path.dirname(ws.path), tmp);
    assert.match(path.basename(ws.path), /^write-set-/);
    assert.equal((await stat(ws.path)).mode & 0o777, 0o700);
    assert.equal(await isLockHeld(ws.path), true, 'a live write set is visibly locked');

    await ws.writeFile('json', '{}');
    await ws.writeFile('exec', 'x', 0o750);
    const stream = ws.createWriteStream('layer.tar');
    stream.end(Buffer.alloc(10000, 1));
    await once(stream, 'close');
    await ws.sync();
    assert.throws(() => ws.createWriteStream('../escape'), { code: 'ERR_INVALID_ARGUMENT' });

    const target = path.join(dir, 'final');
    await ws.commit(target);
    assert.deepEqual((await readdir(target)).sort(), ['exec', 'json', 'layer.tar']);
    assert.equal((await stat(path.join(target, 'exec'))).mode & 0o777, 0o750);
    assert.equal((await stat(path.join(target, 'layer.tar'))).size, 10000);
    assert.equal(await isLockHeld(target), false, 'the lock is gone after commit');
    assert.deepEqual(await readdir(tmp), []);
    await syncDirectory(dir);
  });
});

test('WriteSet commit refuses an existing target; cancel removes the set', async () => {
  await withTempDir(async (dir) => {
    const existingEmpty = path.join(dir, 'empty');
    const existingFull = path.join(dir, 'full');
    await mkdir(existingEmpty);
    await mkdir(existingFull);
    await writeFile(path.join(existingFull, 'keep'), 'k');

    const ws = await WriteSet.create(dir);
    await ws.writeFile('a', 'a');
    for (const target of [existingEmpty, existingFull]) {
      await assert.rejects(ws.commit(target), (err: NodeJS.ErrnoException) => {
        assert.ok(err.code === 'EEXIST' || err.code === 'ENOTEMPTY', String(err.code));
        assert.ok(typeof err.errno === 'number' && err.errno < 0);
        return true;
      });
    }
    assert.deepEqual(await readdir(existingEmpty), []);
    assert.equal(await isLockHeld(ws.path), true, 'still staged after a failed commit');

    await ws.cancel();
    assert.equal((await readdir(dir)).some((n) => n.startsWith('write-set-')), false);
    await assert.rejects(syncDirectory(path.join(dir, 'missing')), { code: 'ENOENT' });
  });
});
