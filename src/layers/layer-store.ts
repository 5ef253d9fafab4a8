/**
 * Layer store: `image/<driver>/layerdb` in Docker's layout.
 *
 * Identity: a read-only layer is named by its chainID (`layerdb/sha256/<chainIDhex>/`),
 * holding `diff`, `size`, `cache-id`, `parent` (absent for base layers),
 * `tar-split.json.gz` and optionally `descriptor.json`. Its files live in the driver under
 * the random `cache-id`. The store knows nothing of images or containers: whoever holds a
 * layer passes its chainID; `gc(keep)` removes what nobody keeps.
 *
 * ```
 * layerdb/                      0700
 *   .lock                       flock shared by every process using this store (not Docker's)
 *   tmp/                        0755
 *     write-set-XXXXXX/         0700  a registration in progress; flock'ed by its owner
 *   sha256/                     0755
 *     <chainIDhex>/             0700  renamed from a write-set, complete or absent
 *       diff size cache-id parent tar-split.json.gz descriptor.json   (0644)
 *     <chainIDhex>-<64hex>-removing/    a layer being deleted
 *   mounts/<name>/{mount-id,init-id,parent}   RW layers; read here, written by their owner
 * ```
 *
 * Concurrency and crash safety, across processes (no daemon):
 *  - A registration first creates its write-set and records its `cache-id` (and `parent`)
 *    there, holding `layerdb/.lock` shared; only then does it create the driver dir. So a
 *    driver dir is always named by a committed layer, a live write-set or a mount, and
 *    `recover()` (exclusive) can delete every other one without racing a live registration.
 *  - The tar is applied with no store lock held. Publishing takes the exclusive lock briefly:
 *    if the chainID already exists the new copy is discarded (two loads of one image store
 *    each layer once), else the write-set is renamed into `sha256/<hex>`. The data and
 *    metadata were made durable by one syncfs before that rename.
 *  - `gc` decides and renames to `-removing` under the exclusive lock, and keeps the parents
 *    named by live write-sets and by mounts, so it never deletes a layer something is being
 *    built on. A process that creates driver dirs by other means (RW layers) must likewise
 *    record their ids under `mounts/<name>/` first, holding the shared lock.
 *  - Readers (get/list/tarStream) take no lock: directories appear and disappear by rename.
 */
import { closeSync, constants as fsConstants, openSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';

import { chmod, rename } from '../sys/meta-fs.js';
import type { UnpackResult } from '../archive/layer.js';
import { chainIds, digestHex, isDigest, isHex64, sha256, type Digest } from '../digest.js';
import type { Driver } from '../drivers/driver.js';
import {
  ConflictError,
  DigestMismatchError,
  InvalidArgumentError,
  NotFoundError,
  isErrno,
} from '../errors.js';
import { native } from '../native/addon.js';
import { WriteSet, syncDirectory } from '../sys/atomic.js';
import { ensureDir, exists, readOptional, readdirOptional, removeAll } from '../sys/fs.js';
import { isValidLayerDirId, randomId } from '../sys/ids.js';
import { isLockHeld } from '../sys/lock.js';
import { StoreLock } from './store-lock.js';
import type { FileRange } from './apply-layer.js';
import type { TarStreamPool } from './tar-stream-pool.js';
import {
  createRWLayer, getRWLayer, readRWLayerInfo, removeRWLayer,
  type CreateRWLayerOptions, type RWLayer, type RWLayerContext, type RWLayerInfo,
} from './rw-layer.js';

export type { FileRange, CreateRWLayerOptions, RWLayer, RWLayerInfo };

export interface LayerInfo {
  chainId: Digest;
  diffId: Digest;
  parent?: Digest;
  cacheId: string;
  /** Docker's `size` of this layer alone. */
  size: number;
  /** Depth in its stack, base = 1. */
  depth: number;
}

/** A distribution descriptor, stored as `descriptor.json` (foreign layers, pulls). */
export interface LayerDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
}

export interface RegisterOptions {
  expectedDiffId?: Digest;
  /** Stored as descriptor.json when given (registry pulls). */
  descriptor?: LayerDescriptor;
  onProgress?: (bytes: number) => void;
}

/**
 * One layer of a chain for `registerChain`, bottom-up, with its tar (plain or compressed)
 * either behind `open` or as a byte range of a file. Stored layers are never opened.
 */
export type ChainLayer = {
  /** The layer's diffID as the image config states it; verified after applying. */
  diffId: Digest;
  descriptor?: LayerDescriptor;
} & (
  | { open: () => Promise<Readable>; file?: undefined }
  /**
   * Read by the worker thread itself: no copying through the main thread. The loader uses
   * this for layers sitting uncompressed inside an archive file.
   */
  | { file: FileRange; open?: undefined }
);

export interface RegisterChainOptions {
  /**
   * How many layers are applied at once, each in its own worker thread; with 1 they are
   * applied one after the other in this thread. Default: half the available cores, at least
   * 1 (see DEFAULT_CONCURRENCY). Drivers whose layer dirs need the parent's full tree
   * (whiteouts 'delete', e.g. vfs) always apply one at a time.
   */
  concurrency?: number;
  /** Uncompressed bytes of layer `index` (into the chain) applied so far. */
  onProgress?: (index: number, bytes: number) => void;
}

export interface LayerStoreOptions {
  /** `<data-root>/image/<driver-name>`. */
  imageRoot: string;
  driver: Driver;
}

/**
 * Layers applied at once by default. Applying one layer already keeps two cores busy: the
 * archive module hashes, CRCs and records tar-split on a thread of its own while this one
 * writes files. Measured on 2 cores, 4 × 125 MB layers (fresh ext4, median of 5): 1.29 s one
 * at a time in-process, 1.34 s with 2 workers reading the files themselves, 1.50 s with 2
 * workers fed through messages; so a second layer only pays where there are cores to spare.
 */
export const DEFAULT_CONCURRENCY = Math.max(1, Math.floor(os.availableParallelism() / 2));

/** Docker's `maxLayerDepth`: a layer may sit on at most 124 others. */
export const MAX_LAYER_DEPTH = 125;


const LAYERDB = 'layerdb';
const F = {
  diff: 'diff',
  size: 'size',
  cacheId: 'cache-id',
  parent: 'parent',
  tarSplit: 'tar-split.json.gz',
  descriptor: 'descriptor.json',
  /**
   * strata's own addition: the layer tar's length, so `save` can lay out an archive without
   * inflating every tar-split record first. Docker ignores it; a layer without it (written
   * by Docker) is sized from its record.
   */
  tarSize: 'strata-tar-size',
  mountId: 'mount-id',
  initId: 'init-id',
} as const;
const WRITE_SET_PREFIX = 'write-set-';
const REMOVING_RE = /^[0-9a-f]{64}-[0-9a-f]{64}-removing$/;
const SIZE_RE = /^(0|[1-9][0-9]*)$/;

/** What a `layerdb/sha256/<hex>` dir holds, checked for shape but not against its parent. */
interface LayerRecord {
  chainId: Digest;
  diffId: Digest;
  parent?: Digest;
  cacheId: string;
  size: number;
}

/** A registration between write-set creation and publication. */
interface Staged {
  ws: WriteSet;
  cacheId: string;
  parent?: Digest;
  /** Set once the tar is applied and the chainID known. */
  chainId?: Digest;
  diffId?: Digest;
  size?: number;
  tarSize?: number;
  /** Renamed into `sha256/`: from then on it is a stored layer, never discarded. */
  published?: boolean;
}

/** A small text file of a layer record, or undefined when absent. */
async function readText(file: string): Promise<string | undefined> {
  return (await readOptional(file))?.toString('utf8');
}

function maxDepthExceeded(): InvalidArgumentError {
  return new InvalidArgumentError('max depth exceeded');
}

function layerDoesNotExist(): NotFoundError {
  return new NotFoundError('layer does not exist');
}

/** Docker's distribution.Descriptor JSON: fields in its declared order, empties omitted. */
function descriptorJson(d: LayerDescriptor): string {
  const out: Record<string, unknown> = {};
  if (d.mediaType) out.mediaType = d.mediaType;
  if (d.size) out.size = d.size;
  if (d.digest) out.digest = d.digest;
  if (d.urls && d.urls.length > 0) out.urls = d.urls;
  return JSON.stringify(out);
}

/**
 * Workers rebuilding layer tars: one more than the cores, because on a cold cache a worker
 * spends much of its time blocked opening files (inode reads), and the spare keeps the disk
 * busy meanwhile (save of a 551 MB, 5-layer image from a cold cache on 2 cores: ~1.25 s
 * with 3, ~1.4 s with 2 or 4).
 */
const TAR_WORKERS = Math.min(3, os.availableParallelism() + 1);

/** Docker's error for a layer whose rebuilt tar does not hash to its diffID. */
function verifyDiffId(diffId: Digest, actual: string): DigestMismatchError | undefined {
  if (actual === diffId) return undefined;
  return new DigestMismatchError(
    `could not verify layer data for: ${diffId}. This may be because internal files in the layer ` +
      'store were modified. Re-pulling or rebuilding this image may resolve the issue',
    diffId,
    actual,
  );
}

export class LayerStore {
  readonly driver: Driver;
  /** `<imageRoot>/layerdb`. */
  readonly root: string;
  readonly #lock: StoreLock;
  /** Whether the driver home is on another filesystem than layerdb (then both are synced). */
  readonly #driverOnOtherFs: boolean;
  readonly #records = new Map<Digest, LayerRecord>();
  #tarStreams: TarStreamPool | undefined;

  private constructor(root: string, driver: Driver, driverOnOtherFs: boolean) {
    this.root = root;
    this.driver = driver;
    this.#lock = new StoreLock(path.join(root, '.lock'));
    this.#driverOnOtherFs = driverOnOtherFs;
  }

  /** Creates the layout if missing (modes as Docker's) and opens the store. */
  static async open(options: LayerStoreOptions): Promise<LayerStore> {
    const root = path.join(options.imageRoot, LAYERDB);
    await ensureDir(root, 0o700);
    await ensureDir(path.join(root, 'tmp'), 0o755);
    await ensureDir(path.join(root, 'sha256'), 0o755);
    await ensureDir(path.join(root, 'mounts'), 0o755);
    const [a, b] = [statSync(root), statSync(options.driver.home)];
    return new LayerStore(root, options.driver, a.dev !== b.dev);
  }

  #dir(chainId: Digest): string {
    return path.join(this.root, 'sha256', digestHex(chainId));
  }

  // ---- registration -------------------------------------------------------------------

  /**
   * Applies a layer tar on top of `parent` and records it. If the resulting chainID already
   * exists, the new copy is discarded and the existing layer returned (two loads of the same
   * image store each layer once). Staged in `layerdb/tmp/write-set-*`, made durable, then
   * renamed into place; a crash at any point leaves nothing listed.
   *
   * Fails with `layer does not exist` when `parent` is not stored, `max depth exceeded` when
   * it already has 125 layers, and with the archive's errors for a bad tar; a failure leaves
   * nothing behind.
   */
  async register(input: Readable, parent: Digest | undefined, options: RegisterOptions = {}): Promise<LayerInfo> {
    const [stagedList, parentInfo] = await this.#stage([parent]);
    const staged = stagedList[0]!;
    try {
      await this.driver.prepare(staged.cacheId, parentInfo?.cacheId);
      const tarSplitPath = path.join(staged.ws.path, F.tarSplit);
      const tarSplit = staged.ws.createWriteStream(F.tarSplit);
      let result: UnpackResult;
      try {
        // Loaded on demand (as the pools below): commands that never apply or rebuild a
        // layer tar (run, diff, rm...) skip the archive code's start-up cost.
        const { unpackLayer } = await import('../archive/layer.js');
        result = await unpackLayer(input, {
          target: this.driver.layerDir(staged.cacheId),
          whiteouts: this.driver.capabilities.whiteouts,
          tarSplit,
          expectedDiffId: options.expectedDiffId,
          onProgress: options.onProgress,
        });
        await finished(tarSplit);
      } catch (err) {
        tarSplit.destroy();
        throw err;
      }
      await chmod(tarSplitPath, 0o644);
      this.#applied(staged, result);
      await this.#writeMetadata(staged, options.descriptor);
      await this.driver.commit(staged.cacheId);
    } catch (err) {
      await this.#discard([staged]);
      throw err;
    }

    const chainId = staged.chainId!;
    try {
      // Most duplicates are found here, before paying for a sync.
      const existing = await this.get(chainId);
      if (existing) {
        await this.#discard([staged]);
        return existing;
      }
      const published = await this.#publish([staged]);
      if (published === 0) {
        await this.#discard([staged]);
        const winner = await this.get(chainId);
        if (!winner) throw layerDoesNotExist();
        return winner;
      }
    } catch (err) {
      await this.#discard([staged]);
      throw err;
    }
    const info: LayerInfo = {
      chainId,
      diffId: staged.diffId!,
      cacheId: staged.cacheId,
      size: staged.size!,
      depth: (parentInfo?.depth ?? 0) + 1,
    };
    if (parent !== undefined) info.parent = parent;
    return info;
  }

  /**
   * Registers a whole stack (bottom-up) and returns the LayerInfo of every layer in it.
   *
   * The chainIDs follow from the diffIDs, so layers already stored are skipped without
   * opening them. The missing ones are prepared bottom-up and, on drivers whose layer dirs
   * hold only their own changes (overlay whiteouts) and with `concurrency` above 1, applied
   * in parallel worker threads; otherwise one after the other. Every computed diffID must match
   * (`invalid diffID for layer <i>: expected "<d1>", got "<d2>"`), then one syncfs makes all
   * of them durable and they are published bottom-up under the store lock. Losing a race
   * to another process registering the same layers is retried (those layers are then
   * skipped). Any failure discards every layer staged by this call.
   */
  async registerChain(layers: readonly ChainLayer[], options: RegisterChainOptions = {}): Promise<LayerInfo[]> {
    if (layers.length === 0) return [];
    if (layers.length > MAX_LAYER_DEPTH) throw maxDepthExceeded();
    const chain = chainIds(layers.map((l) => l.diffId));
    // Every lost race leaves one more layer of the chain stored (the one another process
    // published first), so a chain can lose at most once per layer to a process registering
    // it layer by layer; the extra attempts cover a concurrent gc removing our base.
    const maxAttempts = layers.length + 2;
    for (let attempt = 1; ; attempt++) {
      let complete: boolean;
      try {
        complete = await this.#registerChainOnce(layers, chain, options);
      } catch (err) {
        // The base we built on was removed by a concurrent gc before we could pin it.
        const retryable = err instanceof NotFoundError && err.message === 'layer does not exist';
        if (!retryable || attempt >= maxAttempts) throw err;
        continue;
      }
      if (complete) return this.#loadChain(chain);
      if (attempt >= maxAttempts) {
        throw new ConflictError(`registering layer chain ${chain.at(-1)} kept conflicting with other processes`);
      }
    }
  }

  /** One pass of registerChain; false when another process published part of it first. */
  async #registerChainOnce(
    layers: readonly ChainLayer[],
    chain: readonly Digest[],
    options: RegisterChainOptions,
  ): Promise<boolean> {
    // A stored layer implies its whole parent chain is stored (get() checks), so the
    // missing layers are exactly those above the highest stored one.
    let have = -1;
    for (let i = chain.length - 1; i >= 0; i--) {
      if (await this.get(chain[i]!)) {
        have = i;
        break;
      }
    }
    const first = have + 1;
    if (first === chain.length) return true;

    const parents = chain.slice(first).map((_, j) => (first + j === 0 ? undefined : chain[first + j - 1]));
    const [staged, baseInfo] = await this.#stage(parents);
    const whiteouts = this.driver.capabilities.whiteouts;
    // Overlay layer dirs hold only their own changes (whiteouts stored natively), so any
    // layer can be applied before its parent; a 'delete' driver copies the parent's tree at
    // prepare, which must therefore wait for the parent's apply.
    const parallel = whiteouts === 'overlay';
    const concurrency = parallel ? Math.max(1, Math.min(options.concurrency ?? DEFAULT_CONCURRENCY, staged.length)) : 1;
    // One at a time runs here: a worker would only add its start-up and a copy of the input.
    const pool = concurrency > 1 ? new (await import('./unpack-pool.js')).UnpackPool(concurrency) : undefined;
    const { applyLayer, openFileRange } = await import('./apply-layer.js');
    const abort = new AbortController();

    const applyOne = async (j: number): Promise<void> => {
      const i = first + j;
      const s = staged[j]!;
      const layer = layers[i]!;
      const target = {
        target: this.driver.layerDir(s.cacheId),
        whiteouts,
        tarSplitPath: path.join(s.ws.path, F.tarSplit),
        onProgress: options.onProgress && ((bytes: number) => options.onProgress!(i, bytes)),
      };
      let result: UnpackResult;
      if (pool) {
        result = await pool.run({ ...target, open: layer.open, file: layer.file, signal: abort.signal });
      } else {
        const input = layer.file ? openFileRange(layer.file) : await layer.open();
        try {
          result = await applyLayer(input, target);
        } finally {
          // We opened it, so we close it, also when the apply stopped half-way.
          input.destroy();
        }
      }
      if (result.diffId !== layer.diffId) {
        throw new DigestMismatchError(
          `invalid diffID for layer ${i}: expected "${layer.diffId}", got "${result.diffId}"`,
          layer.diffId,
          result.diffId,
        );
      }
      this.#applied(s, result);
      await this.#writeMetadata(s, layer.descriptor);
      await this.driver.commit(s.cacheId);
      this.#flushInBackground();
    };

    try {
      try {
        if (pool) {
          for (let j = 0; j < staged.length; j++) {
            const parentCacheId = j === 0 ? baseInfo?.cacheId : staged[j - 1]!.cacheId;
            await this.driver.prepare(staged[j]!.cacheId, parentCacheId);
          }
          const runs = staged.map((_, j) =>
            applyOne(j).catch((err: unknown) => {
              abort.abort(err);
              throw err;
            }),
          );
          const outcomes = await Promise.allSettled(runs);
          const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
          // The other layers were aborted because of the first failure; report that one.
          if (failed) throw abort.signal.aborted ? abort.signal.reason : failed.reason;
        } else {
          // One at a time, each prepared right before its apply: a 'delete' driver copies
          // the parent's tree at prepare, so the parent must be complete by then.
          for (let j = 0; j < staged.length; j++) {
            const parentCacheId = j === 0 ? baseInfo?.cacheId : staged[j - 1]!.cacheId;
            await this.driver.prepare(staged[j]!.cacheId, parentCacheId);
            await applyOne(j);
          }
        }
      } finally {
        await pool?.close();
      }
      const published = await this.#publish(staged);
      if (published < staged.length) {
        await this.#discard(staged.slice(published));
        return false;
      }
      return true;
    } catch (err) {
      await this.#discard(staged);
      throw err;
    }
  }

  /**
   * Creates one write-set per layer to register, recording `cache-id` and `parent` before
   * any driver dir exists, under the shared store lock so that recover/gc (exclusive) see
   * either nothing or a locked, labelled write-set. `parents[j]` is the parent chainID of
   * layer j; only `parents[0]` must already be stored (the others are staged here too).
   * Returns the write-sets and the stored base's info.
   */
  async #stage(parents: ReadonlyArray<Digest | undefined>): Promise<[Staged[], LayerInfo | undefined]> {
    return this.#lock.run('shared', async () => {
      const base = parents[0];
      let baseInfo: LayerInfo | undefined;
      if (base !== undefined) {
        baseInfo = await this.get(base);
        if (!baseInfo) throw layerDoesNotExist();
        if (baseInfo.depth + parents.length > MAX_LAYER_DEPTH) throw maxDepthExceeded();
      }
      const staged: Staged[] = [];
      try {
        for (const parent of parents) {
          const ws = await WriteSet.create(path.join(this.root, 'tmp'));
          const s: Staged = { ws, cacheId: randomId(), parent };
          staged.push(s);
          await ws.writeFile(F.cacheId, s.cacheId, 0o644);
          if (parent !== undefined) await ws.writeFile(F.parent, parent, 0o644);
        }
      } catch (err) {
        await Promise.all(staged.map((s) => s.ws.cancel()));
        throw err;
      }
      return [staged, baseInfo];
    });
  }

  #flushing: Promise<void> | undefined;

  /**
   * Starts writing what finished layers left in the page cache to disk, on the thread pool,
   * while the next layers unpack: the syncfs that #publish awaits then finds little left.
   * Only a head start, so its errors are #publish's to report.
   */
  #flushInBackground(): void {
    if (this.#flushing) return;
    let fd: number;
    try {
      fd = openSync(this.driver.home, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    } catch {
      return;
    }
    this.#flushing = native()
      .syncfsAsync(fd)
      .catch(() => undefined)
      .finally(() => {
        closeSync(fd);
        this.#flushing = undefined;
      });
  }

  #applied(s: Staged, result: UnpackResult): void {
    s.diffId = result.diffId;
    s.size = result.size;
    s.tarSize = result.tarSize;
    s.chainId = s.parent === undefined ? result.diffId : sha256(`${s.parent} ${result.diffId}`);
  }

  async #writeMetadata(s: Staged, descriptor: LayerDescriptor | undefined): Promise<void> {
    await s.ws.writeFile(F.diff, s.diffId!, 0o644);
    await s.ws.writeFile(F.size, String(s.size!), 0o644);
    if (s.tarSize !== undefined) await s.ws.writeFile(F.tarSize, String(s.tarSize), 0o644);
    if (descriptor && descriptor.digest) await s.ws.writeFile(F.descriptor, descriptorJson(descriptor), 0o644);
  }

  /**
   * Makes the staged layers durable, then renames them into `sha256/` bottom-up under the
   * exclusive lock. Stops at the first chainID that another process published meanwhile
   * and returns how many were published (the caller discards the rest).
   */
  async #publish(staged: readonly Staged[]): Promise<number> {
    // One syncfs covers the layer files in the driver and every staged metadata file; it
    // runs before taking the lock so other processes' publications do not wait for it.
    await staged[0]!.ws.sync();
    if (this.#driverOnOtherFs) await syncFilesystemOf(this.driver.home);

    const displaced: string[] = [];
    const published = await this.#lock.run('exclusive', async () => {
      let n = 0;
      for (; n < staged.length; n++) {
        const s = staged[n]!;
        const target = this.#dir(s.chainId!);
        if (await exists(target)) {
          if (await this.#readRecord(s.chainId!)) break;
          // A dir with missing files (damage, or a foreign tool) would block this chainID
          // forever; it holds nothing usable, so it makes room.
          displaced.push(await this.#renameRemoving(s.chainId!));
        }
        if (n === 0 && s.parent !== undefined && !(await exists(this.#dir(s.parent)))) throw layerDoesNotExist();
        await s.ws.commit(target);
        s.published = true;
      }
      if (n > 0 || displaced.length > 0) await syncDirectory(path.join(this.root, 'sha256'));
      return n;
    });
    for (const dir of displaced) await this.#finishRemoving(dir);
    return published;
  }

  /** Drops staged registrations: their driver dirs, then their write-sets. Never throws. */
  async #discard(staged: readonly Staged[]): Promise<void> {
    // Top first: an overlay child's `lower` names its parent's short link.
    for (const s of [...staged].reverse()) {
      if (s.published) continue;
      await this.driver.remove(s.cacheId).catch(() => undefined);
      // If the driver dir could not be removed, recover() reaps it once the write-set is gone.
      await s.ws.cancel().catch(() => undefined);
    }
  }

  // ---- read-write layers (layerdb/mounts) -------------------------------------------------

  #rwContext(): RWLayerContext {
    return {
      driver: this.driver,
      mountsDir: path.join(this.root, 'mounts'),
      tmpDir: path.join(this.root, 'tmp'),
      cacheIdOf: async (chainId) => {
        const rec = await this.#readRecord(chainId);
        if (!rec) throw layerDoesNotExist();
        return rec.cacheId;
      },
      shared: (fn) => this.#lock.run('shared', fn),
    };
  }

  /**
   * Creates the RW layer `name` (a container ID, a build step) on the committed layer
   * `parent` (undefined: an empty filesystem). See rw-layer.ts. Fails with a ConflictError
   * when the name is taken, `layer does not exist` when `parent` is not stored.
   */
  createRWLayer(name: string, parent: Digest | undefined, options?: CreateRWLayerOptions): Promise<RWLayer> {
    return createRWLayer(this.#rwContext(), name, parent, options);
  }

  /** The RW layer `name`; NotFoundError when absent. */
  getRWLayer(name: string): Promise<RWLayer> {
    return getRWLayer(this.#rwContext(), name);
  }

  /** Unmounts and deletes the RW layer `name`; NotFoundError when absent. */
  removeRWLayer(name: string): Promise<void> {
    return removeRWLayer(this.#rwContext(), name);
  }

  /** Every readable `mounts/<name>` record. */
  async listRWLayers(): Promise<RWLayerInfo[]> {
    const dir = path.join(this.root, 'mounts');
    const out: RWLayerInfo[] = [];
    for (const name of await readdirOptional(dir)) {
      const info = await readRWLayerInfo(dir, name);
      if (info) out.push(info);
    }
    return out;
  }

  // ---- reading ------------------------------------------------------------------------

  /** Reads and shape-checks one committed layer dir; undefined when absent or incomplete. */
  async #readRecord(chainId: Digest): Promise<LayerRecord | undefined> {
    // A committed chainID dir is content-addressed and only ever appears or disappears by
    // rename, so a record read once stays true until this process renames it away; the
    // cache turns resolving N stacked layers from O(N²) file reads into O(N).
    const cached = this.#records.get(chainId);
    if (cached) return cached;
    const rec = await this.#readRecordFromDisk(chainId);
    if (rec) this.#records.set(chainId, rec);
    return rec;
  }

  async #readRecordFromDisk(chainId: Digest): Promise<LayerRecord | undefined> {
    const dir = this.#dir(chainId);
    const [diff, size, cacheId, parent] = await Promise.all([
      readText(path.join(dir, F.diff)),
      readText(path.join(dir, F.size)),
      readText(path.join(dir, F.cacheId)),
      readText(path.join(dir, F.parent)),
    ]);
    if (diff === undefined || size === undefined || cacheId === undefined) return undefined;
    const diffId = diff.trim();
    const sizeText = size.trim();
    const cache = cacheId.trim();
    const parentId = parent?.trim();
    if (!isDigest(diffId) || !SIZE_RE.test(sizeText) || !isValidLayerDirId(cache)) return undefined;
    if (parentId !== undefined && parentId !== '' && !isDigest(parentId)) return undefined;
    const p = parentId === undefined || parentId === '' ? undefined : (parentId as Digest);
    // The name must be the chainID its contents imply, or the stack is not what it claims.
    if (chainId !== (p === undefined ? diffId : sha256(`${p} ${diffId}`))) return undefined;
    return { chainId, diffId, parent: p, cacheId: cache, size: Number(sizeText) };
  }

  /**
   * Resolves `chainId` and its ancestors into LayerInfos (memoised in `memo`); undefined
   * when it or any ancestor is missing or incomplete, as Docker fails to load such a layer.
   */
  async #resolve(
    chainId: Digest,
    records: (id: Digest) => Promise<LayerRecord | undefined>,
    memo: Map<Digest, LayerInfo | null>,
  ): Promise<LayerInfo | undefined> {
    // Walk down iteratively (stacks are up to 125 deep), then fill depths on the way up.
    const path_: LayerRecord[] = [];
    let cursor: Digest | undefined = chainId;
    let below: LayerInfo | undefined;
    while (cursor !== undefined) {
      const known = memo.get(cursor);
      if (known === null) break;
      if (known !== undefined) {
        below = known;
        break;
      }
      const rec = await records(cursor);
      if (!rec || path_.length > MAX_LAYER_DEPTH) {
        memo.set(cursor, null);
        break;
      }
      path_.push(rec);
      cursor = rec.parent;
    }
    // An unresolved link taints everything above it.
    const brokenAt = cursor !== undefined && below === undefined;
    for (let k = path_.length - 1; k >= 0; k--) {
      const rec = path_[k]!;
      if (brokenAt) {
        memo.set(rec.chainId, null);
        continue;
      }
      const info: LayerInfo = { ...rec, depth: (below?.depth ?? 0) + 1 };
      if (info.parent === undefined) delete info.parent;
      memo.set(rec.chainId, info);
      below = info;
    }
    return memo.get(chainId) ?? undefined;
  }

  /** The committed layer `chainId`, or undefined when it is not (completely) stored. */
  async get(chainId: Digest): Promise<LayerInfo | undefined> {
    if (!isDigest(chainId)) return undefined;
    return this.#resolve(chainId, (id) => this.#readRecord(id), new Map());
  }

  /** Whether `chainId` is stored (the `hasLayer` an ImageStore needs). */
  async has(chainId: Digest): Promise<boolean> {
    return (await this.get(chainId)) !== undefined;
  }

  /** The descriptor stored with a layer (descriptor.json), if any. */
  async descriptor(chainId: Digest): Promise<LayerDescriptor | undefined> {
    const text = await readText(path.join(this.#dir(chainId), F.descriptor));
    return text === undefined ? undefined : (JSON.parse(text) as LayerDescriptor);
  }

  async #loadChain(chain: readonly Digest[]): Promise<LayerInfo[]> {
    const memo = new Map<Digest, LayerInfo | null>();
    const out: LayerInfo[] = [];
    // Top first fills the memo for the whole stack in one walk.
    for (const id of [...chain].reverse()) {
      const info = await this.#resolve(id, (d) => this.#readRecord(d), memo);
      if (!info) throw layerDoesNotExist();
      out.unshift(info);
    }
    return out;
  }

  /** Every loadable committed layer, and the names of committed dirs that are not loadable. */
  async #loadAll(): Promise<{ layers: Map<Digest, LayerInfo>; broken: Digest[] }> {
    const names = (await readdirOptional(path.join(this.root, 'sha256'))).filter(isHex64);
    const records = new Map<Digest, LayerRecord | undefined>();
    const BATCH = 64;
    for (let i = 0; i < names.length; i += BATCH) {
      const batch = names.slice(i, i + BATCH).map((hex) => `sha256:${hex}` as Digest);
      const read = await Promise.all(batch.map((id) => this.#readRecord(id)));
      batch.forEach((id, k) => records.set(id, read[k]));
    }
    const memo = new Map<Digest, LayerInfo | null>();
    const lookup = async (id: Digest): Promise<LayerRecord | undefined> =>
      records.has(id) ? records.get(id) : this.#readRecord(id);
    const layers = new Map<Digest, LayerInfo>();
    const broken: Digest[] = [];
    for (const id of records.keys()) {
      const info = await this.#resolve(id, lookup, memo);
      if (info) layers.set(id, info);
      else broken.push(id);
    }
    return { layers, broken };
  }

  /** All committed layers, sorted by chainID. */
  async list(): Promise<LayerInfo[]> {
    const { layers } = await this.#loadAll();
    return [...layers.values()].sort((a, b) => (a.chainId < b.chainId ? -1 : a.chainId > b.chainId ? 1 : 0));
  }

  /**
   * The layer's tar, reassembled byte for byte from tar-split and the driver's layer dir,
   * and verified against its diffID as it streams: a mismatch fails the stream at its end
   * with `could not verify layer data for: <diffID>. ...` (the consumer must not trust the
   * bytes until the stream ends cleanly). The caller keeps the layer out of `gc` while it
   * streams; a layer removed meanwhile fails the stream.
   */
  async tarStream(chainId: Digest): Promise<Readable> {
    const info = await this.get(chainId);
    if (!info) throw layerDoesNotExist();
    // Rebuilt on a worker thread (reads, sha256 and tar-split parsing off the main thread);
    // the sha256 covers every byte, so per-file CRCs would only repeat it.
    return (await this.#tarStreamPool()).open(path.join(this.#dir(chainId), F.tarSplit), this.driver.layerDir(info.cacheId), (actual) =>
      verifyDiffId(info.diffId, actual),
    );
  }

  /**
   * Like tarStream, but the tar is written by a worker straight into the file `fd` at
   * `position`, where the caller reserved `size` bytes (the tar's length); a tar of any
   * other length fails. Resolves once it is written and verified; on failure, only after
   * the worker's last write, so the caller may close or delete the file at once.
   */
  async writeTarAt(
    chainId: Digest,
    target: { fd: number; position: number; size: number },
    onBytes?: (bytes: number) => void,
  ): Promise<void> {
    const info = await this.get(chainId);
    if (!info) throw layerDoesNotExist();
    const actual = await (await this.#tarStreamPool()).writeAt(
      { tarSplitPath: path.join(this.#dir(chainId), F.tarSplit), dir: this.driver.layerDir(info.cacheId), ...target },
      onBytes,
    );
    const err = verifyDiffId(info.diffId, actual);
    if (err) throw err;
  }

  /** Boots the workers tarStream/writeTarAt use, for a caller that is about to need them. */
  warmTarWorkers(): void {
    void this.#tarStreamPool().then((pool) => pool.warm(), () => undefined);
  }

  /** Byte length of the layer's tar (what tarStream yields), from its tar-split record. */
  async tarSize(chainId: Digest): Promise<number> {
    const recorded = (await readText(path.join(this.#dir(chainId), F.tarSize)))?.trim();
    if (recorded !== undefined && SIZE_RE.test(recorded)) return Number(recorded);
    // On the workers: a record is inflated whole (tens of MB for a big layer), and a save
    // sizes every layer before it writes any.
    return (await this.#tarStreamPool()).tarSize(path.join(this.#dir(chainId), F.tarSplit));
  }

  async #tarStreamPool(): Promise<TarStreamPool> {
    this.#tarStreams ??= new (await import('./tar-stream-pool.js')).TarStreamPool(TAR_WORKERS);
    return this.#tarStreams;
  }

  // ---- removal and recovery -----------------------------------------------------------

  /** The RW layers recorded under `mounts/`: their parent chainIDs and driver ids. */
  async #readMounts(): Promise<{ parents: Digest[]; driverIds: string[] }> {
    const parents: Digest[] = [];
    const driverIds: string[] = [];
    const base = path.join(this.root, 'mounts');
    for (const name of await readdirOptional(base)) {
      const dir = path.join(base, name);
      const [mountId, initId, parent] = await Promise.all([
        readText(path.join(dir, F.mountId)),
        readText(path.join(dir, F.initId)),
        readText(path.join(dir, F.parent)),
      ]);
      for (const id of [mountId, initId]) if (id !== undefined && id.trim() !== '') driverIds.push(id.trim());
      if (parent !== undefined && isDigest(parent.trim())) parents.push(parent.trim() as Digest);
    }
    return { parents, driverIds };
  }

  async #crashEvidence(): Promise<boolean> {
    const tmp = await readdirOptional(path.join(this.root, 'tmp'));
    if (tmp.some((n) => n.startsWith(WRITE_SET_PREFIX) || n.startsWith('removing-'))) return true;
    return (await readdirOptional(path.join(this.root, 'sha256'))).some((n) => REMOVING_RE.test(n));
  }

  /** Write-sets under `tmp/`, whether their owner still lives, and what they recorded. */
  async #readWriteSets(): Promise<Array<{ dir: string; live: boolean; cacheId?: string; parent?: Digest }>> {
    const tmp = path.join(this.root, 'tmp');
    const out: Array<{ dir: string; live: boolean; cacheId?: string; parent?: Digest }> = [];
    for (const name of await readdirOptional(tmp)) {
      if (!name.startsWith(WRITE_SET_PREFIX)) continue;
      const dir = path.join(tmp, name);
      const live = await isLockHeld(dir);
      const [cacheId, parent] = await Promise.all([
        readText(path.join(dir, F.cacheId)),
        readText(path.join(dir, F.parent)),
      ]);
      const cid = cacheId?.trim();
      const p = parent?.trim();
      out.push({
        dir,
        live,
        cacheId: cid !== undefined && isValidLayerDirId(cid) ? cid : undefined,
        parent: p !== undefined && isDigest(p) ? p : undefined,
      });
    }
    return out;
  }

  /** Renames a committed dir to `<hex>-<random64>-removing` (Docker's deletion marker). */
  async #renameRemoving(chainId: Digest): Promise<string> {
    this.#records.delete(chainId);
    for (;;) {
      const target = path.join(this.root, 'sha256', `${digestHex(chainId)}-${randomId()}-removing`);
      try {
        await rename(this.#dir(chainId), target);
        return target;
      } catch (err) {
        // rename(2) replaces an empty dir silently; a non-empty one fails: draw again.
        if (!isErrno(err, 'ENOTEMPTY') && !isErrno(err, 'EEXIST')) throw err;
      }
    }
  }

  /** Deletes a `-removing` dir's driver dir (from its cache-id), then the dir. */
  async #finishRemoving(dir: string): Promise<void> {
    const cacheId = (await readText(path.join(dir, F.cacheId)))?.trim();
    if (cacheId !== undefined && isValidLayerDirId(cacheId)) await this.driver.remove(cacheId);
    await removeAll(dir);
  }

  /**
   * Removes every layer that is neither in `keep`, nor an ancestor of a kept layer, nor the
   * parent chain of an RW mount or of a registration in progress. Returns the removed
   * chainIDs, top first. The decision and the renames to `-removing` happen under the
   * exclusive lock; the driver dirs are deleted after it is released (a crash in between
   * leaves `-removing` dirs, which recover() finishes).
   */
  async gc(keep: ReadonlySet<Digest>): Promise<Digest[]> {
    const doomed = await this.#lock.run('exclusive', async () => {
      const { layers } = await this.#loadAll();
      const roots = new Set<Digest>(keep);
      for (const p of (await this.#readMounts()).parents) roots.add(p);
      for (const ws of await this.#readWriteSets()) if (ws.live && ws.parent) roots.add(ws.parent);
      const marked = new Set<Digest>();
      for (const root of roots) {
        let cursor: Digest | undefined = root;
        while (cursor !== undefined && !marked.has(cursor) && layers.has(cursor)) {
          marked.add(cursor);
          cursor = layers.get(cursor)!.parent;
        }
      }
      const victims = [...layers.values()]
        .filter((l) => !marked.has(l.chainId))
        .sort((a, b) => b.depth - a.depth || (a.chainId < b.chainId ? -1 : 1));
      const renamed: Array<{ chainId: Digest; dir: string }> = [];
      for (const l of victims) renamed.push({ chainId: l.chainId, dir: await this.#renameRemoving(l.chainId) });
      if (renamed.length > 0) await syncDirectory(path.join(this.root, 'sha256'));
      return renamed;
    });
    const errors = new Errors();
    for (const d of doomed) await errors.run(() => this.#finishRemoving(d.dir));
    errors.throwFirst();
    return doomed.map((d) => d.chainId);
  }

  /**
   * Cleans what crashed processes left, under the exclusive lock; returns at once, doing
   * nothing, when another process (or call) holds the lock. In order:
   *  1. write-sets whose flock is free (owner dead) and the driver dir named by their
   *     `cache-id`;
   *  2. committed dirs that do not load (files missing, parent chain broken) are renamed to
   *     `-removing`;
   *  3. every `-removing` dir: its driver dir, then itself;
   *  4. driver dirs (64-hex ids, optionally `-init`) that no layer, mount or live write-set
   *     names.
   */
  async recover(options: { ifCrashed?: boolean } = {}): Promise<void> {
    // With `ifCrashed` (every engine open): every crash this reaps leaves a mark — a staging
    // dir or a half-removed RW layer record in `tmp/`, or a `-removing` dir in `sha256/` —
    // and without one a command skips reading every layer and mount record (which grows
    // with the store). Damage done by other means needs a full run.
    if (options.ifCrashed && !(await this.#crashEvidence())) return;
    // One stuck item (a busy mount, say) must not keep the rest from being cleaned; the
    // first failure is reported once everything else was tried.
    const errors = new Errors();
    await this.#lock.tryRun('exclusive', async () => {
      const referenced = new Set<string>();
      for (const name of await readdirOptional(path.join(this.root, 'tmp'))) {
        // RW layer records renamed away by a removal that did not finish.
        if (name.startsWith('removing-')) await errors.run(() => removeAll(path.join(this.root, 'tmp', name)));
      }
      for (const ws of await this.#readWriteSets()) {
        if (ws.live) {
          if (ws.cacheId) referenced.add(ws.cacheId);
          continue;
        }
        await errors.run(async () => {
          if (ws.cacheId) await this.driver.remove(ws.cacheId);
          await removeAll(ws.dir);
        });
      }

      const { layers, broken } = await this.#loadAll();
      for (const id of broken) await errors.run(() => this.#renameRemoving(id));

      const sha = path.join(this.root, 'sha256');
      for (const name of await readdirOptional(sha)) {
        if (REMOVING_RE.test(name)) await errors.run(() => this.#finishRemoving(path.join(sha, name)));
      }

      for (const l of layers.values()) referenced.add(l.cacheId);
      for (const id of (await this.#readMounts()).driverIds) referenced.add(id);
      for (const id of await this.driver.list()) {
        if (isValidLayerDirId(id) && !referenced.has(id)) await errors.run(() => this.driver.remove(id));
      }
    });
    errors.throwFirst();
  }
}

/** Runs cleanup steps that must all be tried, remembering the first failure. */
class Errors {
  #first: unknown;
  #failed = false;

  async run(fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (!this.#failed) this.#first = err;
      this.#failed = true;
    }
  }

  throwFirst(): void {
    if (this.#failed) throw this.#first;
  }
}

/** syncfs on the filesystem holding `dir`. */
async function syncFilesystemOf(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    native().syncfs(handle.fd);
  } finally {
    await handle.close();
  }
}
