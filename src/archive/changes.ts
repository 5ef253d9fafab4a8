/**
 * Filesystem changes of a writable layer as `docker diff` reports them (A added, C changed,
 * D deleted), in the two ways Docker computes them:
 *
 *  - `overlayChanges(upper, lowers)`: only the upper directory is walked (cost ∝ changes).
 *    A char 0:0 device is a deletion; an opaque directory that existed below is reported
 *    deleted (its new entries then appear as added), as Docker's overlay walker does.
 *    A path that exists in any lower is a change, except directories whose size, mode and
 *    mtime equal the lower's (copied up only because something below them changed).
 *  - `treeChanges(dir, parentDir)`: two full trees compared (the vfs fallback). Directories
 *    compare by mode/owner/rdev only (their size and mtime are not a measure of change), other
 *    files also by size and mtime.
 *
 * The overlay walker reports the parent of an added or deleted path as changed; the tree
 * walker reports every directory with changes inside. Either way a directory is listed
 * before what it contains.
 */
import { lstat, readdir } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import path from 'node:path';

import { isErrno } from '../errors.js';
import { native } from '../native/addon.js';
import { statDifferent } from './diff.js';
import { OVERLAY_OPAQUE_XATTR } from './unpack.js';

export type ChangeKind = 'C' | 'A' | 'D';

/** Docker's `container.Change`: `Kind` 0 modified, 1 added, 2 deleted. */
export interface Change {
  Path: string;
  Kind: 0 | 1 | 2;
}

export const CHANGE_MODIFY = 0;
export const CHANGE_ADD = 1;
export const CHANGE_DELETE = 2;

/** The letter `docker diff` prints for a change kind. */
export function changeLetter(kind: Change['Kind']): ChangeKind {
  return kind === CHANGE_ADD ? 'A' : kind === CHANGE_DELETE ? 'D' : 'C';
}

const S_IFMT = 0o170000n;
const S_IFDIR = 0o040000n;
const S_IFCHR = 0o020000n;

async function lstatBig(p: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(p, { bigint: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}

function isDir(st: BigIntStats): boolean {
  return (st.mode & S_IFMT) === S_IFDIR;
}

function isWhiteoutDevice(st: BigIntStats): boolean {
  return (st.mode & S_IFMT) === S_IFCHR && st.rdev === 0n;
}

function isOpaque(dir: string): boolean {
  try {
    const v = native().lgetxattr(dir, OVERLAY_OPAQUE_XATTR);
    return v !== null && v !== undefined && Buffer.from(v).toString() === 'y';
  } catch {
    return false;
  }
}

/** Names in a directory, sorted as Go's filepath.Walk visits them (byte order). */
async function sortedNames(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  return names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** Records the parent-directory rule shared by both walkers. */
class ChangeList {
  readonly changes: Change[] = [];
  readonly #changedDirs = new Set<string>();

  add(p: string, kind: Change['Kind'], dir: boolean): void {
    this.changes.push({ Path: p, Kind: kind });
    if (dir) this.#changedDirs.add(p);
    if (kind === CHANGE_ADD || kind === CHANGE_DELETE) this.#markParent(p);
  }

  /** A directory the walk passed through without recording it (unchanged copy-up). */
  #markParent(p: string): void {
    const parent = path.posix.dirname(p);
    if (parent === '/' || this.#changedDirs.has(parent)) return;
    this.#changedDirs.add(parent);
    this.changes.push({ Path: parent, Kind: CHANGE_MODIFY });
  }
}

/**
 * Changes recorded in an overlay upper directory over `lowers` (top first: the lower dirs a
 * mount of it stacks, init layer included).
 */
export async function overlayChanges(upper: string, lowers: readonly string[]): Promise<Change[]> {
  const list = new ChangeList();
  const inLower = async (rel: string): Promise<BigIntStats | undefined> => {
    for (const lower of lowers) {
      const st = await lstatBig(path.join(lower, rel));
      if (st) return st;
    }
    return undefined;
  };

  const walk = async (rel: string): Promise<void> => {
    for (const name of await sortedNames(path.join(upper, rel))) {
      const childRel = path.posix.join(rel, name);
      const full = path.join(upper, childRel);
      const st = await lstatBig(full);
      if (!st) continue;
      if (isWhiteoutDevice(st)) {
        list.add(childRel, CHANGE_DELETE, false);
        continue;
      }
      // A tar-style whiteout never exists in a kernel upper dir; one copied in by hand is a file.
      const dir = isDir(st);
      const below = await inLower(childRel);
      if (dir && below && isOpaque(full)) {
        list.add(childRel, CHANGE_DELETE, true);
      } else if (!below) {
        list.add(childRel, CHANGE_ADD, dir);
      } else if (!(dir && isDir(below) && below.size === st.size && below.mode === st.mode && below.mtimeNs === st.mtimeNs)) {
        list.add(childRel, CHANGE_MODIFY, dir);
      }
      if (dir) await walk(childRel);
    }
  };
  await walk('/');
  return list.changes;
}

function capability(p: string): Buffer | undefined {
  try {
    const v = native().lgetxattr(p, 'security.capability');
    return v ? Buffer.from(v) : undefined;
  } catch {
    return undefined;
  }
}

function sameCapability(a: string, b: string): boolean {
  const x = capability(a);
  const y = capability(b);
  return x === undefined ? y === undefined : y !== undefined && x.equals(y);
}

/** Changes between two full trees: `dir` (new) against `parentDir` (old; undefined = empty). */
export async function treeChanges(dir: string, parentDir: string | undefined): Promise<Change[]> {
  const changes: Change[] = [];
  // `old` is the parent tree's entry at `rel` when it is a directory whose children count.
  const walk = async (rel: string, oldIsDir: boolean, recorded: boolean): Promise<void> => {
    const sizeAtEntry = changes.length;
    const newNames = await sortedNames(path.join(dir, rel));
    const oldNames = oldIsDir && parentDir !== undefined ? await sortedNames(path.join(parentDir, rel)) : [];
    const oldSet = new Set(oldNames);
    for (const name of newNames) {
      const childRel = path.posix.join(rel, name);
      const st = await lstatBig(path.join(dir, childRel));
      if (!st) continue;
      const old = oldSet.has(name) ? await lstatBig(path.join(parentDir!, childRel)) : undefined;
      let childRecorded = false;
      if (!old) {
        changes.push({ Path: childRel, Kind: CHANGE_ADD });
        childRecorded = true;
      } else if (statDifferent(old, st) || !sameCapability(path.join(parentDir!, childRel), path.join(dir, childRel))) {
        changes.push({ Path: childRel, Kind: CHANGE_MODIFY });
        childRecorded = true;
      }
      if (isDir(st)) await walk(childRel, old !== undefined && isDir(old), childRecorded);
    }
    const newSet = new Set(newNames);
    for (const name of oldNames) if (!newSet.has(name)) changes.push({ Path: path.posix.join(rel, name), Kind: CHANGE_DELETE });
    // A directory with changes inside is recorded (before them) even when it did not change
    // itself, so a layer made from the list restores its permissions.
    if (changes.length > sizeAtEntry && !recorded && rel !== '/') {
      changes.splice(sizeAtEntry, 0, { Path: rel, Kind: CHANGE_MODIFY });
    }
  };
  await walk('/', parentDir !== undefined, true);
  return changes;
}

