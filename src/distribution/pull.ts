/**
 * The registry as an image source: resolve a reference to a manifest (through an index to the
 * platform's manifest when the tag names a multi-platform image), fetch and verify the config,
 * and hand back one opener per layer. Nothing of a layer is downloaded until its opener's
 * stream is read, so the engine can skip layers the layer store already holds (by diffID) and
 * download the rest while the layer store applies them:
 *
 * ```ts
 * const image = await fetchImage(client, parseDockerRef('localhost:5000/app:1'));
 * await layerStore.registerChain(image.layers.map((l) => ({ diffId: l.diffId, descriptor: l.descriptor, open: () => l.open() })), { concurrency: 3 });
 * await imageStore.create(image.config);
 * await metadata.recordPull(image.repository, image.layers);
 * ```
 *
 * Layer streams are the compressed blob bytes, verified against the blob digest as they pass
 * (blob-reader.ts); the layer store decompresses them and verifies the diffID.
 */
import type { Readable } from 'node:stream';

import { isDigest, sha256, type Digest } from '../digest.js';
import { DigestMismatchError, InvalidArgumentError } from '../errors.js';
import type { ImageConfig } from '../images/image-store.js';
import { parseDockerRef, type Reference } from '../images/reference.js';
import { openBlob, type BlobReadOptions } from './blob-reader.js';
import type { RegistryClient, Repository } from './client.js';
import { hostPlatform, parseManifest, selectManifest, type Descriptor, type ImageManifest, type Platform } from './manifest.js';

/** Configs larger than this are refused (a config is JSON of a few KiB). */
export const CONFIG_SIZE_LIMIT = 8 << 20;

export interface FetchOptions {
  /** Platform to pick from a multi-platform image (default: this host, linux/amd64 on x86-64). */
  platform?: Platform;
  signal?: AbortSignal;
}

export interface FetchedLayer {
  /** The blob as the manifest describes it (compressed digest and size, media type). */
  descriptor: Descriptor;
  /** `digest` of the descriptor, for metadata bookkeeping. */
  digest: Digest;
  /** The config's `rootfs.diff_ids` entry for this layer. */
  diffId: Digest;
  /** The blob's bytes, verified against `digest` while streaming (see blob-reader.ts). */
  open(options?: BlobReadOptions): Promise<Readable>;
}

export interface FetchedImage {
  /** The reference pulled, normalised (`docker.io/library/busybox:latest`). */
  reference: Reference;
  /** Fully qualified repository name, Docker's v2metadata SourceRepository. */
  repository: string;
  /** Digest of what the reference resolves to (an index for multi-platform images): the RepoDigest. */
  digest: Digest;
  /** The platform's image manifest: bytes, digest and media type. */
  manifest: { raw: Buffer; digest: Digest; mediaType: string };
  /** The index the manifest was picked from, when there was one. */
  index?: { raw: Buffer; digest: Digest; mediaType: string };
  /** Config bytes as served (the image ID is their sha256) and parsed. */
  config: Buffer;
  configDigest: Digest;
  parsedConfig: ImageConfig;
  layers: FetchedLayer[];
}

async function getVerifiedManifest(repo: Repository, reference: string, signal?: AbortSignal): Promise<{ raw: Buffer; digest: Digest; contentType?: string }> {
  const got = await repo.getManifest(reference, signal);
  const digest = sha256(got.raw);
  const claimed = isDigest(reference) ? reference : got.headerDigest;
  if (claimed !== undefined && isDigest(claimed) && claimed !== digest) {
    throw new DigestMismatchError(`manifest ${repo.name}@${claimed} has digest ${digest}`, claimed, digest);
  }
  return { raw: got.raw, digest, contentType: got.contentType };
}

function parseConfig(raw: Buffer, where: string): ImageConfig {
  let config: ImageConfig;
  try {
    config = JSON.parse(raw.toString('utf8')) as ImageConfig;
  } catch (err) {
    throw new InvalidArgumentError(`invalid image config ${where}: ${(err as Error).message}`, { cause: err });
  }
  const diffIds = config?.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === 'string' && isDigest(d))) {
    throw new InvalidArgumentError(`invalid image config ${where}: rootfs.diff_ids must list sha256 digests`);
  }
  return config;
}

/**
 * Resolves `ref` on its registry and returns the image's manifest, config and layer openers.
 * Errors: RegistryError (404 → `manifest for … not found`, 401 …), DigestMismatchError for a
 * manifest or config that does not match its digest, NotFoundError when an index has no entry
 * for the platform, NotSupportedError for schema 1 manifests.
 */
export async function fetchImage(client: RegistryClient, reference: Reference | string, options: FetchOptions = {}): Promise<FetchedImage> {
  const ref = typeof reference === 'string' ? parseDockerRef(reference) : reference;
  const repo = await client.repository(ref, ['pull']);
  const target = ref.digest ?? ref.tag ?? 'latest';
  const top = await getVerifiedManifest(repo, target, options.signal);
  let parsed = parseManifest(top.raw, top.contentType);
  let manifest = { raw: top.raw, digest: top.digest, mediaType: parsed.mediaType };
  let index: FetchedImage['index'];
  if (parsed.kind === 'index') {
    index = manifest;
    const entry = selectManifest(parsed, options.platform ?? hostPlatform());
    const m = await getVerifiedManifest(repo, entry.digest, options.signal);
    parsed = parseManifest(m.raw, m.contentType ?? entry.mediaType);
    if (parsed.kind !== 'manifest') throw new InvalidArgumentError(`index ${index.digest} points to another index for its platform`);
    manifest = { raw: m.raw, digest: m.digest, mediaType: parsed.mediaType };
  }
  const image = parsed as ImageManifest;

  if (image.config.size > CONFIG_SIZE_LIMIT) throw new InvalidArgumentError(`image config of ${image.config.size} bytes exceeds the ${CONFIG_SIZE_LIMIT}-byte limit`);
  const chunks: Buffer[] = [];
  for await (const c of openBlob(repo, image.config, { signal: options.signal })) chunks.push(c as Buffer);
  const config = Buffer.concat(chunks);
  const parsedConfig = parseConfig(config, image.config.digest);
  const diffIds = parsedConfig.rootfs.diff_ids;
  if (diffIds.length !== image.layers.length) {
    throw new InvalidArgumentError(`image ${ref.toString()}: manifest has ${image.layers.length} layers but the config lists ${diffIds.length} diff IDs`);
  }

  const layers = image.layers.map((descriptor, i): FetchedLayer => ({
    descriptor,
    digest: descriptor.digest,
    diffId: diffIds[i]!,
    open: async (o) => openBlob(repo, descriptor, { signal: options.signal, ...o }),
  }));
  return {
    reference: ref,
    repository: repo.name,
    digest: index?.digest ?? manifest.digest,
    manifest,
    index,
    config,
    configDigest: image.config.digest,
    parsedConfig,
    layers,
  };
}
