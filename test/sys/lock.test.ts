// Lock semantics checked across real processes: a child node process holds the lock
// through the compiled module, the test process contends for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { FileLock, isLockHeld, withLock, type LockMode } from '../../src/sys/lock.js';

const lockModuleUrl = new URL('../../src/sys/lock.js', import.meta.url).href;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'strata-lock-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Starts a process that takes the lock and keeps it until killed; resolves once held. */
async function holdInChild(p: string, mode: LockMode): Promise<ChildProcess> {
  const script = `
    const { FileLock } = await import(${JSON.stringify(lockModuleUrl)});
    await FileLock.acquire(${JSON.stringify(p)}, { mode: ${JSON.stringify(mode)} });
    process.stdout.write('held\\n');
    setInterval(() => {}, 1 << 30);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('held\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`lock holder exited early (${code})`)));
  });
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

function isLocked(err: unknown): boolean {
  return (err as { code?: string }).code === 'ERR_LOCKED';
}

test('an exclusive holder in another process excludes everyone', async () => {
  await withTempDir(async (dir) => {
    const p = path.join(dir, 'lock');
    const child = await holdInChild(p, 'exclusive');
    try {
      assert.equal(await isLockHeld(p), true);
      await assert.rejects(FileLock.acquire(p, { mode: 'exclusive', wait: false }), isLocked);
      await assert.rejects(FileLock.acquire(p, { mode: 'shared', wait: false }), isLocked);
    } finally {
      await kill(child);
    }
    const lock = await FileLock.acquire(p, { mode: 'exclusive', wait: false });
    await lock.release();
  });
});

test('shared holders coexist and keep exclusive out', async () => {
  await withTempDir(async (dir) => {
    const p = path.join(dir, 'lock');
    const child = await holdInChild(p, 'shared');
    try {
      const mine = await FileLock.acquire(p, { mode: 'shared', wait: false });
      assert.equal(mine.held, true);
      await assert.rejects(FileLock.acquire(p, { mode: 'exclusive', wait: false }), isLocked);
      assert.equal(await isLockHeld(p), true);
      await mine.release();
      assert.equal(mine.held, false);
      await mine.release();
    } finally {
      await kill(child);
    }
    assert.equal(await isLockHeld(p), false);
  });
});

test('a waiter gets the lock when the holder is killed with SIGKILL', async () => {
  await withTempDir(async (dir) => {
    const p = path.join(dir, 'lock');
    const child = await holdInChild(p, 'exclusive');
    let acquired = false;
    const waiting = FileLock.acquire(p, { mode: 'exclusive' }).then((l) => {
      acquired = true;
      return l;
    });
    try {
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(acquired, false, 'must wait while the child holds the lock');
    } finally {
      await kill(child);
    }
    const lock = await waiting;
    assert.ok(lock.held);
    await lock.release();
  });
});

test('two FileLocks in one process conflict like two processes', async () => {
  await withTempDir(async (dir) => {
    const p = path.join(dir, 'lock');
    const first = await FileLock.acquire(p, { mode: 'exclusive' });
    assert.equal((await stat(p)).isFile(), true, 'a missing lock file is created');
    await assert.rejects(FileLock.acquire(p, { mode: 'exclusive', wait: false }), isLocked);
    assert.equal(await isLockHeld(p), true);

    const order: string[] = [];
    const second = withLock(p, 'exclusive', () => {
      order.push('second');
    });
    await new Promise((r) => setTimeout(r, 50));
    order.push('release');
    await first.release();
    await second;
    assert.deepEqual(order, ['release', 'second']);
    assert.equal(await isLockHeld(p), false);
  });
});

test('directories can be locked, and withLock releases when fn throws', async () => {
  await withTempDir(async (dir) => {
    const d = path.join(dir, 'staging');
    await mkdir(d);
    const child = await holdInChild(d, 'exclusive');
    try {
      assert.equal(await isLockHeld(d), true);
      assert.equal((await stat(d)).isDirectory(), true);
    } finally {
      await kill(child);
    }
    await assert.rejects(
      withLock(d, 'shared', () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await isLockHeld(d), false);
    assert.equal(await isLockHeld(path.join(dir, 'missing')), false);
  });
});
