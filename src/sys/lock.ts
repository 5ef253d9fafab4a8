/**
 * Advisory whole-file locks (flock(2)) shared with other strata processes.
 *
 * Each acquire opens its own file description, and flock locks belong to the description,
 * so two FileLocks on one path in one process exclude each other exactly as two processes
 * would. The kernel drops a lock when its last descriptor closes, which includes the
 * holder dying, so there is never a stale lock to clean up.
 */
import { closeSync, constants as fsConstants, openSync, statSync } from 'node:fs';

import { StrataError, isErrno } from '../errors.js';
import { native } from '../native/addon.js';

// Opening, probing and closing a lock file are single syscalls of a few microseconds; they
// are made synchronously because a thread-pool round trip costs ten times that, and every
// strata command takes several locks.

export type LockMode = 'shared' | 'exclusive';

export interface AcquireOptions {
  mode: LockMode;
  /** Wait for the lock (default). When false, a held lock throws `ERR_LOCKED` at once. */
  wait?: boolean;
}

function openForLock(path: string): number {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  if (isDir) return openSync(path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  // 0o644 so a lock file created by root stays readable (and lockable) by others.
  return openSync(path, fsConstants.O_RDONLY | fsConstants.O_CREAT, 0o644);
}

function isContended(err: unknown): boolean {
  return isErrno(err, 'EAGAIN') || isErrno(err, 'EWOULDBLOCK');
}

export class FileLock {
  readonly path: string;
  readonly mode: LockMode;
  #fd: number | undefined;

  private constructor(path: string, mode: LockMode, fd: number) {
    this.path = path;
    this.mode = mode;
    this.#fd = fd;
  }

  /**
   * Opens `path` (creating a regular file if missing; an existing directory is opened as
   * such) and locks it. Throws `StrataError('ERR_LOCKED')` when `wait` is false and the
   * lock is held in a conflicting mode.
   */
  static async acquire(path: string, options: AcquireOptions): Promise<FileLock> {
    const addon = native();
    const c = addon.constants;
    const op = options.mode === 'shared' ? c.LOCK_SH : c.LOCK_EX;
    const fd = openForLock(path);
    try {
      try {
        addon.flock(fd, op | c.LOCK_NB);
      } catch (err) {
        if (!isContended(err)) throw err;
        if (!(options.wait ?? true)) {
          throw new StrataError('ERR_LOCKED', `${path} is locked by another process`, { cause: err });
        }
        // Only a contended lock pays for the waiting thread (native flockAsync).
        await addon.flockAsync(fd, op);
      }
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return new FileLock(path, options.mode, fd);
  }

  get held(): boolean {
    return this.#fd !== undefined;
  }

  /** Drops the lock. Closing the descriptor is what releases it; calling twice is harmless. */
  async release(): Promise<void> {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    closeSync(fd);
  }
}

export async function withLock<T>(path: string, mode: LockMode, fn: () => Promise<T> | T): Promise<T> {
  const lock = await FileLock.acquire(path, { mode });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/**
 * Whether someone else (another process, or another FileLock in this one) holds any lock
 * on `path`. A missing path is not locked. The probe is momentary: the answer can be stale
 * by the time the caller acts on it, so use it only where a race is harmless (cleaners
 * skipping live staging directories).
 */
export async function isLockHeld(path: string): Promise<boolean> {
  const addon = native();
  const c = addon.constants;
  let fd: number;
  try {
    const isDir = statSync(path).isDirectory();
    fd = openSync(path, isDir ? fsConstants.O_RDONLY | fsConstants.O_DIRECTORY : fsConstants.O_RDONLY);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
  try {
    addon.flock(fd, c.LOCK_EX | c.LOCK_NB);
    return false;
  } catch (err) {
    if (isContended(err)) return true;
    throw err;
  } finally {
    // Closing our own description drops the probe lock if we got it.
    closeSync(fd);
  }
}
