/**
 * What the kernel and the backing filesystem can do for a driver, and how much a tree holds.
 *
 * The overlay probes mount real overlays in a scratch directory on the filesystem that will
 * hold the layers (the driver home when it exists, else the data root), because support
 * depends on that filesystem and not only on the kernel. Each probe runs once per directory
 * per process: the results cannot change while we run, and a mount costs milliseconds.
 */
import { existsSync, lstatSync, readFileSync, readdirSync, statSync, type Dirent } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rmdir, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { isErrno } from '../errors.js';
import { native } from '../native/addon.js';
import { atomicWriteFile } from '../sys/atomic.js';
import { backingFilesystem, removeAll, supportsDType } from '../sys/fs.js';
import { mountAll, mountsUnder, unmount } from '../sys/mount.js';

/**
 * Scratch directories start with a dot so they can never be taken for a snapshot id (ids
 * start with an alphanumeric): a concurrent `list()` + orphan sweep in another process must
 * not delete a probe that is still running.
 */
export const PROBE_DIR_PREFIX = '.probe-';

/** A probe dir older than this was left by a process that died mid-probe. */
const STALE_PROBE_MS = 10 * 60 * 1000;

export type OverlayProbeResult =
  | {
      ok: true;
      /** Docker's name for the backing filesystem (`extfs`, `xfs`, `btrfs`...). */
      backingFs: string;
      /**
       * Whether an upper dir can be turned into a layer tar as is (Docker's "Native Overlay
       * Diff"). False when the kernel copies up opaque flags or records directory renames as
       * `redirect` xattrs, which no tar can express.
       */
      nativeDiff: boolean;
      /** Why native diff is off, for logs and `info --debug`. */
      nativeDiffReason?: string;
    }
  | { ok: false; reason: string };

const overlayProbes = new Map<string, Promise<OverlayProbeResult>>();

/**
 * Probes overlay support under `dir` (which must exist): a two-lower overlay mount, d_type
 * support and the native-diff check. Memoized per resolved `dir`, and across processes in
 * `cacheDir` when given.
 */
export function probeOverlay(dir: string, cacheDir?: string): Promise<OverlayProbeResult> {
  const key = path.resolve(dir);
  let probe = overlayProbes.get(key);
  if (!probe) {
    probe = cacheDir === undefined ? runOverlayProbe(key) : cachedOrRunOverlayProbe(key, cacheDir);
    // A failure caused by something transient (EMFILE, a full disk) must not stick.
    probe.catch(() => overlayProbes.delete(key));
    overlayProbes.set(key, probe);
  }
  return probe;
}

/**
 * Whether overlay mounts must carry `index=off`. The parameter file exists only once the
 * overlay module is loaded, so ask after a probe has mounted an overlay. Docker adds the
 * option whenever the kernel knows it: shared lower layers under different uppers make the
 * inode index refuse mounts (EBUSY) or break later.
 */
export function overlayNeedsIndexOff(): boolean {
  return existsSync('/sys/module/overlay/parameters/index');
}

/**
 * Where a passing probe result is remembered for later processes. Docker probes once per
 * daemon start; a daemonless CLI would pay two overlay mounts and unmounts (10–150 ms, the
 * umount waits for an RCU grace period) on every command. The result can only change with
 * the kernel (boot id, release) or the filesystem under `dir` (device, statfs type), so those
 * key the cache. The caller puts it in the data root, outside the driver home whose listing
 * must hold only layer dirs.
 */
const PROBE_CACHE = '.strata-overlay-probe.json';

function probeCacheKey(dir: string): string {
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return JSON.stringify([bootId, os.release(), statSync(dir).dev, native().statfs(dir).type]);
}

async function cachedOrRunOverlayProbe(dir: string, cacheDir: string): Promise<OverlayProbeResult> {
  const file = path.join(cacheDir, PROBE_CACHE);
  let key: string | undefined;
  try {
    key = probeCacheKey(dir);
    const cached = JSON.parse(readFileSync(file, 'utf8')) as { key?: string; result?: OverlayProbeResult };
    if (cached.key === key && cached.result?.ok === true) return cached.result;
  } catch {
    // No cache, or unreadable: probe for real.
  }
  const result = await runOverlayProbe(dir);
  if (result.ok && key !== undefined) {
    // Best effort: a read-only root still works, it just probes every time.
    await atomicWriteFile(file, JSON.stringify({ key, result }), { mode: 0o600, fsync: false }).catch(() => undefined);
  }
  return result;
}

async function runOverlayProbe(dir: string): Promise<OverlayProbeResult> {
  const backingFs = await backingFilesystem(dir);
  await reapStaleProbes(dir);

  const mountError = await withScratch(dir, checkTwoLowerMount);
  if (mountError) return { ok: false, reason: `overlay mount failed on ${backingFs}: ${mountError}` };

  // Without d_type the kernel cannot tell whiteouts from files while reading a directory.
  if (!(await supportsDType(dir))) {
    return {
      ok: false,
      reason:
        `the backing ${backingFs} filesystem is formatted without d_type support, which leads to incorrect ` +
        `behavior. Reformat the filesystem with ftype=1 to enable d_type support. Running without d_type is not supported.`,
    };
  }

  const naiveReason = await withScratch(dir, checkNativeDiff);
  return naiveReason === undefined
    ? { ok: true, backingFs, nativeDiff: true }
    : { ok: true, backingFs, nativeDiff: false, nativeDiffReason: naiveReason };
}

/**
 * Runs `fn` in a fresh scratch dir under `dir` and always unmounts and deletes the dir
 * afterwards. Resolves to what `fn` resolves to.
 */
async function withScratch<T>(dir: string, fn: (scratch: string) => Promise<T>): Promise<T> {
  const scratch = await mkdtemp(path.join(dir, PROBE_DIR_PREFIX));
  try {
    return await fn(scratch);
  } finally {
    for (const m of await mountsUnder(scratch)) await unmount(m, { detach: true });
    await removeAll(scratch);
  }
}

async function reapStaleProbes(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (!name.startsWith(PROBE_DIR_PREFIX)) continue;
    const full = path.join(dir, name);
    try {
      if (Date.now() - (await stat(full)).mtimeMs < STALE_PROBE_MS) continue;
      for (const m of await mountsUnder(full)) await unmount(m, { detach: true });
      await removeAll(full);
    } catch (err) {
      // Another process may be reaping the same leftover.
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }
}

/** Mounts an overlay with two lowers and an upper; returns the error text or undefined. */
async function checkTwoLowerMount(scratch: string): Promise<string | undefined> {
  for (const d of ['lower1', 'lower2', 'upper', 'work', 'merged']) await mkdir(path.join(scratch, d));
  const merged = path.join(scratch, 'merged');
  try {
    await mountAll(
      [
        {
          type: 'overlay',
          source: 'overlay',
          options: [
            `lowerdir=${path.join(scratch, 'lower2')}:${path.join(scratch, 'lower1')}`,
            `upperdir=${path.join(scratch, 'upper')}`,
            `workdir=${path.join(scratch, 'work')}`,
          ],
        },
      ],
      merged,
    );
  } catch (err) {
    return (err as Error).message;
  }
  await unmount(merged);
  return undefined;
}

/**
 * Docker's native-diff check. Returns undefined when an upper dir can be read as a diff,
 * else the reason it cannot:
 *  - an opaque flag on a lower dir must not be copied up when a file is written below it;
 *  - renaming a lower dir must fail with EXDEV; a kernel with redirect_dir instead renames
 *    it and leaves a `trusted.overlay.redirect` xattr pointing at the old name.
 */
async function checkNativeDiff(scratch: string): Promise<string | undefined> {
  const addon = native();
  const p = (...parts: string[]) => path.join(scratch, ...parts);
  for (const d of ['l1/d', 'l1/d1', 'l2/d', 'l3', 'work', 'merged']) await mkdir(p(d), { recursive: true });
  addon.lsetxattr(p('l2', 'd'), 'trusted.overlay.opaque', Buffer.from('y'));
  await mountAll(
    [
      {
        type: 'overlay',
        source: 'overlay',
        options: [`lowerdir=${p('l2')}:${p('l1')}`, `upperdir=${p('l3')}`, `workdir=${p('work')}`],
      },
    ],
    p('merged'),
  );
  try {
    await writeFile(p('merged', 'd', 'f'), '');
    if (addon.lgetxattr(p('l3', 'd'), 'trusted.overlay.opaque')?.toString() === 'y') {
      return 'opaque flag erroneously copied up, consider updating to kernel 4.8 or later to fix';
    }
    try {
      await rename(p('merged', 'd1'), p('merged', 'd2'));
    } catch (err) {
      if (isErrno(err, 'EXDEV')) return undefined;
      throw err;
    }
    if (addon.lgetxattr(p('l3', 'd2'), 'trusted.overlay.redirect')?.toString() === 'd1') {
      return 'kernel has CONFIG_OVERLAY_FS_REDIRECT_DIR enabled';
    }
    return undefined;
  } finally {
    await unmount(p('merged'));
    await rmdir(p('merged')).catch(() => undefined);
  }
}

/** Bytes and inodes of a tree by Docker's rule (see driver.ts `Usage`). */
export interface TreeUsage {
  size: number;
  inodes: number;
}

/**
 * Docker's calcSize over `root`: the lstat size of every non-directory (a symlink's size is
 * the length of its target, a whiteout device's is 0), each inode counted once so hard
 * links do not double. `inodes` counts distinct inodes including directories and `root`.
 *
 * Synchronous calls in a tight loop: a promise per entry costs more than the syscalls on
 * trees of thousands of files. Throws ENOENT when `root` does not exist.
 */
export function treeUsage(root: string): TreeUsage {
  let size = 0;
  let inodes = 1;
  const seen = new Set<string>();
  lstatSync(root);
  const walk = (dir: string): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      // Entries vanish while a container runs; what is gone takes no space.
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        inodes++;
        walk(full);
        continue;
      }
      const st = lstatSync(full, { bigint: true, throwIfNoEntry: false });
      if (!st) continue;
      if (st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      inodes++;
      size += Number(st.size);
    }
  };
  walk(root);
  return { size, inodes };
}
