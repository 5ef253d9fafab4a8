/**
 * What an image source hands the engine, whatever its medium (docker-archive, OCI layout):
 * the exact config bytes, the tags the medium carries and one opener per layer. Nothing is
 * read from a layer until the engine asks for it, so layers the store already holds are
 * never read at all.
 */
import type { Readable } from 'node:stream';

import type { Digest } from '../digest.js';
import type { Reference } from '../images/reference.js';

export interface SourceLayer {
  /** Where the layer sits in the medium (a member path), for messages. */
  path: string;
  /** Stored (possibly compressed) bytes. */
  size: number;
  open(): Readable;
  /**
   * The distribution descriptor the medium records for this layer (docker-archive
   * `LayerSources`), which the layer store keeps as `descriptor.json`, as Docker does.
   */
  descriptor?: { mediaType: string; digest: Digest; size: number; urls?: string[] };
}

export interface SourceImage {
  /** Config bytes exactly as stored; the image ID is their sha256. */
  config: Buffer;
  /** Where the config sits in the medium, for messages. */
  configPath: string;
  /** Tags as the medium writes them (`busybox:latest`, `docker.io/library/busybox:latest`). */
  repoTags: string[];
  /** Bottom-up, one per `rootfs.diff_ids` entry. */
  layers: SourceLayer[];
  /** Parent image ID the medium records (docker-archive `Parent`). */
  parent?: Digest;
}

/** The medium a source was read from: Docker's `manifest.json` or an OCI `index.json`. */
export type SourceFormat = 'docker-archive' | 'oci-layout';

export interface ImageSource {
  format: SourceFormat;
  images: SourceImage[];
}

/** A stored image as a sink writes it (save). */
export interface TargetImage {
  id: Digest;
  config: Buffer;
  /** The config's `created`, in seconds (member mtimes); undefined when it has none. */
  created?: number;
  /** Tagged references to write with it (already normalised). */
  tags: Reference[];
  /** Bottom-up. */
  layers: TargetLayer[];
  /** Parent image ID, recorded only when the parent is saved alongside. */
  parent?: Digest;
}

export interface TargetLayer {
  diffId: Digest;
  /** Exact byte length of the uncompressed tar `open()` yields. */
  size: number;
  /** The layer tar; the stream fails at its end if the bytes do not hash to `diffId`. */
  open(): Promise<Readable>;
  /**
   * Optional fast path for a file output: writes the tar (exactly `size` bytes) into `fd` at
   * `position` off the main thread, verified against `diffId`. Settles only after its last
   * write, also when it fails.
   */
  writeAt?(fd: number, position: number, onBytes?: (bytes: number) => void): Promise<void>;
}

/** Progress of a sink: uncompressed bytes of one layer written so far. */
export type WriteProgress = (event: { diffId: Digest; bytes: number; total: number }) => void;
