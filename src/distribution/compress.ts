/**
 * Layer compression for push. The gzip stream must be the same bytes every time for the same
 * tar, or a re-push (or a push resumed from scratch) would produce a new blob digest and a new
 * manifest digest. node:zlib gives that when every parameter is pinned: level, window, memory
 * level and strategy fixed, and a gzip header with no name and mtime 0 (zlib writes exactly
 * that when no header is set). Output does not depend on how the input is split into chunks.
 * The bytes can differ between zlib builds, i.e. between Node releases; the digest is stable
 * for one strata installation.
 *
 * The uncompressed bytes are hashed on the way through, and the stream fails before its gzip
 * trailer when they do not hash to the layer's diffID, so a corrupted local layer can never be
 * completed as an upload.
 */
import { createHash } from 'node:crypto';
import { Readable, Transform, pipeline } from 'node:stream';
import * as zlib from 'node:zlib';

import type { Digest } from '../digest.js';
import { DigestMismatchError } from '../errors.js';

/** The gzip parameters of every layer strata pushes. Changing any of them changes digests. */
export const PUSH_GZIP_OPTIONS: Readonly<zlib.ZlibOptions> = Object.freeze({
  level: 6,
  windowBits: 15,
  memLevel: 8,
  strategy: zlib.constants.Z_DEFAULT_STRATEGY,
  chunkSize: 256 * 1024,
});

/**
 * gzip of an uncompressed layer tar, checked against `diffId` when given.
 *
 * @example
 * for await (const gz of gzipLayer(await layer.open(), layer.diffId)) upload(gz);
 */
export function gzipLayer(tar: Readable | AsyncIterable<Buffer>, diffId?: Digest): Readable {
  const hash = createHash('sha256');
  const check = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      if (diffId === undefined) return callback();
      const actual: Digest = `sha256:${hash.digest('hex')}`;
      callback(actual === diffId ? null : new DigestMismatchError(`layer ${diffId} read back as ${actual}; the local layer is corrupted`, diffId, actual));
    },
  });
  const input = tar instanceof Readable ? tar : Readable.from(tar, { objectMode: false });
  // The returned gzip stream carries any error of the chain; the callback only has to exist.
  return pipeline(input, check, zlib.createGzip(PUSH_GZIP_OPTIONS), () => undefined);
}
