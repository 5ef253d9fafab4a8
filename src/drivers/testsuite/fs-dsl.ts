/**
 * Declarative filesystem fixtures and tree snapshots for tests (after continuity's fstest).
 *
 * Build a tree with `applyFs(dir, createFile('/a', 'x'), mkdir('/d'), symlink('a', '/d/l'))`;
 * read one back with `snapshotTree(dir)` and compare two with `assertSameTree`. Paths in
 * operations are relative to `dir` (a leading `/` is allowed); operations act on the entry
 * itself and never follow a final symlink, except `createFile` writing into an existing file.
 *
 * Everything is a plain syscall on whatever `dir` is, so applying operations inside a
 * mounted overlay produces real whiteouts, opaque dirs and copy-ups. Re-exported for all
 * tests by `test/helpers/fs-dsl.ts`; it lives here because the driver conformance suite,
 * which ships under `src/`, is built on it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { chmod as fsChmod, lchown, link, lutimes, mkdir as fsMkdir, rename as fsRename, rm, symlink as fsSymlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { native } from '../../native/addon.js';

/** One step of a fixture: applied to the tree rooted at the given directory. */
export interface FsOp {
  /** Short description, shown when a fixture fails to apply. */
  readonly describe: string;
  apply(root: string): Promise<void>;
}

function op(describe: string, apply: (root: string) => Promise<void>): FsOp {
  return { describe, apply };
}

/** Resolves `p` inside `root`; refuses paths that climb out. */
function inRoot(root: string, p: string): string {
  const full = path.join(root, p);
  if (full !== root && !full.startsWith(root.endsWith(path.sep) ? root : root + path.sep)) {
    throw new Error(`fixture path ${JSON.stringify(p)} escapes ${root}`);
  }
  return full;
}

/** Applies `ops` in order under `dir`. A failing step is named in the error. */
export async function applyFs(dir: string, ...ops: FsOp[]): Promise<void> {
  for (const o of ops) {
    try {
      await o.apply(dir);
    } catch (err) {
      throw new Error(`applyFs: ${o.describe} in ${dir}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * Writes a regular file (replacing the content of an existing one) and sets its mode
 * exactly, whatever the umask.
 */
export function createFile(p: string, content: string | Uint8Array, mode = 0o644): FsOp {
  return op(`createFile ${p}`, async (root) => {
    const full = inRoot(root, p);
    await writeFile(full, content);
    await fsChmod(full, mode);
  });
}

/** Creates a directory (and missing parents) and sets its mode exactly. */
export function mkdir(p: string, mode = 0o755): FsOp {
  return op(`mkdir ${p}`, async (root) => {
    const full = inRoot(root, p);
    await fsMkdir(full, { recursive: true });
    await fsChmod(full, mode);
  });
}

/** `rm -rf`: through an overlay this leaves whiteouts for what lower layers held. */
export function remove(p: string): FsOp {
  return op(`remove ${p}`, (root) => rm(inRoot(root, p), { recursive: true }));
}

/**
 * rename(2). Through an overlay without redirect_dir, renaming a directory that comes from
 * a lower layer fails with EXDEV (as `mv` would see before falling back to a copy).
 */
export function rename(from: string, to: string): FsOp {
  return op(`rename ${from} ${to}`, (root) => fsRename(inRoot(root, from), inRoot(root, to)));
}

/** A symlink at `p` whose content is `target`, verbatim. */
export function symlink(target: string, p: string): FsOp {
  return op(`symlink ${p} -> ${target}`, (root) => fsSymlink(target, inRoot(root, p)));
}

/** A hard link at `p` to the existing `existing`. */
export function hardlink(existing: string, p: string): FsOp {
  return op(`hardlink ${p} => ${existing}`, (root) => link(inRoot(root, existing), inRoot(root, p)));
}

/** chmod(2), special bits included. Follows a symlink, like chmod(1). */
export function chmod(p: string, mode: number): FsOp {
  return op(`chmod ${mode.toString(8)} ${p}`, (root) => fsChmod(inRoot(root, p), mode));
}

/** lchown(2). The kernel clears setuid/setgid on a file whose owner changes. */
export function chown(p: string, uid: number, gid: number): FsOp {
  return op(`chown ${uid}:${gid} ${p}`, (root) => lchown(inRoot(root, p), uid, gid));
}

/** lsetxattr(2), creating or replacing `name`. */
export function setXattr(p: string, name: string, value: string | Uint8Array): FsOp {
  return op(`setXattr ${name} ${p}`, async (root) => {
    native().lsetxattr(inRoot(root, p), name, Buffer.from(value));
  });
}

/** mknod(2) of a character or block device or a fifo, with permission bits `mode`. */
export function mknod(p: string, kind: 'char' | 'block' | 'fifo', mode = 0o644, major = 0, minor = 0): FsOp {
  return op(`mknod ${kind} ${major}:${minor} ${p}`, async (root) => {
    const c = native().constants;
    const type = kind === 'char' ? c.S_IFCHR : kind === 'block' ? c.S_IFBLK : c.S_IFIFO;
    const full = inRoot(root, p);
    native().mknod(full, type | mode, major, minor);
    // mknod's mode passes through the umask.
    await fsChmod(full, mode);
  });
}

/** lutimes(2); times as Dates or seconds since the epoch (fractions allowed). */
export function setTimes(p: string, atime: Date | number, mtime: Date | number): FsOp {
  return op(`setTimes ${p}`, (root) => lutimes(inRoot(root, p), atime, mtime));
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

/** One entry of `snapshotTree`. Fields that do not apply are null, so entries compare whole. */
export interface TreeEntry {
  /** `/` for the root, else `/a/b`. */
  path: string;
  type: EntryType;
  /** Permission and special bits (`mode & 0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of a regular file; a symlink's target length; 0 otherwise (dir sizes are fs noise). */
  size: number;
  /** sha256 hex of a regular file's content. */
  hash: string | null;
  linkTarget: string | null;
  /** `major:minor` of a device node. */
  rdev: string | null;
  /** The first path (in sort order) of this tree that is the same inode, for hard links. */
  hardlinkOf: string | null;
  /** Extended attributes by name; values as UTF-8 text, or `hex:<bytes>` when not text. */
  xattrs: Record<string, string>;
}

export interface SnapshotOptions {
  /** Which xattr names to record (default: all). */
  xattrs?: (name: string) => boolean;
}

function entryType(mode: number): EntryType {
  switch (mode & 0o170000) {
    case 0o100000: return 'file';
    case 0o040000: return 'dir';
    case 0o120000: return 'symlink';
    case 0o020000: return 'char';
    case 0o060000: return 'block';
    case 0o010000: return 'fifo';
    default: return 'socket';
  }
}

/** Linux's dev_t split (glibc gnu_dev_major/minor). */
function formatRdev(rdev: bigint): string {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

function xattrText(value: Buffer): string {
  const text = value.toString('utf8');
  return Buffer.from(text, 'utf8').equals(value) && !/[\x00-\x08\x0e-\x1f]/.test(text) ? text : `hex:${value.toString('hex')}`;
}

/**
 * Every entry under `dir` (the root included, as `/`), sorted by path, without following
 * symlinks or crossing into anything but plain directory traversal.
 */
export async function snapshotTree(dir: string, options: SnapshotOptions = {}): Promise<TreeEntry[]> {
  const addon = native();
  const keep = options.xattrs ?? (() => true);
  const entries: TreeEntry[] = [];
  const inodes = new Map<string, string>();
  const visit = (full: string, rel: string): void => {
    const st = lstatSync(full, { bigint: true });
    const type = entryType(Number(st.mode));
    const xattrs: Record<string, string> = {};
    for (const name of addon.llistxattr(full).sort()) {
      if (!keep(name)) continue;
      const value = addon.lgetxattr(full, name);
      if (value !== undefined) xattrs[name] = xattrText(value);
    }
    const linkTarget = type === 'symlink' ? readlinkSync(full) : null;
    entries.push({
      path: rel,
      type,
      mode: Number(st.mode) & 0o7777,
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: type === 'file' || type === 'symlink' ? Number(st.size) : 0,
      hash: type === 'file' ? createHash('sha256').update(readFileSync(full)).digest('hex') : null,
      linkTarget,
      rdev: type === 'char' || type === 'block' ? formatRdev(st.rdev) : null,
      hardlinkOf: type !== 'dir' && st.nlink > 1n ? `${st.dev}:${st.ino}` : null,
      xattrs,
    });
    if (type === 'dir') {
      for (const name of readdirSync(full)) visit(path.join(full, name), rel === '/' ? `/${name}` : `${rel}/${name}`);
    }
  };
  visit(path.resolve(dir), '/');
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  // Resolve inode keys to the first path holding that inode, now that the order is fixed.
  for (const e of entries) {
    if (e.hardlinkOf === null) continue;
    const first = inodes.get(e.hardlinkOf);
    if (first === undefined) {
      inodes.set(e.hardlinkOf, e.path);
      e.hardlinkOf = null;
    } else {
      e.hardlinkOf = first;
    }
  }
  return entries;
}

/** One line per entry (`type mode uid:gid size path [-> target]`), for failure dumps. */
export function formatTree(entries: readonly TreeEntry[]): string {
  return entries
    .map((e) => {
      const extra = [
        e.linkTarget !== null ? `-> ${e.linkTarget}` : '',
        e.rdev !== null ? `rdev=${e.rdev}` : '',
        e.hardlinkOf !== null ? `=> ${e.hardlinkOf}` : '',
        Object.keys(e.xattrs).length > 0 ? `xattrs=${JSON.stringify(e.xattrs)}` : '',
      ].filter(Boolean);
      return [e.type.padEnd(7), e.mode.toString(8).padStart(4, '0'), `${e.uid}:${e.gid}`, String(e.size), e.path, ...extra].join(' ');
    })
    .join('\n');
}

/** Human-readable differences between two snapshots (empty when equal). */
export function diffTrees(actual: readonly TreeEntry[], expected: readonly TreeEntry[]): string[] {
  const a = new Map(actual.map((e) => [e.path, e]));
  const b = new Map(expected.map((e) => [e.path, e]));
  const out: string[] = [];
  for (const [p, e] of b) {
    const got = a.get(p);
    if (!got) {
      out.push(`missing ${p}`);
      continue;
    }
    for (const key of Object.keys(e) as Array<keyof TreeEntry>) {
      const want = JSON.stringify(e[key]);
      const have = JSON.stringify(got[key]);
      if (want !== have) out.push(`${p}: ${key} is ${have}, expected ${want}`);
    }
  }
  for (const p of a.keys()) if (!b.has(p)) out.push(`unexpected ${p}`);
  return out;
}

/** Asserts that the trees under `actualDir` and `expectedDir` are the same (see TreeEntry). */
export async function assertSameTree(actualDir: string, expectedDir: string, options: SnapshotOptions = {}): Promise<void> {
  const differences = diffTrees(await snapshotTree(actualDir, options), await snapshotTree(expectedDir, options));
  assert.deepEqual(differences, [], `${actualDir} differs from ${expectedDir}:\n${differences.join('\n')}`);
}
