/**
 * Image config store: `image/<driver>/imagedb/` in Docker's layout.
 *
 * ```
 * imagedb/                                   0700
 *   .lock                                    flock serialising writers (not Docker's)
 *   content/sha256/<imageIDhex>              0600  the config bytes exactly as received
 *   metadata/sha256/<imageIDhex>/            0700  only when there is metadata
 *     parent                                 0600  "sha256:<hex>", no newline
 *     lastUpdated                            0600  RFC 3339 with nanoseconds, local zone
 * ```
 *
 * An image ID is the sha256 of its config bytes; the bytes are never re-serialised, and every
 * read re-hashes them (`failed to verify: <id>`). Files are replaced atomically, so readers
 * take no lock; writers hold `.lock` exclusively. The store knows nothing of layers beyond the
 * `hasLayer(chainId)` callback it is opened with.
 */
import path from 'node:path';

import { chainId, digestHex, isDigest, isHex64, sha256, type Digest } from '../digest.js';
import { DigestMismatchError, InvalidArgumentError, NotFoundError, isErrno } from '../errors.js';
import { atomicWriteFile } from '../sys/atomic.js';
import { ensureDir, readOptional, readdirOptional } from '../sys/fs.js';
import { nowRfc3339NanoLocal } from '../sys/go-time.js';
import { readdir, rm, unlink } from '../sys/meta-fs.js';
import { WriteLock } from './store-lock.js';

/** The parsed image config (OCI/Docker). Raw bytes are kept separately and never re-serialised. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  author?: string;
  comment?: string;
  docker_version?: string;
  config?: Record<string, unknown>;
  container_config?: Record<string, unknown>;
  container?: string;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: Array<{ created?: string; created_by?: string; author?: string; comment?: string; empty_layer?: boolean }>;
  [key: string]: unknown;
}

export interface ImageRecord {
  id: Digest;
  raw: Buffer;
  config: ImageConfig;
  /** `metadata/sha256/<id>/parent`, when set. */
  parent?: Digest;
  lastUpdated?: string;
  /** ChainID of the image's top layer; undefined for an image without layers. */
  topLayer?: Digest;
}

export interface ImageStoreOptions {
  /** `<data-root>/image/<driver-name>`. */
  imageRoot: string;
  /** Whether the layer store holds `chainId` (create() refuses images whose layers are missing). */
  hasLayer: (chainId: Digest) => Promise<boolean>;
}

const IMAGEDB = 'imagedb';

/** Parses and checks config bytes the way Docker does before accepting an image. */
function parseConfig(raw: Buffer): ImageConfig {
  if (raw.length === 0) throw new InvalidArgumentError('invalid empty data');
  let config: unknown;
  try {
    config = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`invalid image JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new InvalidArgumentError('invalid image JSON: not an object');
  }
  const c = config as ImageConfig;
  if (typeof c.rootfs !== 'object' || c.rootfs === null) {
    throw new InvalidArgumentError('invalid image JSON, no RootFS key');
  }
  const diffIds = c.rootfs.diff_ids ?? [];
  if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === 'string' && isDigest(d))) {
    throw new InvalidArgumentError('invalid image JSON: rootfs.diff_ids must be a list of sha256 digests');
  }
  c.rootfs.diff_ids = diffIds;
  return c;
}

export class ImageStore {
  /** `<imageRoot>/imagedb`. */
  readonly root: string;
  readonly #hasLayer: (chainId: Digest) => Promise<boolean>;
  readonly #lock: WriteLock;

  private constructor(root: string, hasLayer: (chainId: Digest) => Promise<boolean>) {
    this.root = root;
    this.#hasLayer = hasLayer;
    this.#lock = new WriteLock(path.join(root, '.lock'));
  }

  /** Creates the layout if missing (all 0700, as Docker) and opens the store. */
  static async open(options: ImageStoreOptions): Promise<ImageStore> {
    const root = path.join(options.imageRoot, IMAGEDB);
    await ensureDir(path.join(root, 'content', 'sha256'), 0o700);
    await ensureDir(path.join(root, 'metadata', 'sha256'), 0o700);
    return new ImageStore(root, options.hasLayer);
  }

  #content(id: Digest): string {
    return path.join(this.root, 'content', 'sha256', digestHex(id));
  }

  #metadata(id: Digest, key?: string): string {
    const dir = path.join(this.root, 'metadata', 'sha256', digestHex(id));
    return key === undefined ? dir : path.join(dir, key);
  }

  /**
   * Stores raw config bytes (image ID = sha256 of them). Refuses empty data
   * (`invalid empty data`), configs whose non-empty history exceeds diff_ids
   * (`too many non-empty layers in History section`) and configs whose top chainID is
   * missing (`failed to get layer <chainID>: layer does not exist`); nothing is written then.
   * Idempotent: storing the same bytes again returns the same ID.
   */
  async create(raw: Buffer): Promise<Digest> {
    const config = parseConfig(raw);
    const nonEmpty = (config.history ?? []).filter((h) => !h?.empty_layer).length;
    if (nonEmpty > config.rootfs.diff_ids.length) {
      throw new InvalidArgumentError('too many non-empty layers in History section');
    }
    const top = chainId(config.rootfs.diff_ids);
    if (top !== undefined && !(await this.#hasLayer(top))) {
      throw new InvalidArgumentError(`failed to get layer ${top}: layer does not exist`);
    }
    const id = sha256(raw);
    await this.#lock.run(async () => {
      const existing = await readOptional(this.#content(id));
      if (existing !== undefined && sha256(existing) === id) return;
      await atomicWriteFile(this.#content(id), raw, { mode: 0o600 });
    });
    return id;
  }

  /**
   * The image `id`, or undefined when it is not stored. Fails with `failed to verify: <id>`
   * when the stored bytes no longer hash to it.
   */
  async get(id: Digest): Promise<ImageRecord | undefined> {
    if (!isDigest(id)) return undefined;
    const raw = await readOptional(this.#content(id));
    if (raw === undefined) return undefined;
    if (sha256(raw) !== id) throw new DigestMismatchError(`failed to verify: ${id}`, id, sha256(raw));
    const config = parseConfig(raw);
    const [parent, lastUpdated] = await Promise.all([
      readOptional(this.#metadata(id, 'parent')),
      readOptional(this.#metadata(id, 'lastUpdated')),
    ]);
    const record: ImageRecord = { id, raw, config };
    const p = parent?.toString('utf8').trim();
    if (p !== undefined && isDigest(p)) record.parent = p;
    if (lastUpdated !== undefined) record.lastUpdated = lastUpdated.toString('utf8');
    const top = chainId(config.rootfs.diff_ids);
    if (top !== undefined) record.topLayer = top;
    return record;
  }

  /** IDs of every stored config file, loadable or not. */
  async #ids(): Promise<Digest[]> {
    const names = await readdir(path.join(this.root, 'content', 'sha256'));
    return names.filter(isHex64).map((hex) => `sha256:${hex}` as Digest);
  }

  /**
   * Every usable image, sorted by ID. Like Docker's restore, images whose bytes fail
   * verification or whose top layer is missing are left out.
   */
  async list(): Promise<ImageRecord[]> {
    const out: ImageRecord[] = [];
    for (const id of (await this.#ids()).sort()) {
      let record: ImageRecord | undefined;
      try {
        record = await this.get(id);
      } catch (err) {
        if (err instanceof DigestMismatchError || err instanceof InvalidArgumentError) continue;
        throw err;
      }
      if (!record) continue;
      if (record.topLayer !== undefined && !(await this.#hasLayer(record.topLayer))) continue;
      out.push(record);
    }
    return out;
  }

  /**
   * The full ID for a full ID, a `sha256:`-prefixed ID or a hex prefix of one; undefined
   * when nothing matches. A prefix matching several images throws `ambiguous digest string`.
   */
  async resolveId(prefix: string): Promise<Digest | undefined> {
    const hex = prefix.startsWith('sha256:') ? prefix.slice(7) : prefix;
    if (hex === '' || !/^[0-9a-f]+$/.test(hex) || hex.length > 64) return undefined;
    if (hex.length === 64) {
      const id: Digest = `sha256:${hex}`;
      return (await readOptional(this.#content(id))) !== undefined ? id : undefined;
    }
    const matches = (await this.#ids()).filter((id) => digestHex(id).startsWith(hex));
    if (matches.length > 1) throw new InvalidArgumentError(`ambiguous digest string: ${prefix}`);
    return matches[0];
  }

  /**
   * Deletes image `id`: its metadata dir, then its config, then the `parent` links of its
   * children (which become parentless). Fails with `unrecognized image ID <id>` when absent.
   */
  async delete(id: Digest): Promise<void> {
    await this.#lock.run(async () => {
      if ((await readOptional(this.#content(id))) === undefined) {
        throw new NotFoundError(`unrecognized image ID ${id}`);
      }
      const children = await this.children(id);
      await rm(this.#metadata(id), { recursive: true, force: true });
      await unlink(this.#content(id));
      for (const child of children) {
        await unlink(this.#metadata(child, 'parent')).catch((err: unknown) => {
          if (!isErrno(err, 'ENOENT')) throw err;
        });
      }
    });
  }

  /** Records `parent` as the parent image of `id` (both must be stored). */
  async setParent(id: Digest, parent: Digest): Promise<void> {
    await this.#lock.run(async () => {
      if ((await readOptional(this.#content(id))) === undefined) throw new NotFoundError(`unrecognized image ID ${id}`);
      if ((await readOptional(this.#content(parent))) === undefined) {
        throw new InvalidArgumentError(`unknown parent image ID ${parent}`);
      }
      await this.#setMetadata(id, 'parent', parent);
    });
  }

  /** Stamps `lastUpdated` with the current time, as `docker tag` does. */
  async setLastUpdated(id: Digest): Promise<void> {
    await this.#lock.run(async () => {
      if ((await readOptional(this.#content(id))) === undefined) throw new NotFoundError(`unrecognized image ID ${id}`);
      await this.#setMetadata(id, 'lastUpdated', nowRfc3339NanoLocal());
    });
  }

  async #setMetadata(id: Digest, key: string, value: string): Promise<void> {
    await ensureDir(this.#metadata(id), 0o700);
    await atomicWriteFile(this.#metadata(id, key), value, { mode: 0o600 });
  }

  /**
   * Deletes `.tmp-*` files that crashed writers left in `content/sha256/` and the metadata
   * dirs (Docker never does). Safe against live writers: they write only while holding the
   * store lock, which this holds too.
   */
  async recover(): Promise<void> {
    await this.#lock.run(async () => {
      const dirs = [path.join(this.root, 'content', 'sha256')];
      const meta = path.join(this.root, 'metadata', 'sha256');
      for (const hex of (await readdirOptional(meta)).filter(isHex64)) dirs.push(path.join(meta, hex));
      for (const dir of dirs) {
        for (const name of await readdirOptional(dir)) {
          if (name.startsWith('.tmp-')) await rm(path.join(dir, name), { force: true });
        }
      }
    });
  }

  /** IDs of the images whose `parent` is `id`, sorted. */
  async children(id: Digest): Promise<Digest[]> {
    const names = await readdirOptional(path.join(this.root, 'metadata', 'sha256'));
    const out: Digest[] = [];
    for (const hex of names.filter(isHex64).sort()) {
      const child = `sha256:${hex}` as Digest;
      const parent = await readOptional(this.#metadata(child, 'parent'));
      if (parent !== undefined && parent.toString('utf8').trim() === id) out.push(child);
    }
    return out;
  }
}
