/**
 * Path handling for untrusted archive names, on "binary strings" (one char per byte, so names
 * that are not UTF-8 survive): normalisation, and a confined view of a directory tree that
 * never follows a symlink below its root.
 *
 * strata is stricter than Docker here. Docker extracts inside a chroot, so a symlink in the
 * archive is followed (harmlessly, within the chroot) when a later entry is written through
 * it. strata never writes through a symlink: every parent component of an entry must be a real
 * directory inside the root (checked with lstat, cached for directories this apply verified or
 * created), and final components are created with O_EXCL / mkdir / symlink / link, none of
 * which follow a symlink.
 */
import {
  chmodSync, lstatSync, mkdirSync, readdirSync, rmdirSync, unlinkSync, type Stats,
} from 'node:fs';
import { InvalidArchiveError, NotSupportedError } from '../errors.js';
import { cleanPath } from './tar-header.js';

/** A JS string → its UTF-8 bytes as a binary string. */
export function toBinary(s: string): string {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) return Buffer.from(s, 'utf8').toString('latin1');
  }
  return s;
}

/** A binary string back to text for messages (invalid UTF-8 shows as U+FFFD). */
export function displayName(bin: string): string {
  for (let i = 0; i < bin.length; i++) {
    if (bin.charCodeAt(i) >= 0x80) return Buffer.from(bin, 'latin1').toString('utf8');
  }
  return bin;
}

/** A binary string as a UTF-8 JS string for APIs that only take strings (the native addon). */
export function utf8Path(bin: string): string {
  const text = displayName(bin);
  if (text !== bin && Buffer.from(text, 'utf8').toString('latin1') !== bin) {
    throw new NotSupportedError(`path "${text}" is not valid UTF-8; extended attributes and device nodes need UTF-8 names`);
  }
  return text;
}

/**
 * Normalises a tar entry name to a path relative to the root (`path.Clean`). Anything that
 * climbs above the root is refused. Absolute names are refused too unless `allowAbsolute`:
 * Docker silently rebases `/etc/x` into the layer, but no tool that writes layers produces
 * them, so in a layer they only show up in crafted archives — strata is strict here. Hard link
 * targets and tar-split replay (reading what was already accepted) rebase instead.
 * Returns '' for the root itself.
 */
export function normalizeEntryName(bin: string, what = 'entry name', options: { allowAbsolute?: boolean } = {}): string {
  let p = cleanPath(bin);
  if (p.charCodeAt(0) === 0x2f) {
    if (!options.allowAbsolute) {
      throw new InvalidArchiveError(`invalid ${what} "${displayName(bin)}": absolute paths are not allowed in a layer`, { entry: displayName(bin) });
    }
    p = p.replace(/^\/+/, '');
  }
  if (p === '.') return '';
  if (p === '..' || p.startsWith('../')) {
    throw new InvalidArchiveError(`invalid ${what} "${displayName(bin)}": it points outside the layer`, { entry: displayName(bin) });
  }
  return p;
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

/** A parent component that must exist (hard link targets, reassembly) does not. */
export class MissingPathError extends InvalidArchiveError {}

export interface ConfinedTreeOptions {
  /** Mode for directories an entry implies but the archive never lists (Docker: 0755). */
  impliedDirMode?: number;
  /** Called for each directory created implicitly (relative path). */
  onImpliedDir?: (rel: string) => void;
  /** Called with the stat of every pre-existing directory verified on a path. */
  onExistingDir?: (rel: string, st: Stats) => void;
}

/**
 * A directory tree rooted at `root` whose paths are addressed relative to it. Parent
 * directories are verified (or created) once and cached; `forget` drops the cache after
 * anything was removed.
 */
export class ConfinedTree {
  /** Root as a binary string without a trailing slash. */
  readonly root: string;
  readonly #dirs = new Set<string>();
  readonly #opts: ConfinedTreeOptions;
  readonly #umask: number;

  constructor(rootBin: string, umask: number, opts: ConfinedTreeOptions = {}) {
    this.root = rootBin.length > 1 ? rootBin.replace(/\/+$/, '') : rootBin;
    this.#opts = opts;
    this.#umask = umask;
  }

  /** Absolute path of `rel` as a Buffer (what node:fs is given). */
  abs(rel: string): Buffer {
    return Buffer.from(rel === '' ? this.root : this.root === '/' ? '/' + rel : this.root + '/' + rel, 'latin1');
  }

  absBinary(rel: string): string {
    return rel === '' ? this.root : this.root === '/' ? '/' + rel : this.root + '/' + rel;
  }

  /** Records that `rel` is now a real directory (created or verified by the caller). */
  markDir(rel: string): void {
    this.#dirs.add(rel);
  }

  /** Forgets every verified directory (after a removal or replacement). */
  forget(): void {
    this.#dirs.clear();
  }

  /**
   * Makes sure `dirRel` is a real directory inside the root, walking its components with
   * lstat. Missing components are created when `create` is set (else ENOENT-style error).
   * A symlink or non-directory on the way is refused: nothing is ever written through it.
   */
  ensureDir(dirRel: string, entryName: string, create: boolean): void {
    if (dirRel === '' || this.#dirs.has(dirRel)) return;
    let idx = 0;
    for (;;) {
      const slash = dirRel.indexOf('/', idx);
      const prefix = slash < 0 ? dirRel : dirRel.slice(0, slash);
      if (!this.#dirs.has(prefix)) this.#checkComponent(prefix, entryName, create);
      if (slash < 0) return;
      idx = slash + 1;
    }
  }

  #checkComponent(rel: string, entryName: string, create: boolean): void {
    const p = this.abs(rel);
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (st === undefined) {
      if (!create) {
        throw new MissingPathError(`invalid entry "${displayName(entryName)}": "${displayName(rel)}" does not exist in the layer`, { entry: displayName(entryName) });
      }
      const mode = this.#opts.impliedDirMode ?? 0o755;
      mkdirSync(p, mode);
      if ((mode & ~this.#umask) !== mode) chmodSync(p, mode);
      this.#opts.onImpliedDir?.(rel);
    } else if (st.isDirectory()) {
      this.#opts.onExistingDir?.(rel, st);
    } else if (st.isSymbolicLink()) {
      throw new InvalidArchiveError(`invalid entry "${displayName(entryName)}": parent "${displayName(rel)}" is a symlink; strata never writes through links in a layer`, { entry: displayName(entryName) });
    } else {
      throw new InvalidArchiveError(`invalid entry "${displayName(entryName)}": parent "${displayName(rel)}" is not a directory`, { entry: displayName(entryName) });
    }
    this.#dirs.add(rel);
  }
}

/**
 * Removes `p` (a Buffer path) and everything below it without following symlinks. Missing
 * paths are fine. Recursion depth is bounded by the path length limit of the caller.
 */
export function removeAll(p: Buffer): void {
  const st = lstatSync(p, { throwIfNoEntry: false });
  if (st === undefined) return;
  if (!st.isDirectory()) {
    unlinkSync(p);
    return;
  }
  for (const name of readdirSync(p, { encoding: 'buffer' })) {
    removeAll(Buffer.concat([p, SLASH, name]));
  }
  rmdirSync(p);
}

const SLASH = Buffer.from('/');

/** Lists a directory's entry names as binary strings. */
export function listDir(p: Buffer): string[] {
  return readdirSync(p, { encoding: 'buffer' }).map((b) => b.toString('latin1'));
}

/**
 * Docker's layer size rule (facts §2.13, `calcSize`): lstat sizes of every non-directory with
 * size > 0, each inode counted once (symlinks count their target length).
 */
export function treeSize(root: Buffer): number {
  const seen = new Set<string>();
  let total = 0;
  const walk = (dir: Buffer): void => {
    for (const ent of readdirSync(dir, { encoding: 'buffer', withFileTypes: true })) {
      const p = Buffer.concat([dir, SLASH, ent.name as unknown as Buffer]);
      if (ent.isDirectory()) {
        walk(p);
        continue;
      }
      const st = lstatSync(p, { bigint: true });
      if (st.size === 0n) continue;
      if (st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      total += Number(st.size);
    }
  };
  walk(root);
  return total;
}
