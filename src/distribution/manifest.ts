/**
 * Manifests as registries serve them: the two index kinds (OCI image index, Docker manifest
 * list) that point to one manifest per platform, and the two image manifest kinds (OCI image
 * manifest, Docker v2 schema 2) that point to a config and layer blobs. Docker's schema 1
 * (signed, no config blob) is refused: registries converted away from it years ago and it
 * cannot give a stable image ID.
 *
 * Building: strata pushes Docker v2 schema 2 by default, serialised as docker does
 * (three-space indent, field order schemaVersion, mediaType, config, layers; each descriptor
 * mediaType, size, digest), so the same blobs always give the same manifest digest.
 */
import { arch } from 'node:process';

import { isDigest, sha256, type Digest } from '../digest.js';
import { InvalidArgumentError, NotFoundError, NotSupportedError } from '../errors.js';

export const MediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;

/** What strata asks for on a manifest GET, preferred first. */
export const MANIFEST_ACCEPT: readonly string[] = [
  MediaTypes.ociIndex,
  MediaTypes.dockerManifestList,
  MediaTypes.ociManifest,
  MediaTypes.dockerManifest,
];

/** Manifests and indexes larger than this are refused (Docker's limit is also 4 MiB). */
export const MANIFEST_SIZE_LIMIT = 4 << 20;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
}

function bad(message: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid manifest: ${message}`);
}

function parseDescriptor(value: unknown, where: string): Descriptor {
  if (typeof value !== 'object' || value === null) throw bad(`${where} is not an object`);
  const d = value as Record<string, unknown>;
  if (typeof d.digest !== 'string') throw bad(`${where} has no digest`);
  if (!isDigest(d.digest)) {
    if (/^[a-z0-9]+:/.test(d.digest) && !d.digest.startsWith('sha256:')) {
      throw new NotSupportedError(`unsupported digest algorithm in ${where}: ${d.digest}`);
    }
    throw bad(`${where} has an invalid digest ${JSON.stringify(d.digest)}`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw bad(`${where} has an invalid size`);
  const out: Descriptor = { mediaType: typeof d.mediaType === 'string' ? d.mediaType : '', digest: d.digest, size: d.size };
  if (Array.isArray(d.urls) && d.urls.every((u) => typeof u === 'string')) out.urls = d.urls as string[];
  if (typeof d.annotations === 'object' && d.annotations !== null) out.annotations = d.annotations as Record<string, string>;
  if (typeof d.platform === 'object' && d.platform !== null) {
    const p = d.platform as Record<string, unknown>;
    if (typeof p.os === 'string' && typeof p.architecture === 'string') {
      out.platform = { os: p.os, architecture: p.architecture };
      if (typeof p.variant === 'string') out.platform.variant = p.variant;
      if (typeof p['os.version'] === 'string') out.platform['os.version'] = p['os.version'];
    }
  }
  return out;
}

/**
 * Parses manifest bytes. The kind comes from the body's `mediaType`, else from the response's
 * Content-Type, else from its shape (OCI manifests may omit `mediaType`).
 */
export function parseManifest(raw: Buffer, contentType?: string): ImageManifest | ImageIndex {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('not a JSON object');
  const ct = contentType?.split(';')[0]!.trim();
  const mediaType = typeof json.mediaType === 'string' && json.mediaType !== '' ? json.mediaType : ct ?? '';
  if (json.schemaVersion === 1 || mediaType === MediaTypes.dockerSchema1 || mediaType === MediaTypes.dockerSchema1Signed) {
    throw new NotSupportedError('Docker image manifest schema 1 is not supported; push the image again with a current client');
  }
  if (json.schemaVersion !== 2) throw bad(`unsupported schemaVersion ${JSON.stringify(json.schemaVersion)}`);
  const isIndex = mediaType === MediaTypes.ociIndex || mediaType === MediaTypes.dockerManifestList
    || ((mediaType === '' || mediaType === 'application/json') && Array.isArray(json.manifests));
  if (isIndex) {
    if (!Array.isArray(json.manifests)) throw bad('index without manifests');
    return {
      kind: 'index',
      mediaType: mediaType || MediaTypes.ociIndex,
      manifests: json.manifests.map((m, i) => parseDescriptor(m, `manifests[${i}]`)),
    };
  }
  const isManifest = mediaType === MediaTypes.ociManifest || mediaType === MediaTypes.dockerManifest
    || ((mediaType === '' || mediaType === 'application/json') && json.config !== undefined);
  if (!isManifest) throw new NotSupportedError(`unsupported manifest media type ${JSON.stringify(mediaType)}`);
  if (!Array.isArray(json.layers)) throw bad('manifest without layers');
  return {
    kind: 'manifest',
    mediaType: mediaType || MediaTypes.ociManifest,
    config: parseDescriptor(json.config, 'config'),
    layers: json.layers.map((l, i) => parseDescriptor(l, `layers[${i}]`)),
  };
}

const GO_ARCH: Readonly<Record<string, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** This machine's platform in OCI terms (linux/amd64 on x86-64). */
export function hostPlatform(): Platform {
  const architecture = GO_ARCH[arch] ?? arch;
  return architecture === 'arm64' ? { os: 'linux', architecture, variant: 'v8' } : { os: 'linux', architecture };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/**
 * The entry of an index to pull for `want`: same os and architecture; a variant must match
 * when both sides name one (arm64's `v8` is the default and may be left out). Attestation
 * manifests (platform unknown/unknown) never match. Error text as docker's.
 */
export function selectManifest(index: ImageIndex, want: Platform): Descriptor {
  const normVariant = (p: Platform) => (p.architecture === 'arm64' && (p.variant === undefined || p.variant === 'v8') ? undefined : p.variant);
  const candidates = index.manifests.filter((m) => {
    const p = m.platform;
    if (!p || p.os !== want.os || p.architecture !== want.architecture) return false;
    const a = normVariant(p);
    const b = normVariant(want);
    return a === undefined || b === undefined || a === b;
  });
  // An exact variant match beats an entry that names none.
  const exact = candidates.find((m) => normVariant(m.platform!) === normVariant(want));
  const chosen = exact ?? candidates[0];
  if (!chosen) throw new NotFoundError(`no matching manifest for ${formatPlatform(want)} in the manifest list entries`);
  return chosen;
}

export interface BuiltManifest {
  mediaType: string;
  raw: Buffer;
  digest: Digest;
}

export type ManifestFormat = 'docker' | 'oci';

/** Layer media type strata's own (gzip) uploads are declared with. */
export function gzipLayerMediaType(format: ManifestFormat): string {
  return format === 'oci' ? MediaTypes.ociLayerGzip : MediaTypes.dockerLayerGzip;
}

/**
 * Serialises an image manifest. Descriptors keep their own media types (a layer reused from
 * a pull keeps the one it was pulled with).
 */
export function buildManifest(
  format: ManifestFormat,
  config: { digest: Digest; size: number },
  layers: readonly { mediaType: string; digest: Digest; size: number; urls?: string[] }[],
): BuiltManifest {
  const mediaType = format === 'oci' ? MediaTypes.ociManifest : MediaTypes.dockerManifest;
  const configType = format === 'oci' ? MediaTypes.ociConfig : MediaTypes.dockerConfig;
  const body = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: configType, size: config.size, digest: config.digest },
    layers: layers.map((l) => ({ mediaType: l.mediaType, size: l.size, digest: l.digest, ...(l.urls ? { urls: l.urls } : {}) })),
  };
  const raw = Buffer.from(JSON.stringify(body, null, 3), 'utf8');
  return { mediaType, raw, digest: sha256(raw) };
}
