/**
 * The registry as an image sink: upload what the registry lacks, then PUT the manifest.
 *
 * For each layer (three at a time by default, as docker does), cheapest first:
 * 1. v2metadata (metadata.ts) knows a blob of this diffID in the target repository: `HEAD` it;
 *    if present, nothing is sent ("Layer already exists").
 * 2. It knows the blob in another repository of the same registry: ask the registry to mount
 *    it (`POST …/blobs/uploads/?mount=<digest>&from=<repo>`), which links it without a byte
 *    of payload. A registry that cannot mount answers with a fresh upload session instead,
 *    which step 3 then uses.
 * 3. Compress the layer tar (deterministic gzip, compress.ts) and upload it in chunks that
 *    survive broken connections (blob-upload.ts).
 * The config blob is HEAD-checked and uploaded the same way. The manifest (Docker v2 schema 2
 * unless the caller asks for OCI) is built from the layers' blob descriptors, so pushing the
 * same image twice gives the same manifest digest, and a layer the registry already holds
 * from a pull keeps the blob digest it was pulled as. Every layer's blob is recorded in
 * v2metadata afterwards, so the next push of it needs one HEAD.
 *
 * ```ts
 * const result = await pushImage(client, {
 *   reference: parseDockerRef('localhost:5000/app:1'),
 *   config: image.raw,
 *   layers: diffIds.map((diffId, i) => ({ diffId, open: () => layerStore.tarStream(chainIds[i]) })),
 *   metadata,
 * });
 * result.digest; // sha256 of the manifest: what `docker push` prints as "digest: …"
 * ```
 */
import type { Readable } from 'node:stream';

import { sha256, type Digest } from '../digest.js';
import { InvalidArgumentError } from '../errors.js';
import { parseDockerRef, parseNormalizedNamed, type Reference } from '../images/reference.js';
import { uploadBlob, type UploadOutcome } from './blob-upload.js';
import type { RegistryClient, Repository, UploadSession } from './client.js';
import { gzipLayer } from './compress.js';
import { buildManifest, gzipLayerMediaType, type ManifestFormat } from './manifest.js';
import { v2MetadataHmac, v2MetadataHmacKey, type DistributionMetadataStore, type V2Metadata } from './metadata.js';

export const DEFAULT_PUSH_CONCURRENCY = 3;
/** Known blob locations tried per layer before uploading (each costs a request). */
const MAX_CANDIDATES = 3;

export interface PushLayer {
  diffId: Digest;
  /** The layer's uncompressed tar, byte-exact; it must hash to `diffId`. */
  open(): Promise<Readable>;
}

export interface PushOptions {
  /** Where to push: a tagged reference (`localhost:5000/app:1`); `:latest` when none. */
  reference: Reference | string;
  /** Config bytes exactly as stored; its sha256 is the image ID. */
  config: Buffer;
  /** Bottom-up, one per `rootfs.diff_ids` entry of the config. */
  layers: readonly PushLayer[];
  /** Reads known blob locations to skip uploads, and records the pushed ones. */
  metadata?: DistributionMetadataStore;
  /** Manifest format (default `docker`: v2 schema 2). */
  format?: ManifestFormat;
  /** Layers in flight at once (default 3). */
  concurrency?: number;
  onProgress?: (event: PushProgress) => void;
  signal?: AbortSignal;
}

export type PushStatus = 'Preparing' | 'Waiting' | 'Pushing' | 'Pushed' | 'Layer already exists' | 'Mounted' | 'Retrying';

export interface PushProgress {
  /** The layer's diffID (the config's digest for the config blob). */
  id: Digest;
  status: PushStatus;
  /** Compressed bytes the registry acknowledged (Pushing). */
  bytes?: number;
  /** Repository a mounted blob came from (Mounted). */
  from?: string;
}

export type LayerAction = 'exists' | 'mounted' | 'uploaded';

export interface PushedLayer {
  diffId: Digest;
  digest: Digest;
  size: number;
  mediaType: string;
  action: LayerAction;
  /** Broken requests continued in the same session, and blob restarts in a new one. */
  resumes: number;
  restarts: number;
}

export interface PushResult {
  reference: Reference;
  repository: string;
  /** Manifest digest. */
  digest: Digest;
  manifest: Buffer;
  mediaType: string;
  configDigest: Digest;
  configAction: 'exists' | 'uploaded';
  layers: PushedLayer[];
}

/** Runs `fn` over `items` with at most `limit` in flight; the first failure aborts the rest. */
async function mapLimit<T, R>(items: readonly T[], limit: number, controller: AbortController, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (error) {
        if (failure === undefined) failure = { error };
        controller.abort(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  if (failure) throw failure.error;
  return results;
}

function sourceRepository(entry: V2Metadata): { domain: string; path: string } | undefined {
  try {
    const ref = parseNormalizedNamed(entry.SourceRepository);
    return { domain: ref.domain, path: ref.path };
  } catch {
    return undefined;
  }
}

class LayerPusher {
  readonly #repo: Repository;
  readonly #options: PushOptions;
  readonly #hmacKey: string;
  readonly #mediaType: string;
  readonly #signal: AbortSignal;

  constructor(repo: Repository, options: PushOptions, signal: AbortSignal) {
    this.#repo = repo;
    this.#options = options;
    this.#signal = signal;
    this.#hmacKey = v2MetadataHmacKey(repo.host.authorizer.credentials);
    this.#mediaType = gzipLayerMediaType(options.format ?? 'docker');
  }

  #progress(event: PushProgress): void {
    this.#options.onProgress?.(event);
  }

  async push(layer: PushLayer): Promise<PushedLayer> {
    const { diffId } = layer;
    const metadata = this.#options.metadata;
    const known = metadata ? (await metadata.v2Metadata(diffId)).reverse() : [];
    const here = known.filter((e) => {
      const src = sourceRepository(e);
      return src !== undefined && src.domain === this.#repo.host.domain;
    });

    // 1. Already in this repository?
    for (const entry of here.filter((e) => sourceRepository(e)!.path === this.#repo.path).slice(0, MAX_CANDIDATES)) {
      const size = await this.#repo.headBlob(entry.Digest, { signal: this.#signal });
      if (size !== undefined) {
        this.#progress({ id: diffId, status: 'Layer already exists' });
        return this.#done(layer, { digest: entry.Digest, size, action: 'exists', resumes: 0, restarts: 0 });
      }
      await metadata!.removeV2Metadata(diffId, entry);
    }

    // 2. Mountable from another repository of this registry? Entries pushed with the same
    // credentials first: those are the repositories these credentials can read.
    const others = here.filter((e) => sourceRepository(e)!.path !== this.#repo.path);
    others.sort((a, b) => Number(v2MetadataHmac(this.#hmacKey, b.Digest, b.SourceRepository) === b.HMAC) - Number(v2MetadataHmac(this.#hmacKey, a.Digest, a.SourceRepository) === a.HMAC));
    let session: UploadSession | undefined;
    for (const entry of others.slice(0, MAX_CANDIDATES)) {
      const from = sourceRepository(entry)!.path;
      const started = await this.#repo.startUpload({ mount: { digest: entry.Digest, from }, signal: this.#signal });
      if (started.mounted) {
        this.#progress({ id: diffId, status: 'Mounted', from });
        const size = (await this.#repo.headBlob(entry.Digest, { signal: this.#signal })) ?? 0;
        return this.#done(layer, { digest: entry.Digest, size, action: 'mounted', resumes: 0, restarts: 0 });
      }
      if (session) await this.#repo.cancelUpload(session);
      session = started.session;
    }

    // 3. Upload.
    this.#progress({ id: diffId, status: 'Pushing', bytes: 0 });
    const outcome: UploadOutcome = await uploadBlob(
      this.#repo,
      async () => gzipLayer(await layer.open(), diffId),
      {
        session,
        signal: this.#signal,
        onProgress: (bytes) => this.#progress({ id: diffId, status: 'Pushing', bytes }),
      },
    );
    this.#progress({ id: diffId, status: 'Pushed', bytes: outcome.size });
    return this.#done(layer, { digest: outcome.digest, size: outcome.size, action: 'uploaded', resumes: outcome.resumes, restarts: outcome.restarts });
  }

  async #done(layer: PushLayer, r: { digest: Digest; size: number; action: LayerAction; resumes: number; restarts: number }): Promise<PushedLayer> {
    return { diffId: layer.diffId, mediaType: this.#mediaType, ...r };
  }

  async record(layers: readonly PushedLayer[]): Promise<void> {
    const metadata = this.#options.metadata;
    if (!metadata) return;
    const repository = this.#repo.name;
    for (const l of layers) {
      await metadata.addV2Metadata(l.diffId, { Digest: l.digest, SourceRepository: repository, HMAC: v2MetadataHmac(this.#hmacKey, l.digest, repository) });
    }
  }
}

function checkConfig(config: Buffer, layers: readonly PushLayer[]): void {
  let parsed: { rootfs?: { diff_ids?: unknown } };
  try {
    parsed = JSON.parse(config.toString('utf8')) as typeof parsed;
  } catch (err) {
    throw new InvalidArgumentError(`invalid image config: ${(err as Error).message}`, { cause: err });
  }
  const diffIds = parsed?.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.length !== layers.length || diffIds.some((d, i) => d !== layers[i]!.diffId)) {
    throw new InvalidArgumentError('the layers to push do not match the config\'s rootfs.diff_ids');
  }
}

/**
 * Pushes an image to `reference`'s registry. Errors: RegistryError (401 unauthorized, 403
 * denied, …), DigestMismatchError when a local layer does not hash to its diffID (its upload
 * is abandoned, the manifest is not written), InvalidArgumentError for layers that do not
 * match the config.
 */
export async function pushImage(client: RegistryClient, options: PushOptions): Promise<PushResult> {
  const ref = typeof options.reference === 'string' ? parseDockerRef(options.reference) : options.reference;
  checkConfig(options.config, options.layers);
  const repo = await client.repository(ref, ['pull', 'push']);
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort(options.signal!.reason);
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  try {
    const pusher = new LayerPusher(repo, options, controller.signal);
    for (const l of options.layers) options.onProgress?.({ id: l.diffId, status: 'Preparing' });
    for (const l of options.layers) options.onProgress?.({ id: l.diffId, status: 'Waiting' });

    // One push per distinct diffID: an image may list the same layer twice.
    const distinct = [...new Map(options.layers.map((l) => [l.diffId, l])).values()];
    const pushed = await mapLimit(distinct, options.concurrency ?? DEFAULT_PUSH_CONCURRENCY, controller, (l) => pusher.push(l));
    const byDiffId = new Map(pushed.map((p) => [p.diffId, p]));
    const layers = options.layers.map((l) => byDiffId.get(l.diffId)!);

    const configDigest = sha256(options.config);
    let configAction: PushResult['configAction'] = 'exists';
    if ((await repo.headBlob(configDigest, { signal: controller.signal })) === undefined) {
      await uploadBlob(repo, () => [options.config], { expectedDigest: configDigest, signal: controller.signal });
      configAction = 'uploaded';
    }

    const manifest = buildManifest(options.format ?? 'docker', { digest: configDigest, size: options.config.length }, layers);
    const target = ref.tag ?? ref.digest ?? 'latest';
    if (ref.tag === undefined && ref.digest !== undefined && ref.digest !== manifest.digest) {
      throw new InvalidArgumentError(`cannot push to ${ref.toString()}: the manifest's digest is ${manifest.digest}`);
    }
    const reported = await repo.putManifest(target, manifest.mediaType, manifest.raw, controller.signal);
    if (reported !== undefined && reported !== manifest.digest) {
      throw new InvalidArgumentError(`registry stored the manifest as ${reported}, expected ${manifest.digest}`);
    }
    await pusher.record(pushed);
    return {
      reference: ref,
      repository: repo.name,
      digest: manifest.digest,
      manifest: manifest.raw,
      mediaType: manifest.mediaType,
      configDigest,
      configAction,
      layers,
    };
  } finally {
    options.signal?.removeEventListener('abort', onOuterAbort);
  }
}
