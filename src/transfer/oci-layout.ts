/**
 * The OCI image layout medium (image-spec `image-layout.md`): `oci-layout`, `index.json` and
 * content-addressed `blobs/<alg>/<hex>`, as a directory or a tar of one.
 *
 * read: follows `index.json` to image manifests (through nested indexes, picking this host's
 * platform), checks each manifest's and config's bytes against their digests and hands the
 * layers over as openers (gzip/zstd layers are decompressed by the layer store). Tags come
 * from the `io.containerd.image.name` annotation (Docker's and containerd's), else from an
 * `org.opencontainers.image.ref.name` that is a full reference; other images load untagged.
 *
 * writeDirectory: the same layout as a directory (uncompressed layers), for OCI tools that
 * want one (`skopeo copy oci:<dir> …`, `umoci unpack --image <dir>:<tag>`).
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';

import { digestHex, sha256, type Digest } from '../digest.js';
import { DigestMismatchError, InvalidArchiveError } from '../errors.js';
import { parseNormalizedNamed } from '../images/reference.js';
import {
  ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, MEDIA_TYPE, OCI_LAYOUT_CONTENT, configDiffIds, indexDescriptors,
  ociManifest, parseJsonMember,
} from './docker-archive.js';
import { hasEntry, readTreeFile, resolveFile, type FileTree, type TreeFile } from './file-tree.js';
import { goJson } from './go-json.js';
import type { ImageSource, SourceImage, TargetImage, WriteProgress } from './image-source.js';

export const INDEX_FILE = 'index.json';

const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);
const MANIFEST_TYPES = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
]);

/** How deep nested indexes may go before the layout is considered hostile. */
const MAX_INDEX_DEPTH = 8;

const HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha512: 128 };

interface OciDescriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** `blobs/<alg>/<hex>` for a descriptor digest, refusing digests that are not plain hex. */
function blobPath(digest: unknown): string {
  if (typeof digest !== 'string') throw new InvalidArchiveError('invalid OCI layout: descriptor without a digest');
  const i = digest.indexOf(':');
  const alg = digest.slice(0, i);
  const hex = digest.slice(i + 1);
  const len = HEX_LENGTH[alg];
  if (i < 0 || len === undefined || hex.length !== len || !/^[0-9a-f]+$/.test(hex)) {
    throw new InvalidArchiveError(`invalid OCI layout: unsupported digest ${JSON.stringify(digest)}`);
  }
  return `blobs/${alg}/${hex}`;
}

function verify(bytes: Buffer, digest: string, what: string): void {
  const actual = digest.startsWith('sha512:')
    ? `sha512:${createHash('sha512').update(bytes).digest('hex')}`
    : sha256(bytes);
  if (actual !== digest) throw new DigestMismatchError(`invalid OCI layout: ${what} ${digest} has digest ${actual}`, digest, actual);
}

async function blob(tree: FileTree, desc: OciDescriptor, what: string): Promise<TreeFile> {
  return resolveFile(tree, blobPath(desc.digest), what);
}

async function jsonBlob(tree: FileTree, desc: OciDescriptor, what: string): Promise<{ bytes: Buffer; value: Record<string, unknown> }> {
  const bytes = await readTreeFile(await blob(tree, desc, what));
  verify(bytes, desc.digest, what);
  const value = parseJsonMember(bytes, `${what} ${desc.digest}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArchiveError(`invalid ${what} ${desc.digest}: not a JSON object`);
  }
  return { bytes, value: value as Record<string, unknown> };
}

function descriptors(value: unknown, what: string): OciDescriptor[] {
  if (!Array.isArray(value) || !value.every((d) => typeof d === 'object' && d !== null)) {
    throw new InvalidArchiveError(`invalid ${what}: "manifests" must be a list of descriptors`);
  }
  return value as OciDescriptor[];
}

/** Node's architecture names in OCI/Go spelling. */
export function hostPlatform(): { os: string; architecture: string } {
  const arch: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}

/** The tag an index entry carries, as a user would type it; undefined when it has none. */
function tagOf(desc: OciDescriptor): string | undefined {
  const candidates = [desc.annotations?.[ANNOTATION_IMAGE_NAME], desc.annotations?.[ANNOTATION_REF_NAME]];
  for (const c of candidates) {
    if (typeof c !== 'string' || !/[/:]/.test(c)) continue;
    try {
      const ref = parseNormalizedNamed(c);
      if (ref.tag !== undefined && ref.digest === undefined) return c;
    } catch {
      // not a reference (a bare tag like "v1"): no name to give the image
    }
  }
  return undefined;
}

/**
 * Reads the images an OCI layout's `index.json` leads to. Errors are InvalidArchiveErrors
 * (missing or unparsable blobs, unsupported digests, no manifest for this platform) or
 * DigestMismatchErrors (a manifest or config whose bytes do not match its digest).
 */
export async function read(tree: FileTree): Promise<ImageSource> {
  if (!(await hasEntry(tree, INDEX_FILE))) {
    throw new InvalidArchiveError('invalid OCI layout: does not contain an index.json');
  }
  const index = parseJsonMember(await readTreeFile(await resolveFile(tree, INDEX_FILE, 'index')), INDEX_FILE) as Record<string, unknown> | null;
  if (typeof index !== 'object' || index === null) throw new InvalidArchiveError('invalid index.json: not a JSON object');

  // One image per manifest digest; its tags gathered from every index entry naming it.
  const byManifest = new Map<string, SourceImage>();
  const platform = hostPlatform();

  const visit = async (desc: OciDescriptor, tag: string | undefined, depth: number): Promise<void> => {
    const mediaType = desc.mediaType ?? '';
    if (INDEX_TYPES.has(mediaType)) {
      if (depth >= MAX_INDEX_DEPTH) throw new InvalidArchiveError('invalid OCI layout: indexes nested too deeply');
      const { value } = await jsonBlob(tree, desc, 'image index');
      const children = descriptors(value.manifests, `image index ${desc.digest}`);
      const match = children.find((c) => MANIFEST_TYPES.has(c.mediaType ?? '') &&
        c.platform?.os === platform.os && c.platform?.architecture === platform.architecture);
      const only = children.length === 1 ? children[0] : undefined;
      const pick = match ?? (children.every((c) => !c.platform) ? only : undefined);
      if (!pick) throw new InvalidArchiveError(`invalid OCI layout: no manifest for ${platform.os}/${platform.architecture} in image index ${desc.digest}`);
      await visit(pick, tag, depth + 1);
      return;
    }
    if (!MANIFEST_TYPES.has(mediaType)) {
      throw new InvalidArchiveError(`invalid OCI layout: unsupported media type ${JSON.stringify(mediaType)} for ${desc.digest}`);
    }
    let image = byManifest.get(desc.digest);
    if (!image) {
      const { value: manifest } = await jsonBlob(tree, desc, 'manifest');
      const configDesc = manifest.config as OciDescriptor | undefined;
      if (typeof configDesc !== 'object' || configDesc === null) throw new InvalidArchiveError(`invalid manifest ${desc.digest}: no config`);
      const config = await readTreeFile(await blob(tree, configDesc, 'config'));
      verify(config, configDesc.digest, 'config');
      const diffIds = configDiffIds(config, `image config ${configDesc.digest}`);
      const layerDescs = Array.isArray(manifest.layers) ? (manifest.layers as OciDescriptor[]) : [];
      if (layerDescs.length !== diffIds.length) {
        throw new InvalidArchiveError(`invalid manifest, layers length mismatch: expected ${layerDescs.length}, got ${diffIds.length}`);
      }
      const layers = [];
      for (const l of layerDescs) {
        const file = await blob(tree, l, 'layer');
        layers.push({ path: file.name, size: file.size, open: file.open });
      }
      image = { config, configPath: blobPath(configDesc.digest), repoTags: [], layers };
      byManifest.set(desc.digest, image);
    }
    if (tag !== undefined && !image.repoTags.includes(tag)) image.repoTags.push(tag);
  };

  for (const desc of descriptors(index.manifests ?? [], INDEX_FILE)) await visit(desc, tagOf(desc), 0);
  return { format: 'oci-layout', images: [...byManifest.values()] };
}

// ---------------------------------------------------------------------------------------------
// write

async function writeBlob(dir: string, hex: string, data: Buffer): Promise<void> {
  await writeFile(path.join(dir, 'blobs', 'sha256', hex), data, { mode: 0o644 });
}

/**
 * Writes `images` as an OCI image layout into `dir` (created if missing; existing blobs of
 * the same name are replaced). Layer blobs are written to a temp name, checked against their
 * diffID and renamed, so a failed write never leaves a blob with the wrong bytes.
 */
export async function writeDirectory(images: readonly TargetImage[], dir: string, options: { onProgress?: WriteProgress } = {}): Promise<void> {
  const blobs = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true, mode: 0o755 });
  const written = new Set<string>();
  const index = [];
  for (const img of images) {
    for (const layer of img.layers) {
      const hex = digestHex(layer.diffId);
      if (written.has(hex)) continue;
      const tmp = path.join(blobs, `.tmp-${hex}`);
      const hash = createHash('sha256');
      let bytes = 0;
      const meter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          bytes += chunk.length;
          options.onProgress?.({ diffId: layer.diffId, bytes, total: layer.size });
          cb(null, chunk);
        },
      });
      try {
        await pipeline(await layer.open(), meter, createWriteStream(tmp, { mode: 0o644 }));
        const actual: Digest = `sha256:${hash.digest('hex')}`;
        if (actual !== layer.diffId) throw new DigestMismatchError(`layer ${layer.diffId} produced ${actual}`, layer.diffId, actual);
        await rename(tmp, path.join(blobs, hex));
      } finally {
        await rm(tmp, { force: true });
      }
      written.add(hex);
    }
    await writeBlob(dir, digestHex(img.id), img.config);
    const manifest = ociManifest(img);
    await writeBlob(dir, digestHex(sha256(manifest)), manifest);
    index.push(...indexDescriptors(img, manifest));
  }
  await writeFile(path.join(dir, 'oci-layout'), OCI_LAYOUT_CONTENT, { mode: 0o644 });
  await writeFile(path.join(dir, INDEX_FILE), goJson({ schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: index }), { mode: 0o644 });
}

