/**
 * Stage-then-rename writes: a reader sees either the old content or the complete new one,
 * never a prefix, and a crash leaves at worst a stray temp file.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync, constants as fsConstants, createWriteStream, fchmodSync, fsyncSync, mkdtempSync, openSync, renameSync, rmSync,
  writeFileSync, type WriteStream,
} from 'node:fs';
import { lstat, rename, rm } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import path from 'node:path';

import { InvalidArgumentError, isErrno } from '../errors.js';
import { native } from '../native/addon.js';
import { FileLock } from './lock.js';

export interface AtomicWriteOptions {
  /** Final permission bits, applied with fchmod so the umask cannot narrow them. */
  mode?: number;
  /** fsync the data before the rename (default true). */
  fsync?: boolean;
}

/** Writes `data` to `file` through a temp file in the same directory and a rename. */
export async function atomicWriteFile(
  file: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const { mode = 0o644, fsync = true } = options;
  // Same directory, so the rename never crosses a filesystem; dot-prefixed so listings
  // of the directory can tell it from real entries.
  const tmp = path.join(path.dirname(file), `.tmp-${path.basename(file)}${randomBytes(6).toString('hex')}`);
  // Synchronous: these are small metadata files, and six thread-pool round trips would cost
  // more than the writes themselves (see sys/fs.ts).
  const fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  let renamed = false;
  try {
    try {
      writeFileSync(fd, data);
      fchmodSync(fd, mode);
      if (fsync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    renamed = true;
  } finally {
    if (!renamed) rmSync(tmp, { force: true });
  }
}

/** fsyncs a directory, making renames and creations inside it durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const fd = openSync(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function renameUnlessExists(from: string, to: string): Promise<void> {
  const existing = await lstat(to).catch((err: unknown) => {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  });
  if (existing) {
    throw Object.assign(new Error(`EEXIST: file already exists, rename '${from}' -> '${to}'`), {
      code: 'EEXIST',
      errno: -osConstants.errno.EEXIST,
      syscall: 'rename',
      path: from,
      dest: to,
    });
  }
  await rename(from, to);
}

/**
 * A staging directory whose files appear at their final place all at once, by renaming the
 * whole directory. While staging it holds an exclusive flock on itself, so a cleaner can
 * tell a live WriteSet (lock held) from one left behind by a crash (`isLockHeld`).
 */
export class WriteSet {
  readonly path: string;
  #lock: FileLock | undefined;

  private constructor(dir: string, lock: FileLock) {
    this.path = dir;
    this.#lock = lock;
  }

  /** Creates `<tmpDir>/write-set-XXXXXX` (mode 0700) and locks it. */
  static async create(tmpDir: string): Promise<WriteSet> {
    const dir = mkdtempSync(path.join(tmpDir, 'write-set-'));
    try {
      const lock = await FileLock.acquire(dir, { mode: 'exclusive', wait: false });
      return new WriteSet(dir, lock);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  #resolve(name: string): string {
    const full = path.resolve(this.path, name);
    if (!full.startsWith(this.path + path.sep)) {
      throw new InvalidArgumentError(`write set entry ${JSON.stringify(name)} escapes ${this.path}`);
    }
    return full;
  }

  /**
   * Writes a file into the set. No fsync here: `sync()` makes every staged file durable
   * with one syncfs instead of one fsync per file.
   */
  async writeFile(name: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
    const fd = openSync(this.#resolve(name), 'w', mode);
    try {
      writeFileSync(fd, data);
      fchmodSync(fd, mode);
    } finally {
      closeSync(fd);
    }
  }

  createWriteStream(name: string, options: { mode?: number } = {}): WriteStream {
    return createWriteStream(this.#resolve(name), { mode: options.mode ?? 0o644 });
  }

  /** syncfs on the filesystem holding the set: every staged file and directory entry. */
  async sync(): Promise<void> {
    const fd = openSync(this.path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    try {
      native().syncfs(fd);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Renames the set to `target`, which must not exist (the error is a Node errno error,
   * EEXIST or ENOTEMPTY), then drops the lock. On failure the set stays staged and locked,
   * so the caller may retry or cancel.
   */
  async commit(target: string): Promise<void> {
    if (!this.#lock) throw new InvalidArgumentError(`write set ${this.path} is already finished`);
    const addon = native();
    try {
      // NOREPLACE: a plain rename would silently replace an empty directory at `target`.
      addon.renameat2(this.path, target, addon.constants.RENAME_NOREPLACE);
    } catch (err) {
      // Some filesystems (older NFS, FUSE) reject the flag; fall back to a checked rename.
      if (!isErrno(err, 'EINVAL') && !isErrno(err, 'ENOSYS')) throw err;
      await renameUnlessExists(this.path, target);
    }
    await this.#release();
  }

  /** Removes the set and everything in it. */
  async cancel(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
    await this.#release();
  }

  async #release(): Promise<void> {
    const lock = this.#lock;
    this.#lock = undefined;
    await lock?.release();
  }
}
