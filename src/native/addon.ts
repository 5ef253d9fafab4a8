/**
 * Typed face of the C addon (native/strata.c). Only syscalls Node lacks live there; each
 * function is a thin wrapper that throws errors shaped like Node's fs errors
 * (`code`, `errno` (negative, as libuv reports it), `syscall`, `path`, message
 * `ENOENT: no such file or directory, mknod '/x'`).
 *
 * The addon is loaded once, lazily, on first use, so commands that never touch it (help,
 * `images`) do not pay for dlopen.
 */
import { createRequire } from 'node:module';

import { packageFile } from '../package-files.js';

export interface StatfsResult {
  /** f_type magic, e.g. 0xef53 for ext4, 0x9123683e for btrfs. */
  type: number;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namelen: number;
  flags: number;
}

export interface NativeAddon {
  /** mknod(2). `mode` includes the file type bits (S_IFCHR, S_IFBLK, S_IFIFO). */
  mknod(path: string, mode: number, major: number, minor: number): void;
  /** lgetxattr(2); returns undefined when the attribute is absent (ENODATA). */
  lgetxattr(path: string, name: string): Buffer | undefined;
  lsetxattr(path: string, name: string, value: Buffer, flags?: number): void;
  /** llistxattr(2); names without their NUL terminators. */
  llistxattr(path: string): string[];
  lremovexattr(path: string, name: string): void;
  /**
   * mount(2). When `cwd` is given the call runs on a helper thread that did
   * unshare(CLONE_FS) + chdir(cwd) first, so relative paths in `data` resolve against `cwd`
   * without touching the process working directory (overlay option strings longer than a page).
   */
  mount(source: string, target: string, fstype: string, flags: number, data: string | null, cwd?: string): void;
  umount2(target: string, flags: number): void;
  /**
   * A new network namespace, kept alive by a bind mount on the existing file `path` (made on a
   * helper thread; the process's own namespace is untouched). Undo with umount2 + unlink.
   */
  netnsCreate(path: string): void;
  /** A new pseudo-terminal pair (close-on-exec fds). */
  openPty(): { master: number; slave: number };
  /** TIOCSWINSZ on a pty master. */
  setWinsize(fd: number, rows: number, cols: number): void;
  /** flock(2) on an open fd; with LOCK_NB it throws EWOULDBLOCK (code 'EAGAIN') when held. */
  flock(fd: number, operation: number): void;
  /**
   * Blocking flock on a dedicated helper thread (not the libuv pool, which a long wait would
   * starve), so the event loop keeps running while waiting.
   */
  flockAsync(fd: number, operation: number): Promise<void>;
  /** renameat2(AT_FDCWD, old, AT_FDCWD, new, flags). */
  renameat2(oldPath: string, newPath: string, flags: number): void;
  /** ioctl(destFd, FICLONE, srcFd): share extents (btrfs, xfs reflink). */
  ficlone(destFd: number, srcFd: number): void;
  statfs(path: string): StatfsResult;
  /** syncfs(2) on the filesystem containing fd. */
  syncfs(fd: number): void;
  /**
   * `rm -rf path` as one thread-pool job (nftw: no symlink followed, no other filesystem
   * entered). A missing path is success. Errors name the entry that could not go.
   */
  removeTree(path: string): Promise<void>;
  /** syncfs(2) on libuv's thread pool; the fd must stay open until the promise settles. */
  syncfsAsync(fd: number): Promise<void>;
  /** readahead(2): start reading `count` bytes at `offset` into the page cache; returns at once. */
  readahead(fd: number, offset: number, count: number): void;
  /**
   * opendir/readdir(3): `[name, d_type]` for each entry except `.` and `..`. Unlike Node's
   * readdir, DT_UNKNOWN is reported as is rather than resolved with lstat.
   */
  readdirTypes(path: string): Array<[name: string, type: number]>;
  readonly constants: {
    MS_RDONLY: number; MS_NOSUID: number; MS_NODEV: number; MS_NOEXEC: number;
    MS_BIND: number; MS_REC: number; MS_PRIVATE: number; MS_SLAVE: number; MS_REMOUNT: number;
    MS_SYNCHRONOUS: number; MS_MANDLOCK: number; MS_DIRSYNC: number; MS_NOATIME: number;
    MS_NODIRATIME: number; MS_MOVE: number; MS_SILENT: number; MS_UNBINDABLE: number;
    MS_SHARED: number; MS_RELATIME: number; MS_STRICTATIME: number;
    MNT_DETACH: number; MNT_FORCE: number;
    LOCK_SH: number; LOCK_EX: number; LOCK_NB: number; LOCK_UN: number;
    RENAME_NOREPLACE: number; RENAME_EXCHANGE: number; RENAME_WHITEOUT: number;
    XATTR_CREATE: number; XATTR_REPLACE: number;
    S_IFCHR: number; S_IFBLK: number; S_IFIFO: number;
    DT_UNKNOWN: number; DT_REG: number; DT_DIR: number; DT_LNK: number; DT_CHR: number;
  };
}

let loaded: NativeAddon | undefined;

/** The addon, loaded on first call. Throws a clear error when it was not built. */
export function native(): NativeAddon {
  if (loaded) return loaded;
  const require = createRequire(packageFile('package.json'));
  // A Debug build (`node-gyp rebuild --debug`) is accepted when there is no Release one.
  const candidates = ['./build/Release/strata.node', './build/Debug/strata.node'];
  let firstError: unknown;
  for (const candidate of candidates) {
    try {
      loaded = require(candidate) as NativeAddon;
      return loaded;
    } catch (err) {
      firstError ??= err;
    }
  }
  throw new Error('strata native addon is not built; run `npm run build:native`', { cause: firstError });
}
