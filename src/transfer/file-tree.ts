/**
 * Read-only views of the files inside an image archive, without extracting it: a tar file
 * indexed by its headers (each member is a byte range of the file) or a directory (an OCI
 * layout or an unpacked docker-archive).
 *
 * Paths read from a manifest are resolved here and nowhere else. Resolution is confined to
 * the archive: an absolute path, a `..` that climbs out, or a symlink that leads out (absolute
 * target, or too many `..`) is an InvalidArchiveError, never a host path. Symlinks and tar hard
 * links *inside* the archive are followed, as Docker's legacy layout uses them
 * (`<v1id>/layer.tar -> ../<other v1id>/layer.tar`).
 */
import { createReadStream } from 'node:fs';
import { lstat, open, readlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';

import { cleanPath, TYPE_DIR, TYPE_LINK, TYPE_PAX_GLOBAL, TYPE_SYMLINK } from '../archive/tar-header.js';
import { indexTarFile } from '../archive/tar-reader.js';
import { InvalidArchiveError, isErrno } from '../errors.js';

export interface TreeNode {
  kind: 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';
  /** Target of a symlink (as stored) or of a hard link (an archive path). */
  link?: string;
  /** Payload bytes of a regular file. */
  size: number;
  /** Byte offset of the payload in the tar file (tar trees only). */
  offset?: number;
}

/** The two media a tree can sit on; `resolveFile` works on either. */
export interface FileTree {
  /** The tar file or directory, for messages. */
  readonly location: string;
  /** The node at a clean relative path ('' is the root), links not followed. */
  lookup(rel: string): Promise<TreeNode | undefined>;
  /** The bytes of a regular file found by `lookup`. */
  open(rel: string, node: TreeNode): Readable;
}

/** A regular file inside a tree, reached by following links. */
export interface TreeFile {
  /** Path as the manifest named it. */
  name: string;
  /** Where the links led. */
  resolved: string;
  size: number;
  open(): Readable;
}

/** Longest chain of links followed for one path (Linux's own limit for symlinks). */
const MAX_LINK_HOPS = 40;

/** Largest JSON document (manifest, index, config) read into memory. */
export const MAX_JSON_SIZE = 64 << 20;

function quote(s: string): string {
  return JSON.stringify(s);
}

/**
 * The archive-relative form of a member name or hard-link target: leading `/` and `./`
 * dropped, cleaned. Undefined when it names the root or lies outside the archive.
 */
export function memberPath(name: string): string | undefined {
  const cleaned = cleanPath(name.replace(/^\/+/, ''));
  if (cleaned === '.' || cleaned === '..' || cleaned.startsWith('../')) return undefined;
  return cleaned;
}

/**
 * Follows `name` (relative to the tree's root) to a regular file. `what` says what the path
 * is for (`layer`, `config`…) in error messages.
 */
export async function resolveFile(tree: FileTree, name: string, what: string): Promise<TreeFile> {
  const bad = (why: string) => new InvalidArchiveError(`invalid archive: ${what} path ${quote(name)} ${why}`, { entry: name });
  if (typeof name !== 'string' || name === '') throw bad('is empty');
  if (name.startsWith('/')) throw bad('is absolute');
  if (name.includes('\0')) throw bad('contains a NUL byte');
  const cleaned = cleanPath(name);
  if (cleaned === '..' || cleaned.startsWith('../')) throw bad('points outside the archive');

  let pending = cleaned === '.' ? [] : cleaned.split('/');
  const done: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (done.length === 0) throw bad('leads outside the archive through a symlink');
      done.pop();
      continue;
    }
    const rel = [...done, part].join('/');
    const node = await tree.lookup(rel);
    if (!node) {
      throw new InvalidArchiveError(`invalid archive: ${what} ${quote(name)} not found in ${tree.location}`, { entry: name });
    }
    const last = pending.length === 0;
    if (node.kind === 'symlink') {
      if (++hops > MAX_LINK_HOPS) throw bad('has too many levels of symbolic links');
      const target = node.link ?? '';
      if (target.startsWith('/')) throw bad(`leads outside the archive (symlink ${quote(rel)} -> ${quote(target)})`);
      pending = [...target.split('/'), ...pending];
      continue;
    }
    if (node.kind === 'hardlink') {
      if (++hops > MAX_LINK_HOPS) throw bad('has too many levels of links');
      const target = memberPath(node.link ?? '');
      if (target === undefined) throw bad(`leads outside the archive (hard link ${quote(rel)} -> ${quote(node.link ?? '')})`);
      pending = [...target.split('/'), ...pending];
      done.length = 0;
      continue;
    }
    if (!last) {
      if (node.kind !== 'dir') throw bad(`is not valid: ${quote(rel)} is not a directory`);
      done.push(part);
      continue;
    }
    if (node.kind !== 'file') throw bad('does not name a regular file');
    return { name, resolved: rel, size: node.size, open: () => tree.open(rel, node) };
  }
  throw bad('does not name a regular file');
}

/** Reads a (small) file whole; refuses files over `limit` bytes. */
export async function readTreeFile(file: TreeFile, limit = MAX_JSON_SIZE): Promise<Buffer> {
  if (file.size > limit) {
    throw new InvalidArchiveError(`invalid archive: ${quote(file.name)} is ${file.size} bytes, larger than ${limit}`, { entry: file.name });
  }
  const chunks: Buffer[] = [];
  for await (const chunk of file.open()) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Whether a path names something (anything) in the tree, links not followed. */
export async function hasEntry(tree: FileTree, rel: string): Promise<boolean> {
  const p = memberPath(rel);
  return p !== undefined && (await tree.lookup(p)) !== undefined;
}

// ---------------------------------------------------------------------------------------------
// tar file

function emptyStream(): Readable {
  return Readable.from([]);
}

/**
 * Indexes a tar file (headers only) and serves its members as byte ranges. Members whose
 * names lie outside the archive (`../x`) cannot be reached and are left out; a later member
 * with the same name replaces an earlier one, as extraction would.
 */
export async function openTarTree(file: string): Promise<FileTree> {
  const index = await indexTarFile(file);
  const nodes = new Map<string, TreeNode>();
  const impliedDirs = new Set<string>();
  for (const { header, offset, size } of index) {
    if (header.typeflag === TYPE_PAX_GLOBAL) continue;
    const rel = memberPath(header.name);
    if (rel === undefined) continue;
    let node: TreeNode;
    switch (header.typeflag) {
      case '0':
      case '7':
        node = { kind: 'file', size, offset };
        break;
      case TYPE_DIR:
        node = { kind: 'dir', size: 0 };
        break;
      case TYPE_SYMLINK:
        node = { kind: 'symlink', link: header.linkname, size: 0 };
        break;
      case TYPE_LINK:
        node = { kind: 'hardlink', link: header.linkname, size: 0 };
        break;
      default:
        node = { kind: 'other', size: 0 };
    }
    nodes.set(rel, node);
    for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) impliedDirs.add(rel.slice(0, i));
  }
  return {
    location: file,
    async lookup(rel) {
      if (rel === '') return { kind: 'dir', size: 0 };
      return nodes.get(rel) ?? (impliedDirs.has(rel) ? { kind: 'dir', size: 0 } : undefined);
    },
    open(_rel, node) {
      if (node.size === 0) return emptyStream();
      const start = node.offset!;
      return createReadStream(file, { start, end: start + node.size - 1, highWaterMark: 1 << 20 });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// directory

/** A directory on the host as a tree; links are followed by `resolveFile`, never by the OS. */
export function openDirTree(dir: string): FileTree {
  const root = path.resolve(dir);
  return {
    location: root,
    async lookup(rel) {
      const p = rel === '' ? root : path.join(root, rel);
      let st;
      try {
        st = await lstat(p);
      } catch (err) {
        if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
        throw err;
      }
      if (st.isFile()) return { kind: 'file', size: st.size };
      if (st.isDirectory()) return { kind: 'dir', size: 0 };
      if (st.isSymbolicLink()) return { kind: 'symlink', link: await readlink(p), size: 0 };
      return { kind: 'other', size: 0 };
    },
    open(rel) {
      return createReadStream(path.join(root, rel), { highWaterMark: 1 << 20 });
    },
  };
}

/** Whether `p` is a directory (an OCI layout or unpacked archive) rather than a file. */
export async function isDirectory(p: string): Promise<boolean> {
  const handle = await open(p, 'r');
  try {
    return (await handle.stat()).isDirectory();
  } finally {
    await handle.close();
  }
}
