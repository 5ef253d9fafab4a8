/**
 * Read-write layers: Docker's `layerdb/mounts/<name>/{mount-id,init-id,parent}`.
 *
 * An RW layer is two driver snapshots on top of a committed layer (`parent`, a chainID, or
 * none for `FROM scratch`): `<mount-id>-init`, filled once by the creator's `init` callback
 * (Docker's init layer: /etc/hosts, /dev/pts... placeholders), then `<mount-id>`, the
 * writable one. The name is the owner's (a container ID, a build step); the store knows
 * nothing more about it.
 *
 * Crash safety: the record is written (fsynced, renamed into `mounts/`) before any driver
 * dir exists and removed before they are deleted, so recover() never sees a driver dir
 * that nothing names while its owner is alive, and reaps those a crash orphaned. The record
 * keeps `parent` from garbage collection.
 */
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';

import { lstat, mkdir, rename, rm } from '../sys/meta-fs.js';
import type { Change } from '../archive/changes.js';
import { isDigest, type Digest } from '../digest.js';
import type { Driver, Usage } from '../drivers/driver.js';
import { ConflictError, InvalidArgumentError, NotFoundError, isErrno } from '../errors.js';
import { WriteSet, syncDirectory } from '../sys/atomic.js';
import { readOptional, removeAll } from '../sys/fs.js';
import { randomId, isValidLayerDirId } from '../sys/ids.js';
import { mountAll, mountsUnder, unmount } from '../sys/mount.js';
import { native } from '../native/addon.js';

export interface RWLayerInfo {
  /** The owner's name for it (`layerdb/mounts/<name>`). */
  name: string;
  /** Driver id of the writable snapshot. */
  mountId: string;
  /** Driver id of the init snapshot (`<mountId>-init`), when there is one. */
  initId?: string;
  /** ChainID of the layer it sits on; undefined for an empty base. */
  parent?: Digest;
}

export interface CreateRWLayerOptions {
  /**
   * Fills the init snapshot (Docker's init layer) seen at `root`. Without it no init snapshot
   * is made and the writable one sits directly on the parent (a build step).
   */
  init?: (root: string) => Promise<void>;
  /**
   * The directories `init` creates entries in (`/etc`, `/dev`…). When given, and the driver's
   * layer dir holds only the snapshot's own changes (overlay2), no mount is made: those
   * directories are copied up from the parent layers (as the kernel would on first write)
   * and `init` writes into the layer dir directly. It must then only create entries.
   */
  initDirs?: readonly string[];
}

/** What an RW layer needs of the store that owns it. */
export interface RWLayerContext {
  driver: Driver;
  /** `layerdb/mounts`. */
  mountsDir: string;
  /** `layerdb/tmp`. */
  tmpDir: string;
  /** The driver id (cache-id) of a committed layer; throws `layer does not exist`. */
  cacheIdOf(chainId: Digest): Promise<string>;
  /** Runs `fn` holding the store lock shared (so gc and recover see the record). */
  shared<T>(fn: () => Promise<T>): Promise<T>;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const F = { mountId: 'mount-id', initId: 'init-id', parent: 'parent' } as const;

function checkName(name: string): void {
  if (!NAME_RE.test(name)) throw new InvalidArgumentError(`invalid RW layer name ${JSON.stringify(name)}`);
}

/** A writable layer; cheap to construct, every method goes to disk. */
export class RWLayer {
  readonly info: RWLayerInfo;
  readonly #ctx: RWLayerContext;

  constructor(ctx: RWLayerContext, info: RWLayerInfo) {
    this.#ctx = ctx;
    this.info = info;
  }

  get name(): string {
    return this.info.name;
  }

  /** Where `mount()` shows the merged filesystem (`<mount-id>/merged` on overlay2). */
  get mountpoint(): string {
    return this.#ctx.driver.mountpoint(this.info.mountId);
  }

  /** The directory holding this layer's own files (the overlay upper dir; vfs: the full tree). */
  get layerDir(): string {
    return this.#ctx.driver.layerDir(this.info.mountId);
  }

  /** Whether the merged view is present at `mountpoint` (always, where it is the layer dir itself: vfs). */
  async isMounted(): Promise<boolean> {
    const mp = path.resolve(this.mountpoint);
    if (mp === path.resolve(this.layerDir)) return true;
    return (await mountsUnder(mp)).includes(mp);
  }

  /** Mounts the merged view read-write (once; later calls return the same path) and returns it. */
  async mount(): Promise<string> {
    const mp = this.mountpoint;
    if (!(await this.isMounted())) await mountAll(await this.#ctx.driver.mounts(this.info.mountId), mp);
    return mp;
  }

  /** Unmounts the merged view and anything mounted below it; a no-op when not mounted. */
  async unmount(): Promise<void> {
    const mp = path.resolve(this.mountpoint);
    if (mp === path.resolve(this.layerDir)) return;
    // umount2 until the kernel says nothing (more) is mounted there: one syscall when the
    // layer is not mounted, instead of reading the whole mount table.
    const addon = native();
    for (let i = 0; i < 16; i++) {
      try {
        addon.umount2(mp, 0);
      } catch (err) {
        if (isErrno(err, 'EINVAL') || isErrno(err, 'ENOENT')) return;
        // Something still uses it (a process cwd'ed in it): let the kernel finish later.
        if (!isErrno(err, 'EBUSY')) throw err;
        addon.umount2(mp, addon.constants.MNT_DETACH);
      }
    }
  }

  /** The snapshot the writable layer's changes are measured against. */
  #base(): string | undefined {
    return this.info.initId;
  }

  /**
   * `docker diff`: on a driver whose layer dir holds only this layer's changes (overlay2)
   * only that directory is walked; otherwise the full tree is compared with the one below.
   */
  async changes(): Promise<Change[]> {
    const { driver } = this.#ctx;
    const { overlayChanges, treeChanges } = await import('../archive/changes.js');
    if (driver.capabilities.layerDirIsDiff) {
      const meta = await driver.metadata(this.info.mountId);
      const lowers = meta.LowerDir ? meta.LowerDir.split(':') : [];
      return overlayChanges(this.layerDir, lowers);
    }
    return this.#withBaseTree((base) => treeChanges(this.layerDir, base));
  }

  /**
   * The layer's changes as an OCI layer tar (what `commit` registers). Docker's native
   * overlay diff when the driver allows it: a tar of the upper dir alone. Otherwise the
   * merged tree is compared with the tree below (vfs: both are plain directories).
   */
  async tarStream(): Promise<Readable> {
    const { driver } = this.#ctx;
    const { tarOverlayUpper, tarTreeDiff } = await import('../archive/layer.js');
    if (driver.capabilities.layerDirIsDiff && driver.capabilities.nativeDiff) return tarOverlayUpper(this.layerDir);
    if (!driver.capabilities.layerDirIsDiff) {
      const base = this.#base() ?? (this.info.parent ? await this.#ctx.cacheIdOf(this.info.parent) : undefined);
      return tarTreeDiff(this.layerDir, base === undefined ? undefined : driver.layerDir(base));
    }
    // Overlay without native diff: compare the merged view with a read-only view of the base.
    const merged = await this.mount();
    const base = this.#base() ?? (this.info.parent ? await this.#ctx.cacheIdOf(this.info.parent) : undefined);
    if (base === undefined) return tarTreeDiff(merged, undefined);
    const viewDir = await mkdtemp(path.join(this.#ctx.tmpDir, 'view-'));
    await mountAll(await driver.view(base), viewDir);
    const stream = tarTreeDiff(merged, viewDir);
    const cleanup = () => {
      void unmount(viewDir, { detach: true }).then(() => removeAll(viewDir));
    };
    stream.once('close', cleanup);
    return stream;
  }

  async #withBaseTree<T>(fn: (base: string | undefined) => Promise<T>): Promise<T> {
    const base = this.#base() ?? (this.info.parent ? await this.#ctx.cacheIdOf(this.info.parent) : undefined);
    return fn(base === undefined ? undefined : this.#ctx.driver.layerDir(base));
  }

  /** Disk used by the writable snapshot alone (Docker's SizeRw). */
  usage(): Promise<Usage> {
    return this.#ctx.driver.usage(this.info.mountId);
  }

  /** `GraphDriver.Data` of the writable snapshot. */
  metadata(): Promise<Record<string, string>> {
    return this.#ctx.driver.metadata(this.info.mountId);
  }
}

async function readId(dir: string, name: string): Promise<string | undefined> {
  const text = (await readOptional(path.join(dir, name)))?.toString('utf8').trim();
  return text === undefined || text === '' ? undefined : text;
}

/** Reads `mounts/<name>`; undefined when absent or malformed. */
export async function readRWLayerInfo(mountsDir: string, name: string): Promise<RWLayerInfo | undefined> {
  const dir = path.join(mountsDir, name);
  const [mountId, initId, parent] = await Promise.all([readId(dir, F.mountId), readId(dir, F.initId), readId(dir, F.parent)]);
  if (mountId === undefined || !isValidLayerDirId(mountId)) return undefined;
  if (initId !== undefined && !isValidLayerDirId(initId)) return undefined;
  if (parent !== undefined && !isDigest(parent)) return undefined;
  const info: RWLayerInfo = { name, mountId };
  if (initId !== undefined) info.initId = initId;
  if (parent !== undefined) info.parent = parent as Digest;
  return info;
}

/** Writes a file in a write-set and fsyncs it (the set is renamed into place right after). */
async function writeDurable(ws: WriteSet, name: string, data: string): Promise<void> {
  await ws.writeFile(name, data, 0o644);
  const fd = openSync(path.join(ws.path, name), 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export async function createRWLayer(
  ctx: RWLayerContext,
  name: string,
  parent: Digest | undefined,
  options: CreateRWLayerOptions = {},
): Promise<RWLayer> {
  checkName(name);
  const mountId = randomId();
  const info: RWLayerInfo = { name, mountId };
  if (options.init) info.initId = `${mountId}-init`;
  if (parent !== undefined) info.parent = parent;
  const target = path.join(ctx.mountsDir, name);

  const parentCacheId = await ctx.shared(async () => {
    const cacheId = parent === undefined ? undefined : await ctx.cacheIdOf(parent);
    const ws = await WriteSet.create(ctx.tmpDir);
    try {
      // Synced together: the journal commits them in one go.
      await Promise.all([
        writeDurable(ws, F.mountId, mountId),
        info.initId ? writeDurable(ws, F.initId, info.initId) : undefined,
        parent !== undefined ? writeDurable(ws, F.parent, parent) : undefined,
      ]);
      await ws.commit(target);
    } catch (err) {
      await ws.cancel().catch(() => undefined);
      if (isErrno(err, 'EEXIST') || isErrno(err, 'ENOTEMPTY')) throw new ConflictError(`RW layer ${name} already exists`);
      throw err;
    }
    await syncDirectory(ctx.mountsDir);
    return cacheId;
  });

  const layer = new RWLayer(ctx, info);
  try {
    let below = parentCacheId;
    if (info.initId) {
      await ctx.driver.prepare(info.initId, parentCacheId);
      if (options.initDirs && ctx.driver.capabilities.layerDirIsDiff) {
        const upper = ctx.driver.layerDir(info.initId);
        await copyUpDirs(upper, await lowerDirs(ctx.driver, info.initId), options.initDirs);
        await options.init!(upper);
      } else if (ctx.driver.mountpoint(info.initId) === ctx.driver.layerDir(info.initId)) {
        // The layer dir is the full view already (vfs).
        await options.init!(ctx.driver.layerDir(info.initId));
      } else {
        const root = ctx.driver.mountpoint(info.initId);
        await mountAll(await ctx.driver.mounts(info.initId), root);
        try {
          await options.init!(root);
        } finally {
          await unmount(root);
        }
      }
      await ctx.driver.commit(info.initId);
      below = info.initId;
    }
    await ctx.driver.prepare(mountId, below);
  } catch (err) {
    await removeRWLayerFiles(ctx, info).catch(() => undefined);
    throw err;
  }
  return layer;
}

export async function getRWLayer(ctx: RWLayerContext, name: string): Promise<RWLayer> {
  checkName(name);
  const info = await readRWLayerInfo(ctx.mountsDir, name);
  if (!info) throw new NotFoundError(`RW layer ${name} does not exist`);
  return new RWLayer(ctx, info);
}

/**
 * Unmounts and deletes an RW layer. The record goes first (renamed away, then deleted), so
 * a crash half-way leaves only driver dirs that nothing names, which recover() reaps.
 */
export async function removeRWLayer(ctx: RWLayerContext, name: string): Promise<void> {
  checkName(name);
  const info = await readRWLayerInfo(ctx.mountsDir, name);
  const dir = path.join(ctx.mountsDir, name);
  if (!info) {
    // A torn record (crash during create) is still removable.
    try {
      await lstat(dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new NotFoundError(`RW layer ${name} does not exist`);
      throw err;
    }
    await removeAll(dir);
    return;
  }
  await new RWLayer(ctx, info).unmount();
  await removeRWLayerFiles(ctx, info);
}

async function removeRWLayerFiles(ctx: RWLayerContext, info: RWLayerInfo): Promise<void> {
  const dir = path.join(ctx.mountsDir, info.name);
  const doomed = path.join(ctx.tmpDir, `removing-${info.name}-${randomId().slice(0, 8)}`);
  try {
    await rename(dir, doomed);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  const removed = await Promise.allSettled([
    ctx.driver.remove(info.mountId),
    info.initId ? ctx.driver.remove(info.initId) : undefined,
    // A record dir, never a mount point: no need to consult the mount table.
    rm(doomed, { recursive: true, force: true }),
  ]);
  const failed = removed.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

async function lowerDirs(driver: Driver, id: string): Promise<string[]> {
  const lower = (await driver.metadata(id)).LowerDir;
  return lower ? lower.split(':') : [];
}

/**
 * Makes each of `dirs` (and its parents) exist in the overlay upper dir `upper` with the
 * owner, mode, times and xattrs it has in the lowers, as the kernel's copy-up would; a
 * directory absent below is left to the caller.
 */
async function copyUpDirs(upper: string, lowers: readonly string[], dirs: readonly string[]): Promise<void> {
  const { LowerStack } = await import('../archive/changes.js');
  const { copyAttributes } = await import('../sys/copy-tree.js');
  const stack = new LowerStack(lowers);
  const done = new Set<string>();
  for (const dir of dirs) {
    const parts = dir.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const rel = `/${parts.slice(0, i).join('/')}`;
      if (done.has(rel)) continue;
      done.add(rel);
      const found = await stack.find(rel);
      if (!found || !found.st.isDirectory()) break;
      const target = path.join(upper, rel);
      await mkdir(target, { mode: 0o700 }).catch((err: unknown) => {
        if (!isErrno(err, 'EEXIST')) throw err;
      });
      copyAttributes(found.path, target);
      // The kernel never copies its own control xattrs up: an opaque flag copied from a
      // lower dir would hide everything below it.
      const addon = native();
      for (const name of addon.llistxattr(target)) if (name.startsWith('trusted.overlay.')) addon.lremovexattr(target, name);
    }
  }
}
