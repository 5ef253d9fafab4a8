/**
 * Applies a layer tar to a directory in one pass: decompress → parse → filesystem, while
 * record.ts hashes the same bytes (diffID) and builds the tar-split record — on a worker thread
 * for big layers. Rules follow Docker's apply (facts §3.2) with two whiteout
 * strategies: 'overlay' (char 0:0 devices and the opaque xattr, for an overlay upper dir) and
 * 'delete' (deletions performed on a full tree, for vfs-like drivers).
 *
 * Performance model: the filesystem work is synchronous on purpose. A sync fs call costs a few
 * microseconds on the calling thread, while an async one costs a thread-pool round trip and a
 * promise per step; with tens of thousands of small files the latter dominates. Decompression
 * and input reads stay asynchronous (thread pool), so they overlap with the sync writes. Each
 * file is created with its final mode at open (chmod only when the umask or special bits
 * interfere) and chown is skipped when the owner is already the one open() gave.
 *
 * Security (strata is stricter than Docker, see resolve.ts): no entry is ever written through
 * a symlink, `..` escapes are refused, hard links must target an existing non-directory inside
 * the tree, overlay control xattrs (`trusted.overlay.*`, `user.overlay.*`) and char 0:0 devices
 * in the archive are refused (only `.wh.` entries make whiteouts), and UnpackLimits bound the
 * work an archive can ask for.
 */
import {
  closeSync, constants as FS, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync,
  lstatSync, lutimesSync, mkdirSync, chmodSync, openSync, readFileSync, readdirSync, statSync,
  symlinkSync, unlinkSync, writeSync, type Stats,
} from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { DigestMismatchError, InvalidArchiveError, StrataError, isErrno } from '../errors.js';
import { native } from '../native/addon.js';
import { openDecompressed } from './compression.js';
import {
  ConfinedTree, MissingPathError, baseOf, displayName, listDir, normalizeEntryName, parentOf, removeAll, toBinary,
  treeSize, utf8Path,
} from './resolve.js';
import {
  TYPE_BLOCK, TYPE_CHAR, TYPE_DIR, TYPE_FIFO, TYPE_LINK, TYPE_PAX_GLOBAL, TYPE_REG, TYPE_SYMLINK,
  type TarHeader,
} from './tar-header.js';
import { TarParser } from './tar-reader.js';
import { Recording } from './record.js';
import type { UnpackLimits, UnpackOptions, UnpackResult, WhiteoutFormat } from './layer.js';

export const DEFAULT_LIMITS: Required<UnpackLimits> = {
  maxBytes: 64 * 1024 ** 3,
  maxEntries: 10_000_000,
  maxPathLength: 4096,
  maxPaxSize: 1 << 20,
};

export const WHITEOUT_PREFIX = '.wh.';
export const WHITEOUT_META_PREFIX = '.wh..wh.';
export const WHITEOUT_OPAQUE = '.wh..wh..opq';
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

const O_NEW_FILE = FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL | FS.O_NOFOLLOW;
const S_ISGID = 0o2000;

/** The process umask, read without the racy set-and-restore of process.umask(). */
function currentUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
    if (m) return parseInt(m[1]!, 8);
  } catch {
    // not Linux /proc: fall through
  }
  return process.umask();
}

function isForbiddenXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

/** Docker's boundTime: times before the epoch become the epoch. */
function boundTime(t: number): number {
  return Number.isFinite(t) && t >= 0 ? t : 0;
}

/** What the current entry's payload is for. */
const KIND_SKIP = 0;
const KIND_FILE = 1;
const KIND_DONE = 2;

class LayerApplier {
  readonly tree: ConfinedTree;
  readonly #format: WhiteoutFormat;
  readonly #umask: number;
  readonly #euid: number;
  readonly #egid: number;
  readonly #limits: Required<UnpackLimits>;
  /** Set once the tree may make open()/mkdir() results differ from the plain umask rule
   * (a setgid directory or a default ACL): every entry then gets explicit chown/chmod. */
  #conservative = false;
  /** delete mode: entries created by this layer (opaque dirs keep them). */
  readonly #created: Set<string> | undefined;
  readonly #dirTimes: Array<[string, number, number]> = [];
  #entries = 0;
  /** Sum of header sizes (Docker's naive apply size). */
  headerSizeSum = 0;
  /** Regular file bytes + symlink target lengths written (overlay size when no walk is needed). */
  #writtenSize = 0;
  /** Something pre-existing was replaced/removed, so the overlay size needs a real walk. */
  #needWalk: boolean;
  #kind = KIND_DONE;
  #fd = -1;
  #cur: TarHeader | undefined;
  #curRel = '';
  #curName = '';

  constructor(rootBin: string, format: WhiteoutFormat, limits: Required<UnpackLimits>, rootWasEmpty: boolean) {
    this.#format = format;
    this.#umask = currentUmask();
    this.#euid = process.geteuid?.() ?? 0;
    this.#egid = process.getegid?.() ?? 0;
    this.#limits = limits;
    this.#needWalk = !rootWasEmpty;
    this.#created = format === 'delete' ? new Set() : undefined;
    this.tree = new ConfinedTree(rootBin, this.#umask, {
      impliedDirMode: 0o755,
      onImpliedDir: (rel) => this.#created?.add(rel),
      onExistingDir: (_rel, st) => {
        if (st.mode & S_ISGID) this.#conservative = true;
      },
    });
    const rootSt = statSync(this.tree.abs(''));
    if (rootSt.mode & S_ISGID) this.#conservative = true;
  }

  // -- events --------------------------------------------------------------------------------

  begin(header: TarHeader): void {
    if (++this.#entries > this.#limits.maxEntries) {
      throw new InvalidArchiveError(`layer has more than ${this.#limits.maxEntries} entries`);
    }
    this.headerSizeSum += header.size;
    this.#kind = KIND_SKIP;
    if (header.typeflag === TYPE_PAX_GLOBAL) return;

    const nameBin = header.nameRaw ? header.nameRaw.toString('latin1') : toBinary(header.name);
    this.#curName = nameBin;
    const rel = normalizeEntryName(nameBin);
    if (rel.length > this.#limits.maxPathLength) {
      throw new InvalidArchiveError(`invalid entry name "${header.name}": longer than ${this.#limits.maxPathLength} bytes`, { entry: header.name });
    }
    const base = baseOf(rel);
    if (rel.includes(WHITEOUT_META_PREFIX)) {
      // AUFS metadata (e.g. `.wh..wh.plnk/…`): never materialised; only the opaque marker acts.
      const parts = rel.split('/');
      const last = parts.length - 1;
      if (parts.some((c, i) => c.startsWith(WHITEOUT_META_PREFIX) && !(i === last && c === WHITEOUT_OPAQUE))) return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      if (base === WHITEOUT_OPAQUE) this.#opaque(parentOf(rel), nameBin);
      else this.#whiteout(parentOf(rel), base.slice(WHITEOUT_PREFIX.length), nameBin, header);
      return;
    }
    if (rel === '') {
      this.#rootEntry(header, nameBin);
      return;
    }
    this.tree.ensureDir(parentOf(rel), nameBin, true);
    this.#cur = header;
    this.#curRel = rel;
    switch (header.typeflag) {
      case TYPE_REG:
        this.#openFile(rel, header);
        this.#kind = KIND_FILE;
        return;
      case TYPE_DIR:
        this.#mkdir(rel, header);
        return;
      case TYPE_SYMLINK:
        this.#symlink(rel, header);
        return;
      case TYPE_LINK:
        this.#hardlink(rel, header);
        return;
      case TYPE_CHAR:
      case TYPE_BLOCK:
      case TYPE_FIFO:
        this.#mknod(rel, header);
        return;
      default:
        throw new InvalidArchiveError(`unhandled tar header type ${header.typeflag.charCodeAt(0)} ("${header.name}")`, { entry: header.name });
    }
  }

  data(chunk: Buffer): void {
    if (this.#kind !== KIND_FILE) return;
    let off = 0;
    while (off < chunk.length) off += writeSync(this.#fd, chunk, off, chunk.length - off);
  }

  end(): void {
    if (this.#kind === KIND_FILE) {
      const fd = this.#fd;
      const h = this.#cur!;
      const p = this.tree.abs(this.#curRel);
      const chowned = this.#needsChown(h);
      if (chowned) fchownSync(fd, h.uid, h.gid);
      this.#setXattrs(p, h);
      if (this.#needsChmod(h, chowned)) fchmodSync(fd, h.mode & 0o7777);
      const mt = boundTime(h.mtime);
      futimesSync(fd, Math.max(boundTime(h.atime ?? 0), mt), mt);
      this.#fd = -1;
      closeSync(fd);
      this.#writtenSize += h.size;
    }
    this.#kind = KIND_DONE;
    this.#cur = undefined;
  }

  /** After the last entry: directory times (deferred so child creation doesn't bump them). */
  finish(): void {
    for (const [rel, at, mt] of this.#dirTimes) {
      try {
        lutimesSync(this.tree.abs(rel), at, mt);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    }
  }

  /** Docker's size for this apply (facts §2.13). */
  size(): number {
    if (this.#format === 'delete') return this.headerSizeSum;
    return this.#needWalk ? treeSize(this.tree.abs('')) : this.#writtenSize;
  }

  abort(): void {
    if (this.#fd >= 0) {
      try {
        closeSync(this.#fd);
      } catch {
        // already failing; the first error is the one reported
      }
      this.#fd = -1;
    }
  }

  // -- creation -------------------------------------------------------------------------------

  /** Removes whatever sits at `rel` so a new entry can take its place. */
  #clear(rel: string): void {
    const p = this.tree.abs(rel);
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (st === undefined) return;
    if (st.isDirectory()) {
      removeAll(p);
      this.tree.forget();
    } else {
      unlinkSync(p);
    }
    this.#needWalk = true;
  }

  #openFile(rel: string, h: TarHeader): void {
    const p = this.tree.abs(rel);
    const perm = h.mode & 0o777;
    try {
      this.#fd = openSync(p, O_NEW_FILE, perm);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      this.#clear(rel);
      this.#fd = openSync(p, O_NEW_FILE, perm);
    }
    this.#created?.add(rel);
  }

  #mkdir(rel: string, h: TarHeader): void {
    const p = this.tree.abs(rel);
    let existing: Stats | undefined;
    try {
      mkdirSync(p, h.mode & 0o777);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      const st = lstatSync(p);
      if (st.isDirectory()) {
        existing = st;
      } else {
        this.#clear(rel);
        mkdirSync(p, h.mode & 0o777);
      }
    }
    this.tree.markDir(rel);
    this.#created?.add(rel);
    if (h.mode & S_ISGID) this.#conservative = true;
    this.#applyMeta(p, h, existing);
    const mt = boundTime(h.mtime);
    this.#dirTimes.push([rel, Math.max(boundTime(h.atime ?? 0), mt), mt]);
  }

  #symlink(rel: string, h: TarHeader): void {
    const p = this.tree.abs(rel);
    const target = h.linknameRaw ?? Buffer.from(h.linkname, 'utf8');
    if (target.length > this.#limits.maxPathLength) {
      throw new InvalidArchiveError(`invalid symlink "${h.name}": target longer than ${this.#limits.maxPathLength} bytes`, { entry: h.name });
    }
    try {
      symlinkSync(target, p);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      this.#clear(rel);
      symlinkSync(target, p);
    }
    this.#created?.add(rel);
    if (this.#needsChown(h)) lchownSync(p, h.uid, h.gid);
    this.#setXattrs(p, h);
    const mt = boundTime(h.mtime);
    lutimesSync(p, Math.max(boundTime(h.atime ?? 0), mt), mt);
    this.#writtenSize += target.length;
  }

  #hardlink(rel: string, h: TarHeader): void {
    const linkBin = h.linknameRaw ? h.linknameRaw.toString('latin1') : toBinary(h.linkname);
    const targetRel = normalizeEntryName(linkBin, 'hard link target', { allowAbsolute: true });
    const what = `invalid hard link "${h.name}" -> "${h.linkname}"`;
    if (targetRel === '' || targetRel === rel) throw new InvalidArchiveError(`${what}: it points at itself or the layer root`, { entry: h.name });
    try {
      this.tree.ensureDir(parentOf(targetRel), this.#curName, false);
    } catch (err) {
      if (err instanceof MissingPathError) throw new InvalidArchiveError(`${what}: the target does not exist in the layer`, { entry: h.name });
      throw err;
    }
    const tp = this.tree.abs(targetRel);
    const st = lstatSync(tp, { throwIfNoEntry: false });
    if (st === undefined) throw new InvalidArchiveError(`${what}: the target does not exist in the layer`, { entry: h.name });
    if (st.isDirectory()) throw new InvalidArchiveError(`${what}: the target is a directory`, { entry: h.name });
    const p = this.tree.abs(rel);
    try {
      linkSync(tp, p);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      this.#clear(rel);
      linkSync(tp, p);
    }
    this.#created?.add(rel);
    // The header's owner/mode/times apply to the shared inode, as in Docker; for a link to a
    // symlink only the owner (lchown) can be set without following it.
    if (st.uid !== h.uid || st.gid !== h.gid) lchownSync(p, h.uid, h.gid);
    this.#setXattrs(p, h);
    if (!st.isSymbolicLink()) {
      if ((st.mode & 0o7777) !== (h.mode & 0o7777) || (st.uid !== h.uid || st.gid !== h.gid)) chmodSync(p, h.mode & 0o7777);
      const mt = boundTime(h.mtime);
      lutimesSync(p, Math.max(boundTime(h.atime ?? 0), mt), mt);
    }
  }

  #mknod(rel: string, h: TarHeader): void {
    if (h.typeflag === TYPE_CHAR && h.devmajor === 0 && h.devminor === 0) {
      throw new InvalidArchiveError(`refusing char device 0:0 "${h.name}": whiteouts must be given as .wh. entries`, { entry: h.name });
    }
    const addon = native();
    const type = h.typeflag === TYPE_CHAR ? addon.constants.S_IFCHR : h.typeflag === TYPE_BLOCK ? addon.constants.S_IFBLK : addon.constants.S_IFIFO;
    const p = this.tree.abs(rel);
    const path = utf8Path(this.tree.absBinary(rel));
    try {
      addon.mknod(path, type | (h.mode & 0o777), h.devmajor, h.devminor);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      this.#clear(rel);
      addon.mknod(path, type | (h.mode & 0o777), h.devmajor, h.devminor);
    }
    this.#created?.add(rel);
    this.#applyMeta(p, h, undefined);
    const mt = boundTime(h.mtime);
    lutimesSync(p, Math.max(boundTime(h.atime ?? 0), mt), mt);
  }

  #rootEntry(h: TarHeader, nameBin: string): void {
    if (h.typeflag !== TYPE_DIR) {
      throw new InvalidArchiveError(`invalid entry name "${displayName(nameBin)}": only a directory may name the layer root`, { entry: h.name });
    }
    // Docker's overlay apply skips "." entries; its naive apply merges them into the root.
    if (this.#format !== 'delete') return;
    const p = this.tree.abs('');
    this.#applyMeta(p, h, lstatSync(p));
    const mt = boundTime(h.mtime);
    this.#dirTimes.push(['', Math.max(boundTime(h.atime ?? 0), mt), mt]);
  }

  // -- whiteouts ------------------------------------------------------------------------------

  #whiteout(dirRel: string, original: string, nameBin: string, h: TarHeader): void {
    if (original === '' || original === '.' || original === '..') {
      throw new InvalidArchiveError(`invalid whiteout entry "${displayName(nameBin)}"`, { entry: displayName(nameBin) });
    }
    this.tree.ensureDir(dirRel, nameBin, true);
    const rel = dirRel === '' ? original : `${dirRel}/${original}`;
    if (this.#format === 'delete') {
      const p = this.tree.abs(rel);
      if (lstatSync(p, { throwIfNoEntry: false }) !== undefined) {
        removeAll(p);
        this.tree.forget();
      }
      return;
    }
    const addon = native();
    const path = utf8Path(this.tree.absBinary(rel));
    try {
      addon.mknod(path, addon.constants.S_IFCHR, 0, 0);
    } catch (err) {
      if (isErrno(err, 'EEXIST')) {
        throw new InvalidArchiveError(`whiteout "${displayName(nameBin)}" conflicts with an existing entry "${displayName(rel)}" in the layer`, { entry: displayName(nameBin) });
      }
      throw err;
    }
    if (this.#needsChown(h)) lchownSync(this.tree.abs(rel), h.uid, h.gid);
  }

  #opaque(dirRel: string, nameBin: string): void {
    this.tree.ensureDir(dirRel, nameBin, true);
    if (this.#format === 'overlay') {
      native().lsetxattr(utf8Path(this.tree.absBinary(dirRel)), OVERLAY_OPAQUE_XATTR, Buffer.from('y'), 0);
      return;
    }
    const created = this.#created!;
    let removed = false;
    const walk = (rel: string): void => {
      for (const name of listDir(this.tree.abs(rel))) {
        const child = rel === '' ? name : `${rel}/${name}`;
        const p = this.tree.abs(child);
        if (!created.has(child)) {
          removeAll(p);
          removed = true;
        } else if (lstatSync(p).isDirectory()) {
          walk(child);
        }
      }
    };
    walk(dirRel);
    if (removed) this.tree.forget();
  }

  // -- metadata -------------------------------------------------------------------------------

  #needsChown(h: TarHeader): boolean {
    return this.#conservative || h.uid !== this.#euid || h.gid !== this.#egid;
  }

  /** Whether the mode open()/mkdir()/mknod() produced differs from the header's. */
  #needsChmod(h: TarHeader, chowned: boolean): boolean {
    const want = h.mode & 0o7777;
    if (this.#conservative) return true;
    // chown clears setuid/setgid, and the create calls were given permission bits only.
    return want !== (h.mode & 0o777 & ~this.#umask) || (chowned && (want & 0o6000) !== 0);
  }

  /** chown, xattrs, chmod (in Docker's order) for a path; `existing` = its current stat. */
  #applyMeta(p: Buffer, h: TarHeader, existing: Stats | undefined): void {
    let chowned = false;
    if (existing ? existing.uid !== h.uid || existing.gid !== h.gid : this.#needsChown(h)) {
      lchownSync(p, h.uid, h.gid);
      chowned = true;
    }
    this.#setXattrs(p, h);
    const chmod = existing ? (existing.mode & 0o7777) !== (h.mode & 0o7777) || chowned : this.#needsChmod(h, chowned);
    if (chmod) chmodSync(p, h.mode & 0o7777);
  }

  #setXattrs(p: Buffer, h: TarHeader): void {
    if (!h.xattrs || h.xattrs.size === 0) return;
    for (const name of h.xattrs.keys()) {
      if (isForbiddenXattr(name)) {
        throw new InvalidArchiveError(`refusing xattr "${name}" on "${h.name}": overlay control attributes cannot come from an archive`, { entry: h.name });
      }
    }
    const addon = native();
    const path = utf8Path(p.toString('latin1'));
    for (const [name, value] of h.xattrs) {
      if (name === 'system.posix_acl_default') this.#conservative = true;
      try {
        addon.lsetxattr(path, name, value, 0);
      } catch (err) {
        // Docker tolerates EPERM (restricted namespaces) and logs it; so do we.
        if (!isErrno(err, 'EPERM')) throw err;
      }
    }
  }
}

function isEmptyDir(p: Buffer): boolean {
  return readdirSync(p).length === 0;
}

/** Implementation of `unpackLayer` (see layer.ts for the contract). */
export async function unpackLayerImpl(input: Readable, options: UnpackOptions): Promise<UnpackResult> {
  const limits: Required<UnpackLimits> = { ...DEFAULT_LIMITS, ...stripUndefined(options.limits ?? {}) };
  const rootBin = Buffer.from(resolvePath(options.target), 'utf8').toString('latin1');
  const rootBuf = Buffer.from(rootBin, 'latin1');
  const rootSt = statSync(rootBuf, { throwIfNoEntry: false });
  if (!rootSt?.isDirectory()) throw new StrataError('ERR_INVALID_ARGUMENT', `unpack target "${options.target}" is not a directory`);

  const applier = new LayerApplier(rootBin, options.whiteouts, limits, isEmptyDir(rootBuf));
  const recording = new Recording(options.tarSplit, limits.maxPaxSize);
  const parser = new TarParser({
    header: (h) => applier.begin(h),
    data: (c) => applier.data(c),
    entryEnd: () => applier.end(),
  }, { maxMetaSize: limits.maxPaxSize, maxPathLength: limits.maxPathLength });

  try {
    const src = await openDecompressed(input);
    let total = 0;
    for await (const chunk of src.chunks) {
      total += chunk.length;
      if (total > limits.maxBytes) throw new InvalidArchiveError(`layer is larger than the limit of ${limits.maxBytes} bytes`);
      // Recording first: it copies or keeps the chunk before the applier runs.
      const wait = recording.push(chunk);
      parser.write(chunk);
      options.onProgress?.(total);
      if (wait) await wait;
    }
    parser.finish();
    applier.finish();
    const diffId = await recording.finish();
    if (options.expectedDiffId !== undefined && options.expectedDiffId !== diffId) {
      throw new DigestMismatchError(`layer diffID mismatch: expected "${options.expectedDiffId}", got "${diffId}"`, options.expectedDiffId, diffId);
    }
    const result: UnpackResult = { diffId, size: applier.size(), tarSize: total, compressedSize: src.compressedSize() };
    const compressedDigest = src.compressedDigest();
    if (compressedDigest !== undefined) result.compressedDigest = compressedDigest;
    return result;
  } catch (err) {
    applier.abort();
    recording.abort(err instanceof Error ? err : new Error(String(err)));
    if (!input.destroyed) input.destroy();
    throw err;
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
