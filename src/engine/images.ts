/**
 * The image service: every image operation the CLI (or a future API server) offers, with
 * Docker 20.10's semantics and messages — load, save, import, list, inspect, tag, remove,
 * history, prune. It composes the stores and the transfer media; it renders nothing.
 *
 * Layers and images are kept consistent across processes with one extra lock,
 * `<image-root>/.gc.lock`: whatever registers layers for an image it has not created yet
 * (load, import) holds it shared until the image exists; whatever removes unreferenced
 * layers (rmi, prune, the cleanup of a failed load) holds it exclusively. So a layer that is
 * about to get its image is never collected.
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';

import { chainIds, digestHex, isDigest, shortId, type Digest } from '../digest.js';
import type { Driver } from '../drivers/driver.js';
import { ConflictError, InvalidArgumentError, InvalidArchiveError, NotFoundError } from '../errors.js';
import type { ImageConfig, ImageRecord, ImageStore } from '../images/image-store.js';
import {
  familiarName, familiarString, parseNormalizedNamed, withDefaultTag, type Reference,
} from '../images/reference.js';
import type { ReferenceStore } from '../images/reference-store.js';
import type { LayerInfo, LayerStore } from '../layers/layer-store.js';
import { FileLock } from '../sys/lock.js';
import { goJson, sortedKeys } from '../transfer/go-json.js';
import type { SourceImage, TargetImage } from '../transfer/image-source.js';
import {
  ZERO_TIME, ZERO_TIME_UNIX, emptyContainerConfig, nowRfc3339Nano, parseGoTime, toContainerConfig,
  type DeleteRecord, type HistoryItem, type ImageInspect, type ImageSummary, type PruneReport,
} from './api-types.js';
import { has, invalidFilter, matchLabels, matchNoLabels, pathMatch, parseUntil, validateFilters, type Filters } from './filters.js';

/** A container (or anything else) that keeps an image alive; filled in by the container work. */
export interface ImageUser {
  id: string;
  running: boolean;
}

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

export interface ImageServiceOptions {
  driver: Driver;
  layers: LayerStore;
  store: ImageStore;
  refs: ReferenceStore;
  /** `<data-root>/image/<driver>`. */
  imageRoot: string;
  /** A private temp dir under `<data-root>/tmp`. */
  tempDir: () => Promise<TempDir>;
  /** Who uses image `id` (containers). Defaults to nobody. */
  imageUsers?: (id: Digest) => Promise<ImageUser[]>;
}

/** Progress of a load, for progress bars. */
export type LoadProgress =
  | { kind: 'spool'; bytes: number }
  | { kind: 'layer'; diffId: Digest; bytes: number; total: number };

export interface LoadOptions {
  onProgress?: (event: LoadProgress) => void;
  /** Called as each image is loaded (Docker prints its lines as it goes). */
  onImage?: (image: LoadedImage) => void;
}

export interface LoadedImage {
  id: Digest;
  /** Familiar tags, in archive order. */
  tags: string[];
  /** Tags that pointed at another image before this load. */
  replaced: Array<{ tag: string; oldId: Digest }>;
}

export interface SaveOptions {
  onProgress?: (event: { diffId: Digest; bytes: number; total: number }) => void;
}

export interface ImportOptions {
  /** `REPOSITORY[:TAG]` to tag the new image with. */
  repository?: string;
  /** Commit message (`-m`); default `Imported from -`. */
  message?: string;
  /** Dockerfile instructions (`-c`). */
  changes?: readonly string[];
  /** `os[/arch[/variant]]`; default this host. */
  platform?: string;
  onProgress?: (bytes: number) => void;
}

export interface RemoveOptions {
  force?: boolean;
  /** Keep untagged parents (`--no-prune`). */
  noPrune?: boolean;
}

export interface ListOptions {
  all?: boolean;
  filters?: Filters;
}

export interface PruneOptions {
  /** Remove every unused image, not only dangling ones (`-a`). */
  all?: boolean;
  filters?: Filters;
}

const GC_LOCK = '.gc.lock';

// The media are loaded on first use: listing and inspecting (most commands) never need them,
// and command start-up time is dominated by module loading.
const media = () => import('../transfer/input.js');
const dockerArchiveMedium = () => import('../transfer/docker-archive.js');
const ociLayoutMedium = () => import('../transfer/oci-layout.js');
const LIST_FILTERS = ['dangling', 'label', 'before', 'since', 'reference'];
const PRUNE_FILTERS = ['dangling', 'label', 'label!', 'until'];
const HEX64_RE = /^[0-9a-f]{64}$/;

const CONFLICT_CHILD = 1;
const CONFLICT_RUNNING = 2;
const CONFLICT_REFERENCE = 4;
const CONFLICT_STOPPED = 8;
const CONFLICT_HARD = CONFLICT_CHILD | CONFLICT_RUNNING;
const CONFLICT_SOFT = CONFLICT_REFERENCE | CONFLICT_STOPPED;

interface DeleteConflict {
  hard: boolean;
  /** A container uses the image (such conflicts are reported even when pruning quietly). */
  used: boolean;
  message: string;
}

/** `sha256:<hex>` for a full ID typed with or without the prefix; undefined otherwise. */
function fullId(name: string): Digest | undefined {
  if (HEX64_RE.test(name)) return `sha256:${name}`;
  if (isDigest(name)) return name;
  return undefined;
}

/** Docker's name for a missing image: the reference with `:latest`, or the digest. */
export function noSuchImage(name: string): NotFoundError {
  const id = fullId(name);
  if (id) return new NotFoundError(`No such image: ${id}`);
  try {
    return new NotFoundError(`No such image: ${familiarString(withDefaultTag(parseNormalizedNamed(name)))}`);
  } catch {
    return new NotFoundError(`No such image: ${name}`);
  }
}

/**
 * Parses a tag target as the docker CLI does before it calls the daemon; the message is the
 * CLI's (`Error parsing reference: "X" is not a valid repository/tag: …`).
 */
export function parseTagTarget(target: string): Reference {
  let ref: Reference;
  try {
    ref = parseNormalizedNamed(target);
  } catch (err) {
    throw new InvalidArgumentError(`Error parsing reference: ${JSON.stringify(target)} is not a valid repository/tag: ${(err as Error).message}`);
  }
  if (ref.digest !== undefined) throw new InvalidArgumentError('refusing to create a tag with a digest reference');
  return withDefaultTag(ref);
}

function configCreated(config: ImageConfig): number {
  return parseGoTime(config.created)?.unix ?? ZERO_TIME_UNIX;
}

function isTagged(ref: Reference): boolean {
  return ref.tag !== undefined && ref.digest === undefined;
}

function byName(a: Reference, b: Reference): number {
  const x = a.toString();
  const y = b.toString();
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Docker's isSingleReference: all references in one repository, with at most one tag. */
function isSingleReference(refs: readonly Reference[]): boolean {
  if (refs.length <= 1) return refs.length === 1;
  let single: Reference | undefined;
  const digestRepos = new Set<string>();
  for (const r of refs) {
    if (r.digest !== undefined) digestRepos.add(r.name);
    else if (single === undefined) single = r;
    else return false;
  }
  const name = (single ?? refs[0]!).name;
  return digestRepos.size === 1 && digestRepos.has(name);
}

/** History entries of two configs are the same (Docker's checkValidParent compares them). */
function sameHistory(a: unknown, b: unknown): boolean {
  const norm = (h: unknown) => {
    const o = (typeof h === 'object' && h !== null ? h : {}) as Record<string, unknown>;
    return JSON.stringify([parseGoTime(o.created)?.text ?? ZERO_TIME, o.author ?? '', o.created_by ?? '', o.comment ?? '', o.empty_layer === true]);
  };
  return norm(a) === norm(b);
}

export class ImageService {
  readonly #o: ImageServiceOptions;
  readonly #gcLock: string;

  constructor(options: ImageServiceOptions) {
    this.#o = options;
    this.#gcLock = path.join(options.imageRoot, GC_LOCK);
  }

  // ---- lookups --------------------------------------------------------------------------

  /**
   * Resolves a name as Docker's GetImage does: a full ID, a reference (`:latest` implied),
   * then an ID prefix. Undefined when nothing matches (an ambiguous prefix matches nothing).
   * A malformed reference throws InvalidArgumentError.
   */
  async find(name: string): Promise<ImageRecord | undefined> {
    const id = fullId(name);
    if (id) return this.#o.store.get(id);
    const ref = parseNormalizedNamed(name);
    const byRef = await this.#o.refs.get(ref);
    if (byRef) {
      const record = await this.#o.store.get(byRef);
      if (record) return record;
    }
    let prefixed: Digest | undefined;
    try {
      prefixed = await this.#o.store.resolveId(name);
    } catch (err) {
      if (err instanceof InvalidArgumentError) return undefined;
      throw err;
    }
    return prefixed ? this.#o.store.get(prefixed) : undefined;
  }

  async #get(name: string): Promise<ImageRecord> {
    const record = await this.find(name);
    if (!record) throw noSuchImage(name);
    return record;
  }

  async #users(id: Digest): Promise<ImageUser[]> {
    return (await this.#o.imageUsers?.(id)) ?? [];
  }

  /** Every stored layer by chainID (one pass over layerdb). */
  async #layerMap(): Promise<Map<Digest, LayerInfo>> {
    return new Map((await this.#o.layers.list()).map((l) => [l.chainId, l]));
  }

  #chainSize(config: ImageConfig, layers: ReadonlyMap<Digest, LayerInfo>): number {
    return chainIds(config.rootfs.diff_ids).reduce((sum, c) => sum + (layers.get(c)?.size ?? 0), 0);
  }

  /** Byte length of a layer's reassembled tar, from its tar-split record. */

  // ---- layer/image consistency ----------------------------------------------------------

  /**
   * Runs `fn` (which registers layers and creates images) holding the GC lock shared; if it
   * fails, whatever it registered and no image kept is collected before the error surfaces.
   */
  async #creating<T>(fn: () => Promise<T>): Promise<T> {
    const lock = await FileLock.acquire(this.#gcLock, { mode: 'shared' });
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      await lock.release();
      await this.#collect().catch(() => undefined);
      throw err;
    }
    await lock.release();
    return result;
  }

  /**
   * Runs `fn` (which registers layers and stores an image that keeps them) so that no
   * concurrent prune removes the new layers before the image holds them, and collects what
   * it registered if it fails (pull uses it).
   */
  withGcGuard<T>(fn: () => Promise<T>): Promise<T> {
    return this.#creating(fn);
  }

  /** Removes the layers no image keeps; returns their chainIDs, top first. */
  async #collect(): Promise<Digest[]> {
    const lock = await FileLock.acquire(this.#gcLock, { mode: 'exclusive' });
    try {
      const keep = new Set<Digest>();
      for (const img of await this.#o.store.list()) if (img.topLayer) keep.add(img.topLayer);
      return await this.#o.layers.gc(keep);
    } finally {
      await lock.release();
    }
  }

  // ---- load -----------------------------------------------------------------------------

  /** Checks an archive image before anything is registered (Docker checks some of this later). */
  #planLoad(img: SourceImage): { img: SourceImage; config: ImageConfig; tags: Reference[] } {
    let config: ImageConfig;
    try {
      config = JSON.parse(img.config.toString('utf8')) as ImageConfig;
    } catch (err) {
      throw new InvalidArchiveError(`invalid image config ${JSON.stringify(img.configPath)}: ${(err as Error).message}`);
    }
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      throw new InvalidArchiveError(`invalid image config ${JSON.stringify(img.configPath)}: not a JSON object`);
    }
    if (typeof config.rootfs !== 'object' || config.rootfs === null) throw new InvalidArchiveError('invalid image JSON, no RootFS key');
    const os = typeof config.os === 'string' && config.os !== '' ? config.os : 'linux';
    if (os !== 'linux') throw new InvalidArgumentError(`cannot load ${os} image on linux`);
    const diffIds = config.rootfs.diff_ids ?? [];
    const nonEmpty = (Array.isArray(config.history) ? config.history : []).filter((h) => !h?.empty_layer).length;
    if (nonEmpty > diffIds.length) throw new InvalidArgumentError('too many non-empty layers in History section');
    const tags = img.repoTags.map((t) => {
      let ref: Reference;
      try {
        ref = parseNormalizedNamed(t);
      } catch (err) {
        throw new InvalidArchiveError(`invalid tag ${JSON.stringify(t)}: ${(err as Error).message}`);
      }
      if (!isTagged(ref)) throw new InvalidArchiveError(`invalid tag ${JSON.stringify(t)}`);
      return ref;
    });
    return { img, config: { ...config, rootfs: { type: 'layers', diff_ids: diffIds } }, tags };
  }

  /**
   * Loads every image of a docker-archive or OCI layout (a path — tar, compressed tar or
   * directory — or a stream) as `docker load` does (facts §5.3): layers deduplicated by
   * chainID and never read when already stored, diffIDs verified, tags moved to the new
   * images. The whole archive is checked before anything is registered. If an image fails,
   * the images before it stay loaded and nothing of the failed one remains.
   */
  async load(input: string | Readable, options: LoadOptions = {}): Promise<LoadedImage[]> {
    const tmp = await this.#o.tempDir();
    try {
      const { openInput, readSource } = await media();
      const tree = await openInput(input, {
        tmpDir: tmp.path,
        onSpool: options.onProgress && ((bytes) => options.onProgress!({ kind: 'spool', bytes })),
      });
      const source = await readSource(tree);
      const plans = source.images.map((img) => this.#planLoad(img));
      return await this.#creating(async () => {
        const loaded: LoadedImage[] = [];
        for (const plan of plans) {
          const diffIds = plan.config.rootfs.diff_ids;
          await this.#o.layers.registerChain(
            plan.img.layers.map((l, i) => ({
              diffId: diffIds[i]!,
              open: async () => l.open(),
              ...(l.descriptor ? { descriptor: l.descriptor } : {}),
            })),
            {
              onProgress: options.onProgress && ((i, bytes) =>
                options.onProgress!({ kind: 'layer', diffId: diffIds[i]!, bytes, total: plan.img.layers[i]!.size })),
            },
          );
          const id = await this.#o.store.create(plan.img.config);
          const result: LoadedImage = { id, tags: [], replaced: [] };
          for (const ref of plan.tags) {
            const old = await this.#o.refs.get(ref);
            const tag = familiarString(ref);
            if (old !== undefined && old !== id) result.replaced.push({ tag, oldId: old });
            await this.#o.refs.addTag(ref, id, { force: true });
            result.tags.push(tag);
          }
          loaded.push(result);
          options.onImage?.(result);
        }
        await this.#linkParents(plans.map((p) => p.img), loaded);
        return loaded;
      });
    } finally {
      await tmp.remove();
    }
  }

  /** Records `Parent` links whose parent came in the same archive and whose history fits. */
  async #linkParents(images: readonly SourceImage[], loaded: readonly LoadedImage[]): Promise<void> {
    const ids = new Set(loaded.map((l) => l.id));
    for (const [i, img] of images.entries()) {
      const parent = img.parent;
      const id = loaded[i]!.id;
      if (!parent || parent === id || !ids.has(parent)) continue;
      const child = await this.#o.store.get(id);
      const base = await this.#o.store.get(parent);
      if (!child || !base) continue;
      const ch = Array.isArray(child.config.history) ? child.config.history : [];
      const bh = Array.isArray(base.config.history) ? base.config.history : [];
      const valid = (ch.length === 0 && bh.length === 0) ||
        (ch.length - bh.length === 1 && bh.every((h, k) => sameHistory(h, ch[k])));
      if (!valid) throw new InvalidArgumentError(`image ${parent} is not a valid parent for ${id}`);
      await this.#o.store.setParent(id, parent);
    }
  }

  // ---- save -----------------------------------------------------------------------------

  /**
   * What `docker save NAME...` puts in the archive (Docker's parseNames): a repository name
   * alone means every tag of it; `name:tag` that tag; an ID (or prefix) the image untagged.
   * Errors: `No such image: <name>`, `reference does not exist`, reference format errors.
   */
  async #saveTargets(names: readonly string[]): Promise<TargetImage[]> {
    const order: Digest[] = [];
    const tags = new Map<Digest, Reference[]>();
    const add = (id: Digest, ref?: Reference) => {
      if (!tags.has(id)) {
        tags.set(id, []);
        order.push(id);
      }
      const list = tags.get(id)!;
      if (ref && isTagged(ref) && !list.some((r) => r.toString() === ref.toString())) list.push(ref);
    };
    const search = async (name: string): Promise<Digest> => {
      let id: Digest | undefined;
      try {
        id = await this.#o.store.resolveId(name);
      } catch (err) {
        if (!(err instanceof InvalidArgumentError)) throw err;
      }
      if (!id) throw new NotFoundError(`No such image: ${name}`);
      return id;
    };
    for (const name of names) {
      const id = fullId(name);
      if (id) {
        add(id);
        continue;
      }
      const ref = parseNormalizedNamed(name);
      if (familiarName(ref) === 'sha256') {
        add(await search(name));
      } else if (ref.isNameOnly) {
        const all = (await this.#o.refs.list()).filter((e) => e.ref.name === ref.name);
        if (all.length === 0) add(await search(name));
        for (const e of all) add(e.id, e.ref);
      } else {
        const target = await this.#o.refs.get(ref);
        if (!target) throw new NotFoundError('reference does not exist');
        add(target, ref);
      }
    }
    const layers = await this.#layerMap();
    const out: TargetImage[] = [];
    for (const id of order) {
      const record = await this.#o.store.get(id);
      if (!record) throw new NotFoundError(`No such image: ${id}`);
      const chain = chainIds(record.config.rootfs.diff_ids);
      const targetLayers = [];
      for (const c of chain) if (!layers.has(c)) throw new NotFoundError(`layer does not exist: ${c}`);
      // Sized side by side (each means inflating the layer's tar-split record).
      const sizes = await Promise.all(chain.map((c) => this.#o.layers.tarSize(c)));
      for (const [i, c] of chain.entries()) {
        const size = sizes[i]!;
        targetLayers.push({
          diffId: record.config.rootfs.diff_ids[i]!,
          size,
          open: () => this.#o.layers.tarStream(c),
          writeAt: (fd: number, position: number, onBytes?: (bytes: number) => void) =>
            this.#o.layers.writeTarAt(c, { fd, position, size }, onBytes),
        });
      }
      const created = parseGoTime(record.config.created)?.unix;
      const target: TargetImage = { id, config: record.raw, tags: tags.get(id)!, layers: targetLayers };
      if (created !== undefined) target.created = created;
      if (record.parent) target.parent = record.parent;
      out.push(target);
    }
    return out;
  }

  /**
   * Writes `docker save NAME...` output — Docker ≥ 25's OCI-combined docker-archive — to
   * `output` (not ended here). Names are resolved first, so a bad name fails before any byte
   * is written. Given a file (`{ fd }`, opened for writing, empty), layers are written in
   * place by worker threads, two at a time; the file is not closed here.
   */
  async save(names: readonly string[], output: Writable | { fd: number }, options: SaveOptions = {}): Promise<void> {
    // The workers boot while the names resolve and every layer's tar is sized.
    this.#o.layers.warmTarWorkers();
    const targets = await this.#saveTargets(names);
    await (await dockerArchiveMedium()).write(targets, output, options);
  }

  /** Writes the images as an OCI image layout directory (for OCI tools; no Docker equivalent). */
  async saveOciLayout(names: readonly string[], dir: string, options: SaveOptions = {}): Promise<void> {
    await (await ociLayoutMedium()).writeDirectory(await this.#saveTargets(names), dir, options);
  }

  // ---- import ---------------------------------------------------------------------------

  /**
   * `docker import`: one layer from a root filesystem tar (plain or compressed), a config like
   * Docker's (keys sorted, `Imported from -` unless a message is given), optionally tagged.
   */
  async import(input: string | Readable, options: ImportOptions = {}): Promise<{ id: Digest }> {
    const { applyChanges } = await import('./changes.js');
    const containerConfig = toContainerConfig(applyChanges(emptyContainerConfig(), options.changes ?? []));
    let ref: Reference | undefined;
    if (options.repository) {
      ref = parseNormalizedNamed(options.repository);
      if (ref.digest !== undefined) throw new InvalidArgumentError('cannot import digest reference');
      ref = withDefaultTag(ref);
    }
    const platform = (await ociLayoutMedium()).hostPlatform();
    let variant: string | undefined;
    if (options.platform) {
      const [os, arch, v] = options.platform.toLowerCase().split('/');
      if (os !== 'linux') throw new InvalidArgumentError(`unsupported os ${os}`);
      if (arch) platform.architecture = arch;
      variant = v;
    }
    const message = options.message || 'Imported from -';
    const stream = typeof input === 'string' ? createReadStream(input) : input;
    return this.#creating(async () => {
      const layer = await this.#o.layers.register(stream, undefined, { onProgress: options.onProgress });
      const created = nowRfc3339Nano();
      const config: Record<string, unknown> = {
        architecture: platform.architecture,
        comment: message,
        config: containerConfig,
        container_config: emptyContainerConfig(),
        created,
        history: [{ created, comment: message }],
        os: platform.os,
        rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      };
      if (variant) config.variant = variant;
      const id = await this.#o.store.create(Buffer.from(goJson(sortedKeys(config))));
      if (ref) {
        await this.#o.refs.addTag(ref, id, { force: true });
        await this.#o.store.setLastUpdated(id);
      }
      return { id };
    });
  }

  /**
   * Creates an image from an optional new layer on top of `parentLayer` (commit, build):
   * the layer tar is registered, `makeConfig` turns its diffID (undefined when no layer) into
   * the config bytes, and the image is stored with `parentImage` recorded, `builtLocally`
   * as Docker marks commits, and `tag` added. Runs under the GC guard, so a concurrent prune
   * never takes the new layer before the image holds it.
   */
  async createImage(o: {
    layer?: Readable;
    parentLayer?: Digest;
    parentImage?: Digest;
    makeConfig: (diffId: Digest | undefined) => Buffer;
    tag?: string;
  }): Promise<Digest> {
    let ref: Reference | undefined;
    if (o.tag) {
      ref = parseNormalizedNamed(o.tag);
      if (ref.digest !== undefined) throw new InvalidArgumentError('refusing to create a tag with a digest reference');
      ref = withDefaultTag(ref);
    }
    return this.#creating(async () => {
      const layer = o.layer ? await this.#o.layers.register(o.layer, o.parentLayer) : undefined;
      const id = await this.#o.store.create(o.makeConfig(layer?.diffId));
      if (o.parentImage) await this.#o.store.setParent(id, o.parentImage);
      if (ref) {
        await this.#o.refs.addTag(ref, id, { force: true });
        await this.#o.store.setLastUpdated(id);
      }
      return id;
    });
  }

  // ---- list / inspect / history ---------------------------------------------------------

  /**
   * `docker images`: summaries newest first. Untagged images with children are left out
   * unless `all`; images without references show as `<none>:<none>`. Filters: dangling,
   * label, before, since, reference (errors: `Invalid filter '<key>'`, `No such image: …`).
   */
  async list(options: ListOptions = {}): Promise<ImageSummary[]> {
    return (await this.#summaries(options, false)).summaries;
  }

  async #summaries(options: ListOptions, extra: boolean): Promise<{ summaries: ImageSummary[]; layersSize: number }> {
    const filters = options.filters ?? {};
    validateFilters(filters, LIST_FILTERS);
    let danglingOnly = false;
    if (has(filters, 'dangling')) {
      const v = filters.dangling!;
      if (v.includes('true')) danglingOnly = true;
      else if (!v.includes('false')) throw invalidFilter('dangling', v);
    }
    const createdOf = async (name: string) => configCreated((await this.#get(name)).config);
    const before = has(filters, 'before') ? await createdOf(filters.before!.at(-1)!) : undefined;
    const since = has(filters, 'since') ? await createdOf(filters.since!.at(-1)!) : undefined;

    const records = await this.#o.store.list();
    const layers = await this.#layerMap();
    const children = new Map<Digest, number>();
    for (const r of records) if (r.parent) children.set(r.parent, (children.get(r.parent) ?? 0) + 1);
    const refsById = new Map<Digest, Reference[]>();
    for (const e of await this.#o.refs.list()) {
      if (!refsById.has(e.id)) refsById.set(e.id, []);
      refsById.get(e.id)!.push(e.ref);
    }

    const selected: Array<{ summary: ImageSummary; record: ImageRecord }> = [];
    for (const record of records) {
      const id = record.id;
      const kids = children.get(id) ?? 0;
      if (danglingOnly && kids > 0) continue;
      const created = configCreated(record.config);
      if (before !== undefined && created >= before) continue;
      if (since !== undefined && created <= since) continue;
      const labels = record.config.config ? toContainerConfig(record.config.config).Labels : null;
      if (has(filters, 'label') && (!record.config.config || !matchLabels(filters.label, labels))) continue;
      const size = this.#chainSize(record.config, layers);
      const summary: ImageSummary = {
        Containers: -1, Created: created, Id: id, Labels: labels, ParentId: record.parent ?? '',
        RepoDigests: [], RepoTags: [], SharedSize: -1, Size: size, VirtualSize: size,
      };
      for (const ref of refsById.get(id) ?? []) {
        if (has(filters, 'reference') && !filters.reference!.some((p) => familiarMatch(p, ref))) continue;
        if (ref.digest !== undefined) summary.RepoDigests.push(familiarString(ref));
        else summary.RepoTags.push(familiarString(ref));
      }
      if (summary.RepoDigests.length === 0 && summary.RepoTags.length === 0) {
        if (!options.all && kids > 0) continue;
        if (has(filters, 'dangling') && !danglingOnly) continue;
        if (has(filters, 'reference')) continue;
        summary.RepoDigests = ['<none>@<none>'];
        summary.RepoTags = ['<none>:<none>'];
      } else if (danglingOnly && summary.RepoTags.length > 0) {
        continue;
      }
      selected.push({ summary, record });
    }

    if (extra) {
      const refCount = new Map<Digest, number>();
      for (const { summary, record } of selected) {
        summary.Containers = (await this.#users(record.id)).length;
        for (const c of chainIds(record.config.rootfs.diff_ids)) refCount.set(c, (refCount.get(c) ?? 0) + 1);
      }
      for (const { summary, record } of selected) {
        summary.SharedSize = chainIds(record.config.rootfs.diff_ids)
          .filter((c) => (refCount.get(c) ?? 0) > 1)
          .reduce((sum, c) => sum + (layers.get(c)?.size ?? 0), 0);
      }
    }
    const summaries = selected.map((s) => s.summary).sort((a, b) => b.Created - a.Created || (a.Id < b.Id ? -1 : 1));
    let layersSize = 0;
    for (const l of layers.values()) layersSize += l.size;
    return { summaries, layersSize };
  }

  /** `docker image inspect` for one image. */
  async inspect(name: string): Promise<ImageInspect> {
    const record = await this.#get(name);
    const c = record.config;
    const layers = await this.#layerMap();
    const refs = (await this.#o.refs.references(record.id)).sort(byName);
    const size = this.#chainSize(c, layers);
    let data: Record<string, string> | null = null;
    if (record.topLayer) {
      const top = layers.get(record.topLayer);
      if (top) {
        const meta = await this.#o.driver.metadata(top.cacheId);
        data = Object.keys(meta).length > 0 ? sortedKeys(meta) : null;
      }
    }
    const text = (v: unknown) => (typeof v === 'string' ? v : '');
    // Built in steps so the keys come out in Docker's order with omitempty fields left out.
    const out = {
      Id: record.id,
      RepoTags: refs.filter(isTagged).map(familiarString),
      RepoDigests: refs.filter((r) => r.digest !== undefined).map(familiarString),
      Parent: record.parent ?? '',
      Comment: text(c.comment),
      Created: parseGoTime(c.created)?.text ?? ZERO_TIME,
      Container: text(c.container),
      ContainerConfig: toContainerConfig(c.container_config),
      DockerVersion: text(c.docker_version),
      Author: text(c.author),
      Config: c.config ? toContainerConfig(c.config) : null,
      Architecture: text(c.architecture),
    } as ImageInspect;
    if (text(c.variant)) out.Variant = text(c.variant);
    out.Os = text(c.os) || 'linux';
    if (text(c['os.version'])) out.OsVersion = text(c['os.version']);
    out.Size = size;
    out.VirtualSize = size;
    out.GraphDriver = { Data: data, Name: this.#o.driver.name };
    out.RootFS = { Type: text(c.rootfs.type) || 'layers' };
    if (c.rootfs.diff_ids.length > 0) out.RootFS.Layers = [...c.rootfs.diff_ids];
    out.Metadata = { LastTagTime: (record.lastUpdated && parseGoTime(record.lastUpdated.trim())?.text) || ZERO_TIME };
    return out;
  }

  /**
   * `docker history`: newest first; every entry `<missing>` except the image's own and its
   * recorded parents'; non-empty entries carry the size of their layer.
   */
  async history(name: string): Promise<HistoryItem[]> {
    const record = await this.#get(name);
    const layers = await this.#layerMap();
    const diffIds = record.config.rootfs.diff_ids;
    const chain = chainIds(diffIds);
    const items: HistoryItem[] = [];
    let n = 0;
    for (const h of Array.isArray(record.config.history) ? record.config.history : []) {
      let size = 0;
      if (!h?.empty_layer) {
        if (n >= diffIds.length) throw new InvalidArgumentError('too many non-empty layers in History section');
        const layer = layers.get(chain[n]!);
        if (!layer) throw new NotFoundError('layer does not exist');
        size = layer.size;
        n++;
      }
      items.unshift({
        Comment: typeof h?.comment === 'string' ? h.comment : '',
        Created: parseGoTime(h?.created)?.unix ?? ZERO_TIME_UNIX,
        CreatedBy: typeof h?.created_by === 'string' ? h.created_by : '',
        Id: '<missing>',
        Size: size,
        Tags: null,
      });
    }
    let current: ImageRecord | undefined = record;
    for (const item of items) {
      if (!current) break;
      item.Id = current.id;
      const tags = (await this.#o.refs.references(current.id)).filter(isTagged).map(familiarString);
      item.Tags = tags.length > 0 ? tags : null;
      current = current.parent ? await this.#o.store.get(current.parent) : undefined;
    }
    return items;
  }

  // ---- tag ------------------------------------------------------------------------------

  /** `docker tag SOURCE TARGET`: moves TARGET (`:latest` implied) to SOURCE's image. */
  async tag(source: string, target: string): Promise<void> {
    const record = await this.#get(source);
    const ref = parseTagTarget(target);
    await this.#o.refs.addTag(ref, record.id, { force: true });
    await this.#o.store.setLastUpdated(record.id);
  }

  // ---- remove ---------------------------------------------------------------------------

  async #conflict(id: Digest, mask: number): Promise<DeleteConflict | undefined> {
    if (mask & CONFLICT_CHILD && (await this.#o.store.children(id)).length > 0) {
      return { hard: true, used: false, message: 'image has dependent child images' };
    }
    const users = mask & (CONFLICT_RUNNING | CONFLICT_STOPPED) ? await this.#users(id) : [];
    const running = users.find((u) => u.running);
    if (mask & CONFLICT_RUNNING && running) {
      return { hard: true, used: true, message: `image is being used by running container ${shortId(running.id)}` };
    }
    if (mask & CONFLICT_REFERENCE && (await this.#o.refs.references(id)).length > 0) {
      return { hard: false, used: false, message: 'image is referenced in multiple repositories' };
    }
    const stopped = users.find((u) => !u.running);
    if (mask & CONFLICT_STOPPED && stopped) {
      return { hard: false, used: true, message: `image is being used by stopped container ${shortId(stopped.id)}` };
    }
    return undefined;
  }

  #conflictError(id: Digest, c: DeleteConflict): ConflictError {
    return new ConflictError(`conflict: unable to delete ${shortId(id)} (${c.hard ? 'cannot be forced' : 'must be forced'}) - ${c.message}`);
  }

  async #untag(ref: Reference, records: DeleteRecord[]): Promise<void> {
    const r = withDefaultTag(ref);
    try {
      await this.#o.refs.delete(r);
    } catch (err) {
      // Removing a reference that is already gone is not an error (idempotent, as Docker).
      if (!(err instanceof NotFoundError)) throw err;
    }
    records.push({ Untagged: familiarString(r) });
  }

  /** Deletes image `id` (and, when pruning, its untagged parents), recording what went. */
  async #deleteImage(id: Digest, records: DeleteRecord[], o: { force: boolean; prune: boolean; quiet: boolean }): Promise<void> {
    const conflict = await this.#conflict(id, CONFLICT_HARD | (o.force ? 0 : CONFLICT_SOFT));
    if (conflict) {
      if (o.quiet) {
        const dangling = (await this.#o.refs.references(id)).length === 0 && (await this.#o.store.children(id)).length === 0;
        if (!dangling || conflict.used) return;
      }
      throw this.#conflictError(id, conflict);
    }
    const record = await this.#o.store.get(id);
    for (const ref of (await this.#o.refs.references(id)).sort(byName)) await this.#untag(ref, records);
    await this.#o.store.delete(id);
    records.push({ Deleted: id });
    for (const layer of await this.#collect()) records.push({ Deleted: layer });
    if (o.prune && record?.parent) await this.#deleteImage(record.parent, records, { force: false, prune: true, quiet: true });
  }

  /**
   * `docker rmi NAME` (facts §8.4): a reference is untagged, and the image deleted only when
   * nothing else refers to it; an ID deletes the image (untagging it when its references are
   * a single tag in one repository, else only with `force`). Untagged parents go too unless
   * `noPrune`. Conflicts fail with Docker's messages.
   */
  async remove(name: string, options: RemoveOptions = {}): Promise<DeleteRecord[]> {
    const force = options.force ?? false;
    const prune = !options.noPrune;
    const record = await this.#get(name);
    const id = record.id;
    const records: DeleteRecord[] = [];
    let refs = (await this.#o.refs.references(id)).sort(byName);
    const byId = id.startsWith(name) || digestHex(id).startsWith(name);

    if (!byId) {
      if (!force && isSingleReference(refs)) {
        const user = (await this.#users(id))[0];
        if (user) {
          throw new ConflictError(
            `conflict: unable to remove repository reference ${JSON.stringify(name)} (must force) - container ${shortId(user.id)} is using its referenced image ${shortId(id)}`,
          );
        }
      }
      const ref = withDefaultTag(parseNormalizedNamed(name));
      await this.#untag(ref, records);
      refs = (await this.#o.refs.references(id)).sort(byName);
      if (ref.digest === undefined && !refs.some((r) => r.digest === undefined && r.name === ref.name)) {
        // The last tag of the repository went: its digest references go with it.
        for (const r of refs.filter((x) => x.digest !== undefined && x.name === ref.name)) await this.#untag(r, records);
        refs = refs.filter((x) => !(x.digest !== undefined && x.name === ref.name));
      }
      if (refs.length > 0) return records;
      await this.#deleteImage(id, records, { force, prune, quiet: true });
      return records;
    }

    if (isSingleReference(refs)) {
      const conflict = await this.#conflict(id, CONFLICT_HARD | (force ? 0 : CONFLICT_SOFT & ~CONFLICT_REFERENCE));
      if (conflict) throw this.#conflictError(id, conflict);
      for (const ref of refs) await this.#untag(ref, records);
    }
    await this.#deleteImage(id, records, { force, prune, quiet: false });
    return records;
  }

  // ---- prune ----------------------------------------------------------------------------

  /**
   * `docker image prune`: dangling images (no tags, no children), or with `all` every image
   * no container uses. Conflicting images are skipped silently. `SpaceReclaimed` is the size
   * of the layers removed. Filters: dangling, label, label!, until.
   */
  async prune(options: PruneOptions = {}): Promise<PruneReport> {
    const filters: Record<string, readonly string[]> = { ...(options.filters ?? {}) };
    if (options.all) filters.dangling = ['false'];
    validateFilters(filters, PRUNE_FILTERS);
    if ((filters.until?.length ?? 0) > 1) throw new InvalidArgumentError('more than one until filter specified');
    const until = has(filters, 'until') ? parseUntil(filters.until![0]!) : undefined;
    const danglingOnly = !(filters.dangling ?? []).some((v) => v === 'false' || v === '0');

    const layers = await this.#layerMap();
    const records = await this.#o.store.list();
    const children = new Map<Digest, number>();
    for (const r of records) if (r.parent) children.set(r.parent, (children.get(r.parent) ?? 0) + 1);
    const deleted: DeleteRecord[] = [];
    const candidates = records
      .filter((r) => !(danglingOnly && (children.get(r.id) ?? 0) > 0))
      .sort((a, b) => configCreated(b.config) - configCreated(a.config) || (a.id < b.id ? -1 : 1));
    for (const record of candidates) {
      const refs = await this.#o.refs.references(record.id);
      if (refs.length === 0 && (children.get(record.id) ?? 0) > 0) continue;
      if (until !== undefined && configCreated(record.config) > until) continue;
      if (record.config.config) {
        const labels = toContainerConfig(record.config.config).Labels;
        if (!matchLabels(filters.label, labels) || !matchNoLabels(filters['label!'], labels)) continue;
      }
      if (!(await this.#o.store.get(record.id))) continue;
      const targets = refs.length === 0 ? [digestHex(record.id)] : danglingOnly && refs.some(isTagged) ? [] : refs.sort(byName).map((r) => r.toString());
      for (const target of targets) {
        try {
          deleted.push(...(await this.remove(target)));
        } catch (err) {
          // An image in use, or gone meanwhile, is simply not pruned.
          if (!(err instanceof ConflictError) && !(err instanceof NotFoundError)) throw err;
        }
      }
    }
    let reclaimed = 0;
    for (const r of deleted) {
      if ('Deleted' in r) reclaimed += layers.get(r.Deleted as Digest)?.size ?? 0;
    }
    return { ImagesDeleted: deleted.length > 0 ? deleted : null, SpaceReclaimed: reclaimed };
  }

  // ---- disk usage -----------------------------------------------------------------------

  /** Images for `docker system df`: every listed image with its container count and shared size. */
  async diskUsage(): Promise<{ layersSize: number; images: ImageSummary[] }> {
    const { summaries, layersSize } = await this.#summaries({}, true);
    return { layersSize, images: summaries };
  }

  /** How many images are stored (`docker info`'s Images). */
  async count(): Promise<number> {
    return (await this.#o.store.list()).length;
  }
}

/** Docker's FamiliarMatch: the pattern against `name:tag`, else against the name alone. */
function familiarMatch(pattern: string, ref: Reference): boolean {
  try {
    return pathMatch(pattern, familiarString(ref)) || pathMatch(pattern, familiarName(ref));
  } catch {
    return false;
  }
}
