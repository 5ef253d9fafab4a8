/**
 * Layer tars in and out: the contract between the archive module and the layer store.
 * Implementation owned by the archive work; signatures here are fixed.
 */
import type { Readable, Writable } from 'node:stream';
import type { Digest } from '../digest.js';
import { assembleLayerImpl, assembleLayerSync, type AssembleOptions } from './assemble.js';

export { assembleLayerSync };

export type { AssembleOptions };
import { tarOverlayUpperImpl, tarTreeDiffImpl } from './diff.js';
import { unpackLayerImpl } from './unpack.js';

/** How deletions are represented in a layer directory (a driver declares which it needs). */
export type WhiteoutFormat =
  /** char device 0:0 for `.wh.x`, xattr `trusted.overlay.opaque=y` for `.wh..wh..opq`. */
  | 'overlay'
  /** deletions performed on a full copy of the parent (vfs, btrfs). */
  | 'delete';

export interface UnpackLimits {
  /** Largest total of uncompressed bytes accepted (default 64 GiB). */
  maxBytes?: number;
  /** Largest number of entries (default 10 million). */
  maxEntries?: number;
  /** Longest path (default 4096). */
  maxPathLength?: number;
  /** Largest PAX header payload (default 1 MiB). */
  maxPaxSize?: number;
}

export interface UnpackOptions {
  /** Directory the layer is applied into (driver.layerDir(id)); must exist. */
  target: string;
  whiteouts: WhiteoutFormat;
  /**
   * Where the tar-split record (Docker's `tar-split.json.gz` content: gzip of JSON lines) is
   * written. The stream is ended by unpackLayer.
   */
  tarSplit?: Writable;
  /** When given, a different computed diffID fails with DigestMismatchError after apply. */
  expectedDiffId?: Digest;
  limits?: UnpackLimits;
  /** Called with uncompressed bytes consumed so far (progress bars). */
  onProgress?: (bytes: number) => void;
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar stream exactly as received. */
  diffId: Digest;
  /** Docker's layer `size` for this apply mode (see facts §2.13). */
  size: number;
  /** sha256 of the raw input when it was compressed, else undefined. */
  compressedDigest?: Digest;
  /** Raw input bytes consumed. */
  compressedSize: number;
  /** Bytes of the uncompressed tar: what reassembling it from tar-split yields. */
  tarSize: number;
}

/**
 * Streams a layer tar (gzip, zstd-if-available or plain, auto-detected) into `target`,
 * computing the diffID and recording tar-split in the same pass. Every path is resolved
 * inside `target`: `..`, absolute entry names (Docker rebases them; strata refuses), symlink
 * escapes and hard links to outside are refused with InvalidArchiveError, and overlay control xattrs (`trusted.overlay.*`) or char
 * 0:0 devices from the tar are refused (an archive never steers the engine).
 */
export function unpackLayer(input: Readable, options: UnpackOptions): Promise<UnpackResult> {
  return unpackLayerImpl(input, options);
}

/**
 * Rebuilds a layer tar byte for byte from its tar-split record (gzip JSON lines) and the
 * files under `dir` (driver.layerDir of that layer). Fails with
 * `file integrity checksum failed for "<name>"` when a payload's CRC-64 differs.
 */
export function assembleLayer(tarSplit: Readable, dir: string, options?: AssembleOptions): Readable {
  return assembleLayerImpl(tarSplit, dir, options);
}

/**
 * Produces an OCI layer tar of the changes in `upper` (an overlay upper dir, whiteouts as
 * char 0:0 and opaque xattrs), headers as Docker writes them (facts §3.3/§3.6).
 */
export function tarOverlayUpper(upper: string): Readable {
  return tarOverlayUpperImpl(upper);
}

/**
 * Produces an OCI layer tar of the differences between a full tree `dir` and its parent
 * tree `parentDir` (undefined = empty), as Docker's naive diff does (whiteouts for deletions).
 */
export function tarTreeDiff(dir: string, parentDir: string | undefined): Readable {
  return tarTreeDiffImpl(dir, parentDir);
}
