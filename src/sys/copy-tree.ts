/**
 * A faithful, fast tree copy (`cp -a` semantics): entry type, permission and special bits,
 * ownership, atime/mtime (to the microsecond: Node cannot set nanoseconds), xattrs of every namespace, hard links
 * within the copied tree, symlinks verbatim, device nodes, fifos and sockets.
 *
 * Shared by the vfs driver's snapshot copies and volume prepopulation (Docker's copy-up of
 * image content into an empty volume).
 *
 * Synchronous on purpose: a promise per entry costs more than the syscalls on trees of
 * thousands of files. Regular files go through copyFile with FICLONE, which shares extents
 * where the filesystem can (btrfs, xfs) and falls back to an in-kernel copy elsewhere.
 */
import {
  chmodSync,
  constants as fsConstants,
  copyFileSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  type BigIntStats,
} from 'node:fs';
import path from 'node:path';

import { isErrno } from '../errors.js';
import { native } from '../native/addon.js';

export interface CopyTreeOptions {
  /**
   * Skip xattrs the destination filesystem refuses (ENOTSUP/EOPNOTSUPP), and treat a source
   * that cannot list xattrs as having none. Docker's copy-up does this, since a volume may
   * sit on tmpfs or NFS; layer copies keep the default (strict), where a dropped
   * `security.capability` would silently change what a binary may do.
   */
  ignoreUnsupportedXattrs?: boolean;
}

const S_IFMT = 0o170000;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;

/** Linux's dev_t encoding (glibc `gnu_dev_major`/`gnu_dev_minor`). */
function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

/**
 * A timestamp for lutimes that lands on exactly the source's microsecond. libuv turns the
 * double into a timespec and truncates to microseconds, and a double near 1.7e9 s is only
 * good to ~0.2 µs, so a plain conversion can fall one microsecond short; aiming at the
 * middle of the microsecond cannot. Finer than that Node cannot set (no ns utimensat).
 */
export function utimeSeconds(ns: bigint): number {
  const us = ns / 1000n - (ns < 0n && ns % 1000n !== 0n ? 1n : 0n);
  return (Number(us) + 0.5) / 1e6;
}

function isUnsupported(err: unknown): boolean {
  return isErrno(err, 'ENOTSUP') || isErrno(err, 'EOPNOTSUPP');
}

class Copier {
  readonly #addon = native();
  readonly #lenient: boolean;
  // Everything we create is owned by our euid/egid until chowned, so an entry whose source
  // already has those ids needs no lchown: one syscall saved per file in the common case.
  readonly #ownUid = process.geteuid?.() ?? -1;
  readonly #ownGid = process.getegid?.() ?? -1;
  /** dev:ino of multiply-linked non-directories already copied → the path of their copy. */
  readonly #linked = new Map<string, string>();

  constructor(options: CopyTreeOptions) {
    this.#lenient = options.ignoreUnsupportedXattrs ?? false;
  }

  #copyXattrs(from: string, to: string): void {
    let names: string[];
    try {
      names = this.#addon.llistxattr(from);
    } catch (err) {
      if (this.#lenient && isUnsupported(err)) return;
      throw err;
    }
    for (const name of names) {
      const value = this.#addon.lgetxattr(from, name);
      if (value === undefined) continue;
      try {
        this.#addon.lsetxattr(to, name, value);
      } catch (err) {
        if (!(this.#lenient && isUnsupported(err))) throw err;
      }
    }
  }

  /**
   * Gives `to` the metadata of `from`. Order matters: chown clears setuid/setgid and
   * security.capability, so ownership goes first, then the mode, then xattrs; times go last
   * because every other change touches ctime and writes into a directory touch its mtime.
   */
  finish(from: string, to: string, st: BigIntStats, isDir: boolean): void {
    const uid = Number(st.uid);
    const gid = Number(st.gid);
    const mode = Number(st.mode);
    if (uid !== this.#ownUid || gid !== this.#ownGid) lchownSync(to, uid, gid);
    const type = mode & S_IFMT;
    // copyFile already gave a regular file its permission bits; only a chown that cleared
    // setuid/setgid makes a second chmod necessary. Symlinks have no mode of their own.
    if (type !== fsConstants.S_IFLNK && (isDir || type !== fsConstants.S_IFREG || (mode & (S_ISUID | S_ISGID)) !== 0)) {
      chmodSync(to, mode & 0o7777);
    }
    this.#copyXattrs(from, to);
    lutimesSync(to, utimeSeconds(st.atimeNs), utimeSeconds(st.mtimeNs));
  }

  /** Copies the children of directory `from` into the existing directory `to`. */
  copyChildren(from: string, to: string): void {
    for (const name of readdirSync(from)) {
      const s = path.join(from, name);
      const d = path.join(to, name);
      const est = lstatSync(s, { bigint: true });
      const type = Number(est.mode) & S_IFMT;
      if (type === fsConstants.S_IFDIR) {
        // Private until finish() gives it its real mode: nobody else sees a half-copied dir.
        mkdirSync(d, { mode: 0o700 });
        this.copyChildren(s, d);
        this.finish(s, d, est, true);
        continue;
      }
      if (est.nlink > 1n) {
        const key = `${est.dev}:${est.ino}`;
        const first = this.#linked.get(key);
        if (first !== undefined) {
          linkSync(first, d);
          continue;
        }
        this.#linked.set(key, d);
      }
      switch (type) {
        case fsConstants.S_IFREG:
          copyFileSync(s, d, fsConstants.COPYFILE_FICLONE);
          break;
        case fsConstants.S_IFLNK:
          symlinkSync(readlinkSync(s), d);
          break;
        default:
          // Devices, fifos and sockets: mknod takes the type bits with the mode.
          this.#addon.mknod(d, type | (Number(est.mode) & 0o777), devMajor(est.rdev), devMinor(est.rdev));
      }
      this.finish(s, d, est, false);
    }
  }
}

/**
 * Copies the tree at `src` to `dst`, which must not exist; `dst` itself gets `src`'s
 * metadata. On error the partial copy is left for the caller to remove.
 */
export function copyTree(src: string, dst: string, options: CopyTreeOptions = {}): void {
  const copier = new Copier(options);
  const st = lstatSync(src, { bigint: true });
  mkdirSync(dst, { mode: 0o700 });
  copier.copyChildren(src, dst);
  copier.finish(src, dst, st, true);
}

/**
 * Copies the children of `src` into the existing directory `dst`, then gives `dst` the
 * metadata (owner, mode, xattrs, times) of `src`. Entries already in `dst` make the copy
 * fail with EEXIST rather than be overwritten.
 */
export function copyTreeInto(src: string, dst: string, options: CopyTreeOptions = {}): void {
  const copier = new Copier(options);
  const st = lstatSync(src, { bigint: true });
  copier.copyChildren(src, dst);
  copier.finish(src, dst, st, true);
}

/** Gives `dst` the owner, mode, xattrs and times of `src` (neither followed if a symlink). */
export function copyAttributes(src: string, dst: string, options: CopyTreeOptions = {}): void {
  const st = lstatSync(src, { bigint: true });
  new Copier(options).finish(src, dst, st, st.isDirectory());
}
