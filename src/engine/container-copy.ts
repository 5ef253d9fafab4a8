/**
 * `docker cp` between a container's filesystem and the host, with docker's destination rules
 * (into an existing directory under the source's name; `src/.` copies a directory's
 * contents; a file overwrites a file) and `cp -a` fidelity.
 *
 * Safety: container paths are resolved inside the container (rootfs, or the volume or bind
 * mounted there) with every symlink on the way interpreted as the container would, never
 * against the host's root, and the last component is not followed. A copy out of a
 * container therefore cannot be steered to host files by links the container planted.
 */
import { copyFileSync, lchownSync, lstatSync, readdirSync, readlinkSync, rmSync, symlinkSync, type Stats } from 'node:fs';
import path from 'node:path';

import { InvalidArgumentError, NotFoundError, isErrno } from '../errors.js';
import { resolveInRoot } from '../runtime/user.js';
import { copyAttributes, copyTree } from '../sys/copy-tree.js';

export interface MountedPath {
  /** Host path of the mount source (rootfs, volume `_data`, bind source). */
  base: string;
  /** Path inside that base. */
  rel: string;
  readOnly: boolean;
}

/** Which mount holds `ctrPath` (the longest destination prefix), else the rootfs. */
export function locate(ctrPath: string, rootfs: string, mounts: ReadonlyArray<{ Destination: string; Source: string; RW: boolean; Type: string }>): MountedPath {
  const p = path.posix.normalize(`/${ctrPath}`);
  let best: { Destination: string; Source: string; RW: boolean } | undefined;
  for (const m of mounts) {
    if (m.Type === 'tmpfs' || !m.Source) continue;
    if ((p === m.Destination || p.startsWith(`${m.Destination}/`)) && (!best || m.Destination.length > best.Destination.length)) best = m;
  }
  if (!best) return { base: rootfs, rel: p, readOnly: false };
  return { base: best.Source, rel: p.slice(best.Destination.length) || '/', readOnly: !best.RW };
}

/** The host path of `rel` under `base`: parents resolved in-root, the last component not followed. */
export async function resolveNoFollow(base: string, rel: string): Promise<string> {
  const norm = path.posix.normalize(`/${rel}`);
  if (norm === '/') return base;
  const parent = await resolveInRoot(base, path.posix.dirname(norm));
  return path.join(parent, path.posix.basename(norm));
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** Copies `src` over `dst`: directories merged, everything else replaced. */
function mergeCopy(src: string, dst: string, chownRoot: boolean): void {
  const s = lstatSync(src);
  const d = lstatOrUndefined(dst);
  if (s.isDirectory()) {
    if (d && !d.isDirectory()) rmSync(dst, { recursive: true, force: true });
    if (!d || !d.isDirectory()) {
      copyTree(src, dst);
      if (chownRoot) chownTree(dst);
      return;
    }
    for (const name of readdirSync(src)) mergeCopy(path.join(src, name), path.join(dst, name), chownRoot);
    copyAttributes(src, dst);
    if (chownRoot) lchownSync(dst, 0, 0);
    return;
  }
  if (d) rmSync(dst, { recursive: true, force: true });
  if (s.isFile()) {
    copyFileSync(src, dst);
    copyAttributes(src, dst);
  } else if (s.isSymbolicLink()) {
    // Verbatim, never followed: the target means something only inside the container.
    symlinkSync(readlinkSync(src), dst);
    copyAttributes(src, dst);
  } else {
    throw new InvalidArgumentError(`cannot copy special file ${src}`);
  }
  if (chownRoot) lchownSync(dst, 0, 0);
}

function chownTree(p: string): void {
  lchownSync(p, 0, 0);
  if (lstatSync(p).isDirectory()) for (const name of readdirSync(p)) chownTree(path.join(p, name));
}

/**
 * Copies host or container path `src` (already resolved to a host path) to `dest` (also
 * resolved), by docker's rules. `contentsOnly`: the source was given as `dir/.`.
 */
export function copyByDockerRules(src: string, dest: string, o: { contentsOnly: boolean; destGivenAsDir: boolean; chownRoot: boolean; srcLabel: string; destLabel: string }): void {
  const s = lstatOrUndefined(src);
  if (!s) throw new NotFoundError(`Could not find the file ${o.srcLabel}`);
  const d = lstatOrUndefined(dest);
  if (s.isDirectory()) {
    if (d && !d.isDirectory()) throw new InvalidArgumentError(`cannot copy a directory to a file: ${o.destLabel}`);
    if (!d) {
      if (!lstatOrUndefined(path.dirname(dest))) throw new NotFoundError(`no such directory: ${path.dirname(o.destLabel)}`);
      mergeCopy(src, dest, o.chownRoot);
      return;
    }
    if (o.contentsOnly) {
      for (const name of readdirSync(src)) mergeCopy(path.join(src, name), path.join(dest, name), o.chownRoot);
      return;
    }
    mergeCopy(src, path.join(dest, path.basename(src)), o.chownRoot);
    return;
  }
  if (d?.isDirectory()) {
    mergeCopy(src, path.join(dest, path.basename(src)), o.chownRoot);
    return;
  }
  if (!d && o.destGivenAsDir) throw new NotFoundError(`no such directory: ${o.destLabel}`);
  if (!lstatOrUndefined(path.dirname(dest))) throw new NotFoundError(`no such directory: ${path.dirname(o.destLabel)}`);
  mergeCopy(src, dest, o.chownRoot);
}
