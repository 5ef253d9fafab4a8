/**
 * Advisory whole-file locks (flock(2)) shared with other strata processes.
 *
 * Each acquire opens its own file description, and flock locks belong to the description,
 * so two FileLocks on one path in one process exclude each other exactly as two processes
 * would. The kernel drops a lock when its last descriptor closes, which includes the
 * holder dying, so there is never a stale lock to clean up.
 */
import { constants as fsConstants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';

import { StrataError, isErrno } from '../errors.js';
import { native } from '../native/addon.js';

export type LockMode = 'shared' | 'exclusive';

export interface AcquireOptions {
  mode: LockMode;
  /** Wait for the lock (default). When false, a held lock throws `ERR_LOCKED` at once. */
  wait?: boolean;
}

async function openForLock(path: string): Promise<FileHandle> {
  let isDir = false;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  if (isDir) return open(path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  // 0o644 so a lock file created by root stays readable (and lockable) by others.
  return open(path, fsConstants.O_RDONLY | fsConstants.O_CREAT, 0o644);
}

export class FileLock {
  readonly path: string;
  readonly mode: LockMode;
  #handle: FileHandle | undefined;

  private constructor(path: string, mode: LockMode, handle: FileHandle) {
    this.path = path;
    this.mode = mode;
    this.#handle = handle;
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
    const handle = await openForLock(path);
    try {
      if (options.wait ?? true) {
        await addon.flockAsync(handle.fd, op);
      } else {
        try {
          addon.flock(handle.fd, op | c.LOCK_NB);
        } catch (err) {
          if (isErrno(err, 'EAGAIN') || isErrno(err, 'EWOULDBLOCK')) {
            throw new StrataError('ERR_LOCKED', `${path} is locked by another process`, { cause: err });
          }
          throw err;
        }
      }
    } catch (err) {
      await handle.close();
      throw err;
    }
    return new FileLock(path, options.mode, handle);
  }

  get held(): boolean {
    return this.#handle !== undefined;
  }

  /** Drops the lock. Closing the descriptor is what releases it; calling twice is harmless. */
  async release(): Promise<void> {
    const handle = this.#handle;
    if (!handle) return;
    this.#handle = undefined;
    await handle.close();
  }
}

/** Runs `fn` while holding the lock on `path`, releasing it however `fn` ends. */
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
  let handle: FileHandle;
  try {
    const isDir = (await stat(path)).isDirectory();
    handle = await open(path, isDir ? fsConstants.O_RDONLY | fsConstants.O_DIRECTORY : fsConstants.O_RDONLY);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
  try {
    addon.flock(handle.fd, c.LOCK_EX | c.LOCK_NB);
    return false;
  } catch (err) {
    if (isErrno(err, 'EAGAIN') || isErrno(err, 'EWOULDBLOCK')) return true;
    throw err;
  } finally {
    // Closing our own description drops the probe lock if we got it.
    await handle.close();
  }
}
