/**
 * The filesystem half of COPY/ADD: putting resolved sources into a stage's root filesystem
 * (a directory the engine has mounted read-write), with the classic builder's semantics:
 *
 *  - the destination is resolved inside the rootfs, following its symlinks without leaving it;
 *  - a file goes to `dest`, or to `dest/<source name>` when `dest` ends with `/` or is an
 *    existing directory; missing parents are created 0755 (owned by the --chown identity);
 *  - a directory's *contents* are copied into `dest` (created 0755 root:root if missing);
 *    existing directories merge and take the source's mode, anything else is replaced;
 *  - mode, mtime, symlinks and hard links inside the source are kept; ownership becomes the
 *    --chown identity (root when absent), except COPY --from without --chown, which keeps
 *    the source's owners;
 *  - ADD of a local tar (plain or gzip) unpacks it into `dest` keeping the archive's owners
 *    (--chown does not apply, as in Docker); entries cannot leave `dest`.
 *
 * Device nodes, fifos and xattrs are not reproduced (strata's build module has no native
 * access); such entries are skipped.
 */
import { createReadStream, type Stats } from 'node:fs';
import { chmod, copyFile, lchown, link, lstat, lutimes, mkdir, readlink, rm, stat, symlink, utimes } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';

import { cleanPath, openDecompressed, readTarEntries } from '../archive/index.js';
import { InvalidArgumentError, isErrno } from '../errors.js';
import type { CopyInfo, SourceTree } from './context.js';

export interface Identity {
  uid: number;
  gid: number;
}

/** One source to put into the rootfs. */
export interface CopyOp {
  source: CopyInfo;
  /** Destination in the container, absolute, as Docker normalises it (a trailing `/` kept). */
  dest: string;
  /** ADD of a local archive: unpack instead of copying. */
  extract: boolean;
}

export interface ApplyCopyOptions {
  /** Owner for everything copied; undefined keeps the sources' owners (COPY --from). */
  identity?: Identity;
}

const MAX_LINKS = 255;

/**
 * Resolves a container path inside `rootfs`, following symlinks but never leaving it (an
 * absolute link target starts at the rootfs). Returns a host path.
 */
export async function scopedPath(rootfs: string, p: string): Promise<string> {
  const parts = cleanPath('/' + p).split('/').filter((x) => x !== '');
  const done: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    if (part === '.') continue;
    const host = path.join(rootfs, ...done, part);
    const st = await lstat(host).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new InvalidArgumentError(`too many links in ${p}`);
      const target = await readlink(host);
      if (target.startsWith('/')) done.length = 0;
      parts.unshift(...target.split('/').filter((x) => x !== ''));
      continue;
    }
    done.push(part);
  }
  return path.join(rootfs, ...done);
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

/** mkdir -p; directories it creates get `mode` and, when given, `owner`. */
export async function mkdirAllNew(p: string, mode: number, owner?: Identity): Promise<void> {
  const missing: string[] = [];
  let cur = p;
  for (;;) {
    const st = await stat(cur).catch(() => undefined);
    if (st) {
      if (!st.isDirectory()) throw new InvalidArgumentError(`mkdir ${cur}: not a directory`);
      break;
    }
    missing.push(cur);
    const parent = path.dirname(cur);
    if (parent === cur) break;
    cur = parent;
  }
  for (const dir of missing.reverse()) {
    await mkdir(dir).catch((err: unknown) => {
      if (!isErrno(err, 'EEXIST')) throw err;
    });
    await chmod(dir, mode);
    if (owner) await lchown(dir, owner.uid, owner.gid);
  }
}

/** Removes whatever is at `p` unless both it and the new entry are directories. */
async function clearFor(p: string, newIsDir: boolean): Promise<boolean> {
  const st = await lstat(p).catch(() => undefined);
  if (!st) return false;
  if (st.isDirectory() && newIsDir) return true;
  await rm(p, { recursive: true, force: true });
  return false;
}

function perm(st: Stats): number {
  return st.mode & 0o7777;
}

/** Copies one regular file's bytes and metadata (mode, owner, times). */
async function writeFileFrom(src: string, st: Stats, dst: string, owner: Identity): Promise<void> {
  await copyFile(src, dst);
  await chmod(dst, perm(st));
  await lchown(dst, owner.uid, owner.gid);
  await utimes(dst, st.mtime, st.mtime);
}

/** Applies COPY/ADD operations to `rootfs`. */
export async function applyCopy(rootfs: string, ops: readonly CopyOp[], options: ApplyCopyOptions = {}): Promise<void> {
  for (const op of ops) await applyOne(rootfs, op, options.identity);
}

async function applyOne(rootfs: string, op: CopyOp, identity: Identity | undefined): Promise<void> {
  let dest = await scopedPath(rootfs, op.dest);
  const src = op.source;
  if (src.isDir) return copyDirectory(src.tree, src.resolved, dest, identity);
  if (op.extract) return untarInto(src.hostPath, dest);
  if (op.dest.endsWith('/') || (await isDir(dest))) dest = path.join(dest, path.posix.basename(src.path));
  const st = await stat(src.hostPath);
  await mkdirAllNew(path.dirname(dest), 0o755, identity);
  await clearFor(dest, false);
  await writeFileFrom(src.hostPath, st, dest, identity ?? { uid: st.uid, gid: st.gid });
}

async function copyDirectory(tree: SourceTree, from: string, dest: string, identity: Identity | undefined): Promise<void> {
  const existed = await isDir(dest);
  await mkdirAllNew(dest, 0o755, { uid: 0, gid: 0 });
  const dirTimes: Array<[string, Date]> = [];
  const links = new Map<string, string>();
  const copied: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of await tree.children(rel)) {
      const srcRel = rel === '' ? name : `${rel}/${name}`;
      const e = await tree.entry(srcRel);
      if (!e) continue;
      const sub = from === '' ? srcRel : srcRel.slice(from.length + 1);
      const target = path.join(dest, sub);
      if (e.implied) {
        // Docker's daemon made this directory when its children arrived.
        if (!(await clearFor(target, true))) {
          await mkdir(target);
          await chmod(target, 0o755);
        }
        copied.push(target);
        await walk(srcRel);
        continue;
      }
      const st = await lstat(e.hostPath);
      const owner = { uid: st.uid, gid: st.gid };
      if (st.isDirectory()) {
        if (!(await clearFor(target, true))) await mkdir(target);
        await chmod(target, perm(st));
        await lchown(target, owner.uid, owner.gid);
        dirTimes.push([target, st.mtime]);
        copied.push(target);
        await walk(srcRel);
        continue;
      }
      if (st.isSymbolicLink()) {
        await clearFor(target, false);
        await symlink(await readlink(e.hostPath), target);
        await lchown(target, owner.uid, owner.gid);
        await lutimes(target, st.mtime, st.mtime).catch(() => undefined);
        copied.push(target);
        continue;
      }
      if (!st.isFile()) continue;
      await clearFor(target, false);
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? links.get(key) : undefined;
      if (first !== undefined) await link(first, target);
      else {
        if (st.nlink > 1) links.set(key, target);
        await writeFileFrom(e.hostPath, st, target, owner);
      }
      copied.push(target);
    }
  };
  await walk(from);
  for (const [p, t] of dirTimes.reverse()) await utimes(p, t, t);
  if (identity) {
    // Docker chowns what it copied, and the destination itself only if it created it.
    if (!existed) await lchown(dest, identity.uid, identity.gid);
    for (const p of copied) await lchown(p, identity.uid, identity.gid);
  }
}

/** Unpacks a (gzip'd) tar into `dest` the way ADD does: owners from the archive. */
async function untarInto(archive: string, dest: string): Promise<void> {
  if (!(await isDir(dest))) await mkdirAllNew(dest, 0o755, { uid: 0, gid: 0 });
  const src = await openDecompressed(createReadStream(archive));
  const dirTimes: Array<[string, number]> = [];
  for await (const { header, body } of readTarEntries(src.chunks)) {
    const drain = async () => {
      for await (const c of body) void c;
    };
    if (header.typeflag === 'g') {
      await drain();
      continue;
    }
    const name = cleanPath('/' + header.name).slice(1);
    if (name === '') {
      await drain();
      continue;
    }
    const target = path.join(dest, name);
    await mkdirAllNew(path.dirname(target), 0o755, { uid: 0, gid: 0 });
    // Never write through a symlink the archive (or the image) put on the way.
    const parentReal = await scopedPath(dest, path.posix.dirname(name));
    if (parentReal !== path.dirname(target)) {
      throw new InvalidArgumentError(`invalid archive entry ${JSON.stringify(header.name)}: a parent directory is a symlink`);
    }
    const isDirEntry = header.typeflag === '5';
    const keptDir = await clearFor(target, isDirEntry);
    switch (header.typeflag) {
      case '5':
        if (!keptDir) await mkdir(target);
        await drain();
        break;
      case '0':
      case '7': {
        const out = createWriteStream(target, { mode: 0o600 });
        for await (const c of body) if (!out.write(c)) await once(out, 'drain');
        out.end();
        await once(out, 'close');
        break;
      }
      case '2':
        await drain();
        await symlink(header.linkname, target);
        break;
      case '1': {
        await drain();
        const to = path.join(dest, cleanPath('/' + header.linkname).slice(1));
        await link(to, target);
        break;
      }
      default:
        await drain();
        continue;
    }
    await lchown(target, header.uid, header.gid);
    if (header.typeflag === '2') {
      await lutimes(target, header.mtime, header.mtime).catch(() => undefined);
      continue;
    }
    if (header.typeflag !== '1') await chmod(target, header.mode);
    if (isDirEntry) dirTimes.push([target, header.mtime]);
    else if (header.typeflag !== '1') await utimes(target, header.mtime, header.mtime);
  }
  for (const [p, t] of dirTimes.reverse()) await utimes(p, t, t);
}
