/**
 * Layer tars from directories, with headers as Docker 24+ writes them (facts §3.3, §3.6):
 * USTAR unless PAX is needed, no type bits in the mode, empty uname/gname, mtime truncated to
 * whole seconds, only `security.capability` exported as an xattr (v3 turned into v2), hard
 * links detected by inode (first path seen is the file, later ones link to it).
 *
 *  - `tarOverlayUpper`: Docker's native overlay2 diff — the upper dir in WalkDir order, char
 *    0:0 devices turned into `.wh.<name>` files and opaque directories followed by a
 *    `.wh..wh..opq` marker.
 *  - `tarTreeDiff`: Docker's naive diff — compare a full tree with its parent, emit added and
 *    changed paths (sorted by path string) and deletions as `.wh.` entries. Without a parent it
 *    is a plain tar of the tree.
 *
 * The output is produced synchronously inside `_read` so it follows the consumer's pace.
 */
import {
  closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, constants as FS,
  type BigIntStats,
} from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { Readable } from 'node:stream';
import { isErrno } from '../errors.js';
import { native } from '../native/addon.js';
import {
  BLOCK_SIZE, TYPE_BLOCK, TYPE_CHAR, TYPE_DIR, TYPE_FIFO, TYPE_LINK, TYPE_REG, TYPE_SYMLINK,
  blockPadding, decodeName, encodeHeader, type TarHeader,
} from './tar-header.js';
import { OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from './unpack.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

const READ_CHUNK = 1 << 20;
const SLASH = Buffer.from('/');

/** Linux dev_t split (glibc's major()/minor()). */
function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

function floorSeconds(ns: bigint): number {
  const s = ns / 1_000_000_000n;
  return Number(ns < 0n && s * 1_000_000_000n !== ns ? s - 1n : s);
}

/** A path for the native addon, or undefined when its bytes are not UTF-8. */
function nativePath(p: Buffer): string | undefined {
  const s = p.toString('utf8');
  return Buffer.byteLength(s) === p.length && Buffer.from(s, 'utf8').equals(p) ? s : undefined;
}

/** `security.capability` as Docker exports it (VFS v3 caps rewritten as v2). */
function readCapability(p: Buffer): Buffer | undefined {
  const path = nativePath(p);
  if (path === undefined) return undefined;
  let cap: Buffer | undefined;
  try {
    cap = native().lgetxattr(path, 'security.capability');
  } catch (err) {
    if (isErrno(err, 'ENOTSUP') || isErrno(err, 'ENODATA')) return undefined;
    throw err;
  }
  if (cap === undefined) return undefined;
  if (cap.length >= 20 && cap[3] === 3) {
    cap = Buffer.from(cap.subarray(0, 20));
    cap[3] = 2;
  }
  return cap;
}

/** Header fields from a binary-string tar name (UTF-8 or not). */
function withName(h: TarHeader, nameBin: string): TarHeader {
  const d = decodeName(Buffer.from(nameBin, 'latin1'));
  h.name = d.text;
  if (d.raw) h.nameRaw = d.raw;
  else delete h.nameRaw;
  return h;
}

interface Piece {
  header: TarHeader;
  /** Path to copy the payload from (regular files with size > 0). */
  source?: Buffer;
}

/** Docker's tarAppender: builds headers for paths, tracking hard links by inode. */
class TarAppender {
  readonly #seen = new Map<string, string>();
  readonly #overlay: boolean;

  constructor(overlay: boolean) {
    this.#overlay = overlay;
  }

  /** Pieces for `p` archived as `nameBin` (binary string, no trailing slash); [] to skip. */
  add(p: Buffer, nameBin: string, st: BigIntStats): Piece[] {
    const fmt = Number(st.mode) & S_IFMT;
    const isDir = fmt === S_IFDIR;
    const name = isDir ? nameBin + '/' : nameBin;
    const h: TarHeader = withName({
      name: '', linkname: '', typeflag: TYPE_REG, mode: Number(st.mode) & 0o7777,
      uid: Number(st.uid), gid: Number(st.gid), size: 0, mtime: floorSeconds(st.mtimeNs),
      uname: '', gname: '', devmajor: 0, devminor: 0,
    }, name);
    switch (fmt) {
      case S_IFREG: h.typeflag = TYPE_REG; h.size = Number(st.size); break;
      case S_IFDIR: h.typeflag = TYPE_DIR; break;
      case S_IFLNK: {
        h.typeflag = TYPE_SYMLINK;
        const d = decodeName(readlinkSync(p, { encoding: 'buffer' }));
        h.linkname = d.text;
        if (d.raw) h.linknameRaw = d.raw;
        break;
      }
      case S_IFCHR: h.typeflag = TYPE_CHAR; break;
      case S_IFBLK: h.typeflag = TYPE_BLOCK; break;
      case S_IFIFO: h.typeflag = TYPE_FIFO; break;
      default:
        // Sockets (and anything unknown) cannot be archived; Docker logs and skips them.
        return [];
    }
    if (fmt === S_IFCHR || fmt === S_IFBLK) {
      h.devmajor = devMajor(st.rdev);
      h.devminor = devMinor(st.rdev);
    }
    const pathStr = nativePath(p);
    const cap = readCapability(p);
    if (cap) h.xattrs = new Map([['security.capability', cap]]);

    if (!isDir && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.#seen.get(key);
      if (first !== undefined) {
        h.typeflag = TYPE_LINK;
        const d = decodeName(Buffer.from(first, 'latin1'));
        h.linkname = d.text;
        if (d.raw) h.linknameRaw = d.raw;
        else delete h.linknameRaw;
        h.size = 0;
      } else {
        this.#seen.set(key, name);
      }
    }

    const out: Piece[] = [];
    if (this.#overlay) {
      if (fmt === S_IFCHR && h.devmajor === 0 && h.devminor === 0) {
        // Docker keeps the link name a hard-linked whiteout got above; so do we (byte parity).
        const slash = nameBin.lastIndexOf('/');
        withName(h, nameBin.slice(0, slash + 1) + WHITEOUT_PREFIX + nameBin.slice(slash + 1));
        h.mode = 0o600;
        h.typeflag = TYPE_REG;
        h.size = 0;
      } else if (isDir) {
        let opaque: Buffer | undefined;
        try {
          if (pathStr !== undefined) opaque = native().lgetxattr(pathStr, OVERLAY_OPAQUE_XATTR);
        } catch (err) {
          if (!isErrno(err, 'ENOTSUP')) throw err;
        }
        if (opaque && opaque.length === 1 && opaque[0] === 0x79) {
          out.push({ header: h });
          out.push({
            header: withName({
              name: '', linkname: '', typeflag: TYPE_REG, mode: h.mode & 0o777, uid: h.uid, gid: h.gid,
              size: 0, mtime: 0, uname: '', gname: '', devmajor: 0, devminor: 0,
            }, `${nameBin}/${WHITEOUT_OPAQUE}`),
          });
          return out;
        }
      }
    }
    out.push(h.typeflag === TYPE_REG && h.size > 0 ? { header: h, source: p } : { header: h });
    return out;
  }
}

function sortedNames(dir: Buffer): Buffer[] {
  return readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare);
}

/** Go's filepath.WalkDir below `root`: lexical order, a directory before its children. */
function* walkDir(root: Buffer, rel = ''): Generator<[Buffer, string, BigIntStats]> {
  const dir = rel === '' ? root : Buffer.concat([root, SLASH, Buffer.from(rel, 'latin1')]);
  let names: Buffer[];
  try {
    names = sortedNames(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    throw err;
  }
  for (const n of names) {
    const childRel = rel === '' ? n.toString('latin1') : `${rel}/${n.toString('latin1')}`;
    const p = Buffer.concat([dir, SLASH, n]);
    const st = lstatSync(p, { bigint: true, throwIfNoEntry: false });
    if (st === undefined) continue;
    yield [p, childRel, st];
    if (st.isDirectory()) yield* walkDir(root, childRel);
  }
}

/** A Readable that turns pieces into tar bytes, ending with two zero blocks. */
class TarProducer extends Readable {
  readonly #pieces: Iterator<Piece>;
  #fd = -1;
  #remaining = 0;
  #pad = 0;
  #srcName = '';
  #finished = false;

  constructor(pieces: Iterable<Piece>) {
    super({ highWaterMark: 4 << 20 });
    this.#pieces = pieces[Symbol.iterator]();
  }

  override _read(): void {
    try {
      for (;;) {
        const chunk = this.#next();
        if (chunk === null) {
          this.push(null);
          return;
        }
        if (!this.push(chunk)) return;
      }
    } catch (err) {
      this.destroy(err as Error);
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#close();
    cb(err);
  }

  #next(): Buffer | null {
    if (this.#fd >= 0) {
      if (this.#remaining > 0) {
        const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, this.#remaining));
        let got = 0;
        while (got < buf.length) {
          const n = readSync(this.#fd, buf, got, buf.length - got, null);
          if (n === 0) break;
          got += n;
        }
        if (got < buf.length) {
          throw new Error(`file "${this.#srcName}" shrank while it was being archived`);
        }
        this.#remaining -= got;
        return buf;
      }
      this.#close();
      if (this.#pad > 0) return Buffer.alloc(this.#pad);
    }
    if (this.#finished) return null;
    const r = this.#pieces.next();
    if (r.done) {
      this.#finished = true;
      return Buffer.alloc(2 * BLOCK_SIZE);
    }
    const { header, source } = r.value;
    const block = encodeHeader(header);
    if (source) {
      this.#fd = openSync(source, FS.O_RDONLY | FS.O_NOFOLLOW);
      this.#remaining = header.size;
      this.#pad = blockPadding(header.size);
      this.#srcName = header.name;
    }
    return block;
  }

  #close(): void {
    if (this.#fd >= 0) {
      closeSync(this.#fd);
      this.#fd = -1;
    }
  }
}

function* upperPieces(root: Buffer): Generator<Piece> {
  const ta = new TarAppender(true);
  for (const [p, rel, st] of walkDir(root)) yield* ta.add(p, rel, st);
}

/** Implementation of `tarOverlayUpper` (see layer.ts for the contract). */
export function tarOverlayUpperImpl(upper: string): Readable {
  return new TarProducer(upperPieces(Buffer.from(resolvePath(upper), 'utf8')));
}

// ---------------------------------------------------------------------------------------------
// naive diff

interface Node {
  st: BigIntStats;
  cap: Buffer | undefined;
  children?: Map<string, Node>;
}

function collect(p: Buffer, st: BigIntStats): Node {
  const node: Node = { st, cap: readCapability(p) };
  if (st.isDirectory()) {
    node.children = new Map();
    for (const n of readdirSync(p, { encoding: 'buffer' })) {
      const cp = Buffer.concat([p, SLASH, n]);
      const cst = lstatSync(cp, { bigint: true, throwIfNoEntry: false });
      if (cst) node.children.set(n.toString('latin1'), collect(cp, cst));
    }
  }
  return node;
}

/**
 * Docker's sameFsTime (a zero nanosecond part matches any), and equal to the microsecond: a
 * vfs copy sets times with utimes(2), which keeps no more, and a real change within the same
 * microsecond is not credible.
 */
function sameFsTime(a: bigint, b: bigint): boolean {
  if (a / 1000n === b / 1000n) return true;
  const as = a / 1_000_000_000n;
  const bs = b / 1_000_000_000n;
  return as === bs && (a % 1_000_000_000n === 0n || b % 1_000_000_000n === 0n);
}

/** Docker's naive-diff test of whether a path changed (dirs: mode, owner, rdev only). */
export function statDifferent(o: BigIntStats, n: BigIntStats): boolean {
  if (o.mode !== n.mode || o.uid !== n.uid || o.gid !== n.gid || o.rdev !== n.rdev) return true;
  if ((o.mode & BigInt(S_IFMT)) !== BigInt(S_IFDIR)) {
    return !sameFsTime(o.mtimeNs, n.mtimeNs) || o.size !== n.size;
  }
  return false;
}

const ADD = 1;
const MODIFY = 0;
const DELETE = 2;

interface Change {
  /** "/a/b" style binary string. */
  path: string;
  kind: number;
}

function addChanges(path: string, info: Node, old: Node | undefined, changes: Change[], added: Set<Node>): void {
  const sizeAtEntry = changes.length;
  if (old === undefined) {
    changes.push({ path, kind: ADD });
    added.add(info);
  }
  const oldChildren = new Map<string, Node>();
  if (old?.children && info.children) for (const [k, v] of old.children) oldChildren.set(k, v);
  for (const [name, child] of info.children ?? []) {
    const childPath = path === '/' ? `/${name}` : `${path}/${name}`;
    const oldChild = oldChildren.get(name);
    if (oldChild !== undefined) {
      if (statDifferent(oldChild.st, child.st) || !capEqual(oldChild.cap, child.cap)) {
        changes.push({ path: childPath, kind: MODIFY });
        added.add(child);
      }
      oldChildren.delete(name);
    }
    addChanges(childPath, child, oldChild, changes, added);
  }
  for (const name of oldChildren.keys()) {
    changes.push({ path: path === '/' ? `/${name}` : `${path}/${name}`, kind: DELETE });
  }
  // A directory with changes below it is listed (before them) even if unchanged itself, so
  // its metadata is restored on apply.
  if (changes.length > sizeAtEntry && info.children && !added.has(info) && path !== '/') {
    changes.splice(sizeAtEntry, 0, { path, kind: MODIFY });
  }
}

function capEqual(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return (a ?? Buffer.alloc(0)).equals(b ?? Buffer.alloc(0));
}

function compareBinary(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function* diffPieces(root: Buffer, parent: Buffer): Generator<Piece> {
  const rootSt = lstatSync(root, { bigint: true });
  const parentSt = lstatSync(parent, { bigint: true });
  const changes: Change[] = [];
  addChanges('/', collect(root, rootSt), collect(parent, parentSt), changes, new Set());
  // Binary strings compare byte-wise, which is Go's string order.
  changes.sort((a, b) => compareBinary(a.path, b.path));
  const ta = new TarAppender(false);
  const now = Math.floor(Date.now() / 1000 + 0.5);
  for (const c of changes) {
    const rel = c.path.slice(1);
    if (c.kind === DELETE) {
      const slash = rel.lastIndexOf('/');
      yield {
        header: withName({
          name: '', linkname: '', typeflag: TYPE_REG, mode: 0, uid: 0, gid: 0, size: 0, mtime: now,
          uname: '', gname: '', devmajor: 0, devminor: 0,
        }, rel.slice(0, slash + 1) + WHITEOUT_PREFIX + rel.slice(slash + 1)),
      };
      continue;
    }
    const p = Buffer.concat([root, SLASH, Buffer.from(rel, 'latin1')]);
    const st = lstatSync(p, { bigint: true, throwIfNoEntry: false });
    // Docker logs and skips paths that vanished between the compare and the export.
    if (st === undefined) continue;
    yield* ta.add(p, rel, st);
  }
}

function* plainPieces(root: Buffer): Generator<Piece> {
  const ta = new TarAppender(false);
  for (const [p, rel, st] of walkDir(root)) yield* ta.add(p, rel, st);
}

/** Implementation of `tarTreeDiff` (see layer.ts for the contract). */
export function tarTreeDiffImpl(dir: string, parentDir: string | undefined): Readable {
  const root = Buffer.from(resolvePath(dir), 'utf8');
  if (parentDir === undefined) return new TarProducer(plainPieces(root));
  return new TarProducer(diffPieces(root, Buffer.from(resolvePath(parentDir), 'utf8')));
}
