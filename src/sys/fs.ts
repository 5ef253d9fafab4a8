/**
 * Small filesystem helpers shared by the stores and drivers.
 *
 * The helpers for small metadata (ensureDir, exists, readOptional, readdirOptional) make
 * their syscalls synchronously: each is a few microseconds here, while a libuv thread-pool
 * round trip costs 50-200 µs, and a strata command makes dozens of them before its real work.
 * File contents of any size (layer data) stay asynchronous and streamed.
 */
import { chmodSync, constants as fsConstants, lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { isErrno } from '../errors.js';
import { native } from '../native/addon.js';
import { mountsUnder, unmount } from './mount.js';

/**
 * Removes `target` recursively. Anything mounted at or below it is detached first: rm -rf
 * through a live overlay mount would delete the lower layers' files, not just the mount.
 */
export async function removeAll(target: string): Promise<void> {
  for (const mountPoint of await mountsUnder(target)) {
    await unmount(mountPoint, { detach: true });
  }
  // One thread-pool job for the whole tree (Node's recursive rm makes one per entry), and
  // one that never descends into a filesystem mounted below: a mount that appears after the
  // unmounts above makes it fail rather than empty what is mounted there.
  for (let attempt = 0; ; attempt++) {
    try {
      await native().removeTree(target);
      return;
    } catch (err) {
      // Something still busy or filling the tree: retried with a back-off, as Node's rm does.
      if (attempt >= 3 || (!isErrno(err, 'EBUSY') && !isErrno(err, 'ENOTEMPTY'))) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100 * (attempt + 1)));
    }
  }
}

/** Whether `p` exists, without following a final symlink (a dangling link exists). */
export async function exists(p: string): Promise<boolean> {
  try {
    lstatSync(p);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** fsync an existing file (or directory) by path. */
export async function fsyncFile(p: string): Promise<void> {
  const handle = await open(p, fsConstants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** statfs f_type magic → the name Docker prints as "Backing Filesystem". */
const FS_NAMES: ReadonlyMap<number, string> = new Map([
  [0x61756673, 'aufs'],
  [0x9123683e, 'btrfs'],
  [0x28cd3d45, 'cramfs'],
  [0x0000f15f, 'ecryptfs'],
  [0x0000ef53, 'extfs'],
  [0xf2f52010, 'f2fs'],
  [0x47504653, 'gpfs'],
  [0x000072b6, 'jffs2'],
  [0x3153464a, 'jfs'],
  [0x00006969, 'nfs'],
  [0x858458f6, 'ramfs'],
  [0x52654973, 'reiserfs'],
  [0x0000517b, 'smb'],
  [0x73717368, 'squashfs'],
  [0x01021994, 'tmpfs'],
  [0x00000000, 'unsupported'],
  [0xa501fcf5, 'vxfs'],
  [0x58465342, 'xfs'],
  [0x2fc12fc1, 'zfs'],
  [0x794c7630, 'overlayfs'],
  [0x65735546, 'fuseblk'],
]);

/** Docker's name for the filesystem holding `p` (`extfs`, `xfs`, `btrfs`...), or `<unknown>`. */
export async function backingFilesystem(p: string): Promise<string> {
  const { type } = native().statfs(p);
  return FS_NAMES.get(type) ?? '<unknown>';
}

/**
 * Whether the filesystem under `dir` reports entry types in readdir (d_type). overlayfs
 * misbehaves on lowers without it (xfs formatted with ftype=0), so drivers refuse them.
 * The probe creates a file and a directory in a scratch dir and reads the raw d_type back.
 */
export async function supportsDType(dir: string): Promise<boolean> {
  const scratch = await mkdtemp(path.join(dir, '.dtype-probe-'));
  try {
    await writeFile(path.join(scratch, 'file'), '');
    await mkdir(path.join(scratch, 'dir'));
    const addon = native();
    const { DT_REG, DT_DIR } = addon.constants;
    const types = new Map(addon.readdirTypes(scratch));
    return types.get('file') === DT_REG && types.get('dir') === DT_DIR;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * mkdir -p that gives the dirs it creates exactly `mode` (not `mode` minus the umask: Docker's
 * layout has exact modes) and leaves existing ones as they are.
 */
export async function ensureDir(dir: string, mode: number): Promise<void> {
  ensureDirSync(dir, mode);
}

function ensureDirSync(dir: string, mode: number): void {
  try {
    mkdirSync(dir, { mode });
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return;
    if (!isErrno(err, 'ENOENT')) throw err;
    ensureDirSync(path.dirname(dir), mode);
    return ensureDirSync(dir, mode);
  }
  chmodSync(dir, mode);
}

/** A file's bytes, or undefined when it (or a directory above it) does not exist. */
export async function readOptional(file: string): Promise<Buffer | undefined> {
  try {
    return readFileSync(file);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}

/** A directory's entry names, or none when it does not exist. */
export async function readdirOptional(dir: string): Promise<string[]> {
  try {
    return readdirSync(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
}
