/**
 * The docker-archive medium (`docker save` / `docker load`).
 *
 * read: any archive with a `manifest.json` — Docker 20.10–24's layout (`<v1id>/layer.tar`,
 * `<imageID>.json`) and Docker ≥ 25's OCI-combined layout (`blobs/sha256/…`) alike — from a
 * FileTree, so members are byte ranges of the tar file and nothing is extracted.
 *
 * write: Docker ≥ 25's layout (facts §5.2): an OCI image layout (`oci-layout`, `index.json`,
 * `blobs/sha256/<manifest|config|layer>`) plus `manifest.json` and `repositories`. Docker
 * 20.10 loads it by following `manifest.json`, and OCI tools (skopeo, umoci) read it as an
 * OCI archive. Layer blobs are the uncompressed layer tars, each written once. The output is
 * reproducible: members are in path order, directory and metadata mtimes are the epoch and
 * blob mtimes the image's creation time. Docker's unreferenced legacy v1 JSON blobs are not
 * written.
 */
import type { Readable } from 'node:stream';

import { digestHex, isDigest, sha256, type Digest } from '../digest.js';
import { InvalidArchiveError } from '../errors.js';
import { familiarName, familiarString } from '../images/reference.js';
import { hasEntry, readTreeFile, resolveFile, type FileTree } from './file-tree.js';
import { compareGoKeys, goJson, sortedKeys } from './go-json.js';
import type { ImageSource, SourceImage, SourceLayer, TargetImage, TargetLayer, WriteProgress } from './image-source.js';
import { TarWriter, type TarOutput } from './tar-writer.js';

export const MANIFEST_FILE = 'manifest.json';
export const REPOSITORIES_FILE = 'repositories';

export const MEDIA_TYPE = {
  ociLayout: 'oci-layout',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
} as const;

/** `containerd`'s annotation for the full image name, which Docker writes and reads. */
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

/** The exact `oci-layout` file Docker writes (note the space). */
export const OCI_LAYOUT_CONTENT = '{"imageLayoutVersion": "1.0.0"}';

function invalidManifest(why: string): InvalidArchiveError {
  return new InvalidArchiveError(`invalid manifest.json: ${why}`, { entry: MANIFEST_FILE });
}

/** Parses JSON from an archive member with a message that names the member. */
export function parseJsonMember(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new InvalidArchiveError(`invalid ${what}: ${(err as Error).message}`, { entry: what, cause: err });
  }
}

/** The `rootfs.diff_ids` of a config, checked for shape only. */
export function configDiffIds(config: Buffer, what: string): Digest[] {
  const parsed = parseJsonMember(config, what) as { rootfs?: { diff_ids?: unknown } } | null;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArchiveError(`invalid ${what}: not a JSON object`, { entry: what });
  }
  const ids = parsed.rootfs?.diff_ids ?? [];
  if (!Array.isArray(ids) || !ids.every((d) => typeof d === 'string' && isDigest(d))) {
    throw new InvalidArchiveError(`invalid ${what}: rootfs.diff_ids must be a list of sha256 digests`, { entry: what });
  }
  return ids as Digest[];
}

function stringList(value: unknown, field: string, i: number): string[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw invalidManifest(`item ${i}: ${field} must be a list of strings`);
  }
  return value as string[];
}

function layerSource(value: unknown): SourceLayer['descriptor'] {
  if (typeof value !== 'object' || value === null) return undefined;
  const d = value as { mediaType?: unknown; digest?: unknown; size?: unknown; urls?: unknown };
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) return undefined;
  const out: NonNullable<SourceLayer['descriptor']> = {
    mediaType: typeof d.mediaType === 'string' ? d.mediaType : '',
    digest: d.digest,
    size: typeof d.size === 'number' && Number.isSafeInteger(d.size) && d.size >= 0 ? d.size : 0,
  };
  if (Array.isArray(d.urls) && d.urls.every((u) => typeof u === 'string')) out.urls = d.urls as string[];
  return out;
}

/**
 * Reads the images a docker-archive describes. Every path in `manifest.json` is resolved
 * (and every config read) before returning, so a broken archive fails here, before anything
 * is registered. Errors (Docker's wording where it has one):
 * `invalid archive: does not contain a manifest.json`,
 * `invalid manifest, manifest cannot be null (but can be [])`,
 * `invalid manifest, layers length mismatch: expected <manifest layers>, got <diff_ids>`,
 * and InvalidArchiveErrors naming the member for bad JSON, missing or escaping paths.
 */
export async function read(tree: FileTree): Promise<ImageSource> {
  if (!(await hasEntry(tree, MANIFEST_FILE))) {
    throw new InvalidArchiveError('invalid archive: does not contain a manifest.json');
  }
  const manifestFile = await resolveFile(tree, MANIFEST_FILE, 'manifest');
  const manifest = parseJsonMember(await readTreeFile(manifestFile), MANIFEST_FILE);
  if (manifest === null) throw new InvalidArchiveError('invalid manifest, manifest cannot be null (but can be [])');
  if (!Array.isArray(manifest)) throw invalidManifest('not a JSON array');

  const images: SourceImage[] = [];
  for (const [i, raw] of manifest.entries()) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalidManifest(`item ${i} is not an object`);
    const item = raw as Record<string, unknown>;
    if (typeof item.Config !== 'string') throw invalidManifest(`item ${i}: Config must be a string`);
    const repoTags = stringList(item.RepoTags, 'RepoTags', i);
    const layerPaths = stringList(item.Layers, 'Layers', i);
    const configFile = await resolveFile(tree, item.Config, 'config');
    const config = await readTreeFile(configFile);
    const diffIds = configDiffIds(config, `image config ${JSON.stringify(item.Config)}`);
    if (layerPaths.length !== diffIds.length) {
      throw new InvalidArchiveError(`invalid manifest, layers length mismatch: expected ${layerPaths.length}, got ${diffIds.length}`);
    }
    const sources = typeof item.LayerSources === 'object' && item.LayerSources !== null
      ? (item.LayerSources as Record<string, unknown>)
      : {};
    const layers: SourceLayer[] = [];
    for (const [k, p] of layerPaths.entries()) {
      const file = await resolveFile(tree, p, 'layer');
      const layer: SourceLayer = { path: p, size: file.size, open: file.open };
      const descriptor = layerSource(sources[diffIds[k]!]);
      if (descriptor) layer.descriptor = descriptor;
      layers.push(layer);
    }
    const image: SourceImage = { config, configPath: item.Config, repoTags, layers };
    if (typeof item.Parent === 'string' && isDigest(item.Parent)) image.parent = item.Parent;
    images.push(image);
  }
  return { format: 'docker-archive', images };
}

// ---------------------------------------------------------------------------------------------
// write

interface Blob {
  hex: string;
  mtime: number;
  data?: Buffer;
  layer?: TargetImage['layers'][number];
}

/** One `index.json` / OCI descriptor, fields in the order Go's ocispec types declare them. */
interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
}

/** OCI manifest bytes for an image, as Docker ≥ 25 marshals them. */
export function ociManifest(image: TargetImage): Buffer {
  return Buffer.from(goJson({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.manifest,
    config: { mediaType: MEDIA_TYPE.config, digest: image.id, size: image.config.length },
    layers: image.layers.map((l) => ({ mediaType: MEDIA_TYPE.layer, digest: l.diffId, size: l.size })),
  }));
}

/** `index.json` descriptors: one per tag (annotated with the full and the short name). */
export function indexDescriptors(image: TargetImage, manifest: Buffer): Descriptor[] {
  const base: Descriptor = { mediaType: MEDIA_TYPE.manifest, digest: sha256(manifest), size: manifest.length };
  // Docker adds an untagged image only when nothing else is in the index yet; every image
  // is listed here, or OCI readers could not reach the untagged ones.
  if (image.tags.length === 0) return [base];
  return image.tags.map((ref) => ({
    ...base,
    annotations: sortedKeys({ [ANNOTATION_IMAGE_NAME]: ref.toString(), [ANNOTATION_REF_NAME]: ref.tag ?? 'latest' }),
  }));
}

/** The parent links worth writing: only to images saved in the same archive. */
function savedParents(images: readonly TargetImage[]): Map<Digest, Digest> {
  const ids = new Set(images.map((i) => i.id));
  const out = new Map<Digest, Digest>();
  for (const img of images) if (img.parent && img.parent !== img.id && ids.has(img.parent)) out.set(img.id, img.parent);
  return out;
}

/**
 * Writes `images` as a Docker ≥ 25 docker-archive to `out` (not ended here). A layer whose
 * bytes fail verification aborts the write with the layer store's error; `out` then holds a
 * truncated archive, so callers writing a file write it to a temp name first.
 */
export async function write(images: readonly TargetImage[], out: TarOutput, options: { onProgress?: WriteProgress } = {}): Promise<void> {
  const blobs = new Map<string, Blob>();
  const addBlob = (blob: Blob) => {
    if (!blobs.has(blob.hex)) blobs.set(blob.hex, blob);
  };
  const manifest: unknown[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const index: Descriptor[] = [];
  const parents = savedParents(images);

  for (const img of images) {
    const created = img.created ?? 0;
    addBlob({ hex: digestHex(img.id), mtime: created, data: img.config });
    for (const layer of img.layers) addBlob({ hex: digestHex(layer.diffId), mtime: created, layer });
    const m = ociManifest(img);
    addBlob({ hex: digestHex(sha256(m)), mtime: 0, data: m });
    index.push(...indexDescriptors(img, m));

    const layerSources: Record<string, unknown> = {};
    for (const l of img.layers) layerSources[l.diffId] = { mediaType: MEDIA_TYPE.layer, size: l.size, digest: l.diffId };
    const item: Record<string, unknown> = {
      Config: `blobs/sha256/${digestHex(img.id)}`,
      RepoTags: img.tags.length > 0 ? img.tags.map((t) => familiarString(t)) : null,
      Layers: img.layers.map((l) => `blobs/sha256/${digestHex(l.diffId)}`),
    };
    const parent = parents.get(img.id);
    if (parent) item.Parent = parent;
    if (img.layers.length > 0) item.LayerSources = sortedKeys(layerSources);
    manifest.push(item);

    const top = img.layers.at(-1);
    for (const ref of img.tags) {
      if (!top) continue;
      (repositories[familiarName(ref)] ??= {})[ref.tag ?? 'latest'] = digestHex(top.diffId);
    }
  }

  const tar = new TarWriter(out);
  await tar.dir('blobs/', { mtime: 0 });
  await tar.dir('blobs/sha256/', { mtime: 0 });
  const ordered = [...blobs.values()].sort((a, b) => compareGoKeys(a.hex, b.hex));
  if (tar.positional && ordered.every((b) => !b.layer || b.layer.writeAt)) {
    await writeMembersInPlace(tar, (out as { fd: number }).fd, ordered, options);
  } else {
    await streamMembers(tar, ordered, options);
  }
  await tar.file('index.json', Buffer.from(goJson({ schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: index })), { mtime: 0 });
  await tar.file(MANIFEST_FILE, Buffer.from(goJson(manifest) + '\n'), { mtime: 0 });
  await tar.file('oci-layout', Buffer.from(OCI_LAYOUT_CONTENT), { mtime: 0 });
  if (Object.keys(repositories).length > 0) {
    const repos: Record<string, Record<string, string>> = {};
    for (const name of Object.keys(repositories).sort(compareGoKeys)) repos[name] = sortedKeys(repositories[name]!);
    await tar.file(REPOSITORIES_FILE, Buffer.from(goJson(repos) + '\n'), { mtime: 0 });
  }
  await tar.finish();
}

/** A layer's progress callback for the sink's `onProgress`, if there is one. */
function layerProgress(onProgress: WriteProgress | undefined, layer: TargetLayer): ((bytes: number) => void) | undefined {
  return onProgress && ((bytes) => onProgress({ diffId: layer.diffId, bytes, total: layer.size }));
}

/**
 * Layers written in place by their sources, this many at once (the layer store runs that
 * many workers; each holds a 4 MiB buffer and 32 MiB of readahead).
 */
const LAYERS_IN_PARALLEL = 3;

/**
 * The blobs of a file output: small ones written here, each layer's slot reserved and filled
 * by its source on a worker. Every started layer has settled (made its last write) before
 * this returns or throws, so the caller may close and delete the file.
 */
async function writeMembersInPlace(tar: TarWriter, fd: number, ordered: readonly Blob[], options: { onProgress?: WriteProgress }): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: unknown;
  try {
    for (const blob of ordered) {
      const name = `blobs/sha256/${blob.hex}`;
      if (blob.data) {
        await tar.file(name, blob.data, { mtime: blob.mtime });
        continue;
      }
      const layer = blob.layer!;
      const at = await tar.reserve(name, layer.size, { mtime: blob.mtime });
      while (running.size >= LAYERS_IN_PARALLEL) await Promise.race(running);
      // After a failure no new layer starts; the ones running finish (they cannot be stopped).
      if (failure !== undefined) break;
      const job: Promise<void> = layer.writeAt!(fd, at, layerProgress(options.onProgress, layer))
        .catch((err: unknown) => {
          failure ??= err;
        })
        .finally(() => running.delete(job));
      running.add(job);
    }
  } finally {
    // Also when a header write failed here: no worker may still write once we return.
    await Promise.all(running);
  }
  if (failure !== undefined) throw failure;
}

/** The blobs of a stream output, in order; the next layer is opened while one is written. */
async function streamMembers(tar: TarWriter, ordered: readonly Blob[], options: { onProgress?: WriteProgress }): Promise<void> {
  const layerBlobs = ordered.filter((b) => b.layer !== undefined);
  // The next layer is opened while the current one is written, so a source that rebuilds
  // layers ahead of time (the layer store does, on worker threads) keeps two cores busy.
  const opened = new Map<Blob, Promise<Readable>>();
  const openLayer = (blob: Blob | undefined): void => {
    if (blob && !opened.has(blob)) {
      const p = blob.layer!.open();
      p.catch(() => undefined);
      opened.set(blob, p);
    }
  };
  try {
    for (const blob of ordered) {
      const name = `blobs/sha256/${blob.hex}`;
      if (blob.data) {
        await tar.file(name, blob.data, { mtime: blob.mtime });
        continue;
      }
      const layer = blob.layer!;
      openLayer(blob);
      openLayer(layerBlobs[layerBlobs.indexOf(blob) + 1]);
      const input = await opened.get(blob)!;
      opened.delete(blob);
      try {
        await tar.stream(name, layer.size, input, {
          mtime: blob.mtime,
          onBytes: layerProgress(options.onProgress, layer),
        });
      } finally {
        input.destroy();
      }
    }
  } finally {
    // A failure mid-archive must not leave a prefetched layer running.
    for (const p of opened.values()) void p.then((s) => s.destroy(), () => undefined);
  }
}
