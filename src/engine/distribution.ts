/**
 * pull, push, login, logout: the distribution client (distribution/) composed with the
 * layer, image and reference stores.
 *
 * Pull: manifest and config fetched and verified; layers already stored are skipped by
 * chainID; the others stream registry → digest check → decompress → apply → diffID check,
 * three at a time, with no temp copy of a blob. Each missing layer is claimed with a lock
 * (`layerdb/tmp/pull-<chainID>.lock`) first, so two strata processes pulling the same image
 * download and unpack each layer once: the second waits, then finds the layers stored.
 * Docker's `distribution/` metadata is written afterwards (v2metadata-by-diffid,
 * diffid-by-digest), which lets a later push of the same layers HEAD instead of upload and
 * reproduce the manifest digest the image was pulled with.
 *
 * Credentials: a docker-style `config.json` in `$STRATA_CONFIG` (default `~/.strata`).
 * Registries on loopback are spoken to over plain HTTP as Docker allows;
 * `$STRATA_INSECURE_REGISTRIES` (comma-separated `host[:port]` or CIDRs) adds others.
 */
import { homedir } from 'node:os';
import path from 'node:path';

import { chainIds, digestHex, type Digest } from '../digest.js';
import { NotFoundError } from '../errors.js';
import type { ImageStore } from '../images/image-store.js';
import { parseDockerRef, parseNormalizedNamed, withDefaultTag, familiarString, type Reference } from '../images/reference.js';
import type { ReferenceStore } from '../images/reference-store.js';
import type { LayerStore } from '../layers/layer-store.js';
import { FileLock } from '../sys/lock.js';
import type { ImageService } from './images.js';

export interface DistributionServiceOptions {
  images: ImageService;
  imageStore: ImageStore;
  refs: ReferenceStore;
  layers: LayerStore;
  imageRoot: string;
}

export type LayerPullStatus = 'Already exists' | 'Pulling fs layer' | 'Downloading' | 'Pull complete';

export interface PullProgress {
  /** Short blob digest, as docker's progress lines name layers. */
  id: string;
  status: LayerPullStatus;
  /** Bytes received and applied so far (Downloading); `total` when known. */
  current?: number;
  total?: number;
}

export interface PullResult {
  reference: Reference;
  /** The RepoDigest: what the reference resolved to. */
  digest: Digest;
  id: Digest;
  /** Docker's last line: newer image downloaded, or up to date. */
  upToDate: boolean;
  layers: Array<{ id: string; status: 'Already exists' | 'Pull complete' }>;
}

/** Where strata keeps registry credentials (docker's config.json format). */
export function credentialsFile(): string {
  return path.join(process.env.STRATA_CONFIG ?? path.join(homedir(), '.strata'), 'config.json');
}

function insecureRegistries(): string[] {
  return (process.env.STRATA_INSECURE_REGISTRIES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

export class DistributionService {
  readonly #o: DistributionServiceOptions;

  constructor(o: DistributionServiceOptions) {
    this.#o = o;
  }

  async #client() {
    const { RegistryClient } = await import('../distribution/client.js');
    return new RegistryClient({ credentialsFile: credentialsFile(), insecureRegistries: insecureRegistries() });
  }

  async #metadata() {
    const { DistributionMetadataStore } = await import('../distribution/metadata.js');
    return new DistributionMetadataStore(this.#o.imageRoot);
  }

  /** `docker pull NAME[:TAG|@DIGEST]`. */
  async pull(name: string, o: { onProgress?: (p: PullProgress) => void; signal?: AbortSignal } = {}): Promise<PullResult> {
    const { fetchImage } = await import('../distribution/pull.js');
    const ref = withDefaultTag(parseDockerRef(name));
    const client = await this.#client();
    const image = await fetchImage(client, ref, { signal: o.signal });
    const chain = chainIds(image.layers.map((l) => l.diffId));
    const short = (d: Digest) => digestHex(d).slice(0, 12);
    const locks: FileLock[] = [];
    const statuses = new Map<string, 'Already exists' | 'Pull complete'>();
    const id = await this.#o.images.withGcGuard(async () => {
      try {
        // Claim every missing layer (in a fixed order, so two pullers cannot deadlock), then
        // look again: a concurrent puller may have stored them while we waited.
        const missing = [];
        for (let i = 0; i < chain.length; i++) if (!(await this.#o.layers.has(chain[i]!))) missing.push(i);
        for (const i of [...missing].sort((a, b) => (chain[a]! < chain[b]! ? -1 : 1))) {
          locks.push(await FileLock.acquire(path.join(this.#o.layers.root, 'tmp', `pull-${digestHex(chain[i]!)}.lock`), { mode: 'exclusive', wait: true }));
        }
        for (let i = 0; i < chain.length; i++) {
          const present = await this.#o.layers.has(chain[i]!);
          statuses.set(image.layers[i]!.digest, present ? 'Already exists' : 'Pull complete');
          o.onProgress?.({ id: short(image.layers[i]!.digest), status: present ? 'Already exists' : 'Pulling fs layer' });
        }
        await this.#o.layers.registerChain(
          image.layers.map((l) => ({
            diffId: l.diffId,
            descriptor: { mediaType: l.descriptor.mediaType, digest: l.descriptor.digest, size: l.descriptor.size },
            open: () => l.open(),
          })),
          {
            concurrency: 3,
            onProgress: o.onProgress && ((i: number, bytes: number) => {
              const l = image.layers[i]!;
              o.onProgress!({ id: short(l.digest), status: 'Downloading', current: bytes });
            }),
          },
        );
        for (const l of image.layers) if (statuses.get(l.digest) === 'Pull complete') o.onProgress?.({ id: short(l.digest), status: 'Pull complete' });
        return await this.#o.imageStore.create(image.config);
      } finally {
        for (const lock of locks) await lock.release();
      }
    });
    const before = ref.digest ? undefined : await this.#o.refs.get(ref);
    if (ref.digest === undefined) await this.#o.refs.addTag(ref, id, { force: true });
    const withDigest = parseNormalizedNamed(`${ref.name}@${image.digest}`);
    await this.#o.refs.addDigest(withDigest, id, { force: true });
    await (await this.#metadata()).recordPull(image.repository, image.layers);
    return {
      reference: ref,
      digest: image.digest,
      id,
      upToDate: before === id && [...statuses.values()].every((s) => s === 'Already exists'),
      layers: image.layers.map((l) => ({ id: short(l.digest), status: statuses.get(l.digest)! })),
    };
  }

  /** `docker push NAME[:TAG]`. */
  async push(name: string, o: { onProgress?: (p: import('../distribution/push.js').PushProgress) => void; signal?: AbortSignal } = {}) {
    const { pushImage } = await import('../distribution/push.js');
    const ref = parseNormalizedNamed(name);
    const tagged = withDefaultTag(ref);
    const record = await this.#o.images.find(familiarString(tagged));
    if (!record) throw new NotFoundError(`An image does not exist locally with the tag: ${familiarString(ref.isNameOnly ? ref : tagged).replace(/:latest$/, ref.tag ? ':latest' : '')}`);
    const chain = chainIds(record.config.rootfs.diff_ids);
    const result = await pushImage(await this.#client(), {
      reference: tagged,
      config: record.raw,
      layers: record.config.rootfs.diff_ids.map((diffId, i) => ({ diffId, open: () => this.#o.layers.tarStream(chain[i]!) })),
      metadata: await this.#metadata(),
      concurrency: 3,
      onProgress: o.onProgress,
      signal: o.signal,
    });
    await this.#o.refs.addDigest(parseNormalizedNamed(`${tagged.name}@${result.digest}`), record.id, { force: true });
    return result;
  }

  async login(server: string | undefined, username: string, password: string) {
    const { login } = await import('../distribution/login.js');
    return login(await this.#client(), server, { username, password }, { credentialsFile: credentialsFile() });
  }

  async logout(server: string | undefined) {
    const { logout } = await import('../distribution/login.js');
    return logout(server, { credentialsFile: credentialsFile() });
  }
}
