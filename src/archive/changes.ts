/**
 * Filesystem changes of a writable layer as `docker diff` reports them (A added, C changed,
 * D deleted), in the two ways Docker computes them:
 *
 *  - `treeChanges(dir, parentDir)`: Docker's rules (it uses them for overlay2 too): two full
 *    trees compared. Directories compare by mode/owner/rdev only (size and mtime are not a
 *    measure of change), other files also by size, mtime and `security.capability`; a
 *    directory with changes inside is listed (changed) before them.
 *  - `overlayChanges(upper, lowers)`: the same results from a walk of the overlay upper dir
 *    alone plus a lookup in the lowers per path found there, so `diff` costs in proportion
 *    to the changes, not to the image (Docker mounts and walks both full trees).
 */
import type { BigIntStats } from 'node:fs';
import path from 'node:path';

import { isErrno } from '../errors.js';
import { native } from '../native/addon.js';
import { lstat, readdir } from '../sys/meta-fs.js';
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

/** Where a path stands in a stack of overlay lower dirs (top first). */
export class LowerStack {
  readonly #lowers: readonly string[];

  constructor(lowers: readonly string[]) {
    this.#lowers = lowers;
  }

  /** Whether `rel`'s parent chain is made opaque in `lower` (hiding the lowers below it). */
  #opaqueAbove(lower: string, rel: string): boolean {
    for (let dir = path.posix.dirname(rel); dir !== '/'; dir = path.posix.dirname(dir)) {
      if (isOpaque(path.join(lower, dir))) return true;
    }
    return false;
  }

  /** `rel` as the lowers' merged view shows it (the lower's path and lstat); undefined when absent. */
  async find(rel: string): Promise<{ path: string; st: BigIntStats } | undefined> {
    for (const lower of this.#lowers) {
      const p = path.join(lower, rel);
      const st = await lstatBig(p);
      if (st) return isWhiteoutDevice(st) ? undefined : { path: p, st };
      if (this.#opaqueAbove(lower, rel)) return undefined;
    }
    return undefined;
  }

  /** Names in directory `rel` as the lowers' merged view shows it. */
  async children(rel: string): Promise<Set<string>> {
    const seen = new Set<string>();
    const hidden = new Set<string>();
    for (const lower of this.#lowers) {
      const dir = path.join(lower, rel);
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        if (this.#opaqueAbove(lower, path.posix.join(rel, 'x'))) break;
        continue;
      }
      for (const name of names) {
        if (seen.has(name) || hidden.has(name)) continue;
        const st = await lstatBig(path.join(dir, name));
        if (st && isWhiteoutDevice(st)) hidden.add(name);
        else seen.add(name);
      }
      if (isOpaque(dir)) break;
    }
    return seen;
  }
}

/**
 * Changes recorded in an overlay upper directory over `lowers` (top first: the lower dirs a
 * mount of it stacks, init layer included), with the results Docker's full-tree comparison
 * (`treeChanges` of the merged view against the lowers) gives, at the cost of a walk of the
 * upper dir and a lookup below for each path found there.
 */
export async function overlayChanges(upper: string, lowers: readonly string[]): Promise<Change[]> {
  const below = new LowerStack(lowers);
  const changes: Change[] = [];
  const walk = async (rel: string, recorded: boolean, opaque: boolean): Promise<void> => {
    const sizeAtEntry = changes.length;
    const names = await sortedNames(path.join(upper, rel));
    for (const name of names) {
      const childRel = path.posix.join(rel, name);
      const full = path.join(upper, childRel);
      const st = await lstatBig(full);
      if (!st) continue;
      const found = opaque ? undefined : await below.find(childRel);
      const old = found?.st;
      if (isWhiteoutDevice(st)) {
        if (old) changes.push({ Path: childRel, Kind: CHANGE_DELETE });
        continue;
      }
      let childRecorded = false;
      if (!old) {
        changes.push({ Path: childRel, Kind: CHANGE_ADD });
        childRecorded = true;
      } else if (statDifferent(old, st) || (!isDir(st) && !sameCapability(found!.path, full))) {
        changes.push({ Path: childRel, Kind: CHANGE_MODIFY });
        childRecorded = true;
      }
      if (isDir(st)) {
        const childOpaque = opaque || !old || !isDir(old) || isOpaque(full);
        if (old && isDir(old) && !opaque && isOpaque(full)) {
          // Everything the dir held below is gone from the merged view.
          const present = new Set(await readdir(full));
          for (const gone of [...(await below.children(childRel))].sort()) {
            if (!present.has(gone)) changes.push({ Path: path.posix.join(childRel, gone), Kind: CHANGE_DELETE });
          }
        }
        await walk(childRel, childRecorded, childOpaque);
      }
    }
    if (changes.length > sizeAtEntry && !recorded && rel !== '/') {
      changes.splice(sizeAtEntry, 0, { Path: rel, Kind: CHANGE_MODIFY });
    }
  };
  await walk('/', true, false);
  return changes;
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

