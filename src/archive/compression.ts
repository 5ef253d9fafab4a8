/**
 * Layer compression: detect by magic bytes and decompress as a stream, measuring the raw
 * (compressed) input on the way so callers get the blob's digest and size in the same pass.
 *
 * gzip uses node:zlib. zstd is decompressed only when this Node's zlib has it (Node ≥ 22.15 /
 * 23.8); bzip2 and xz are refused with NotSupportedError (Docker accepts them, strata does not
 * ship decoders for formats registries no longer produce).
 */
import { createHash, type Hash } from 'node:crypto';
import type { Readable, Transform } from 'node:stream';
import type { Digest } from '../digest.js';
import { InvalidArchiveError, NotSupportedError } from '../errors.js';
import { zlib } from '../sys/builtins.js';

export type Compression = 'none' | 'gzip' | 'zstd' | 'bzip2' | 'xz';

/** Identifies the compression of a stream from its first bytes (6 suffice). */
export function detectCompression(head: Uint8Array): Compression {
  const b = (i: number) => head[i];
  if (b(0) === 0x1f && b(1) === 0x8b) return 'gzip';
  if (b(0) === 0x28 && b(1) === 0xb5 && b(2) === 0x2f && b(3) === 0xfd) return 'zstd';
  if (b(0) === 0x42 && b(1) === 0x5a && b(2) === 0x68) return 'bzip2';
  if (b(0) === 0xfd && b(1) === 0x37 && b(2) === 0x7a && b(3) === 0x58 && b(4) === 0x5a && b(5) === 0x00) return 'xz';
  return 'none';
}

export interface DecompressedInput {
  compression: Compression;
  /** Uncompressed bytes. Iterate once. */
  chunks: AsyncIterable<Buffer>;
  /** Raw input bytes consumed so far (final once `chunks` is exhausted). */
  compressedSize(): number;
  /** sha256 of the raw input when it was compressed; available once `chunks` is exhausted. */
  compressedDigest(): Digest | undefined;
}

const OUTPUT_CHUNK = 256 * 1024;

function zstdFactory(): (() => Transform) | undefined {
  const z = zlib() as unknown as { createZstdDecompress?: (opts?: object) => Transform };
  return typeof z.createZstdDecompress === 'function' ? () => z.createZstdDecompress!({ chunkSize: OUTPUT_CHUNK }) : undefined;
}

/**
 * Peeks at `input`, picks a decompressor and returns the uncompressed chunks.
 *
 * @example
 * const src = await openDecompressed(createReadStream('layer.tar.gz'));
 * for await (const chunk of src.chunks) hash.update(chunk);
 * src.compressedDigest(); // sha256 of the .gz bytes
 */
export async function openDecompressed(input: Readable | AsyncIterable<Buffer>): Promise<DecompressedInput> {
  const it = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headLen = 0;
  let ended = false;
  while (headLen < 6) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    if (chunk.length === 0) continue;
    head.push(chunk);
    headLen += chunk.length;
  }
  const compression = detectCompression(head.length === 1 ? head[0]! : Buffer.concat(head));
  let rawSize = 0;
  let rawHash: Hash | undefined;
  let digest: Digest | undefined;

  async function* raw(): AsyncGenerator<Buffer> {
    try {
      for (const c of head) {
        rawSize += c.length;
        rawHash?.update(c);
        yield c;
      }
      if (!ended) {
        for (;;) {
          const r = await it.next();
          if (r.done) break;
          const c = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
          rawSize += c.length;
          rawHash?.update(c);
          yield c;
        }
        ended = true;
      }
      if (rawHash) digest = `sha256:${rawHash.digest('hex')}`;
    } finally {
      if (!ended) await it.return?.();
    }
  }

  let make: (() => Transform) | undefined;
  switch (compression) {
    case 'none':
      return { compression, chunks: raw(), compressedSize: () => rawSize, compressedDigest: () => undefined };
    case 'gzip':
      make = () => zlib().createGunzip({ chunkSize: OUTPUT_CHUNK });
      break;
    case 'zstd':
      make = zstdFactory();
      if (!make) {
        await it.return?.();
        throw new NotSupportedError(`zstd-compressed layers need Node.js with zstd in node:zlib (22.15 or later); this is ${process.version}`);
      }
      break;
    default:
      await it.return?.();
      throw new NotSupportedError(`${compression}-compressed layers are not supported; recompress the layer with gzip`);
  }
  rawHash = createHash('sha256');
  return {
    compression,
    chunks: inflate(raw(), make, compression),
    compressedSize: () => rawSize,
    compressedDigest: () => digest,
  };
}

async function* inflate(src: AsyncGenerator<Buffer>, make: () => Transform, kind: Compression): AsyncGenerator<Buffer> {
  const z = make();
  let feedError: unknown;
  const feed = (async () => {
    try {
      for await (const c of src) {
        if (z.destroyed) break;
        if (!z.write(c)) {
          if (z.destroyed) break;
          await new Promise<void>((resolve, reject) => {
            const onDrain = () => { z.off('close', onClose); resolve(); };
            const onClose = () => { z.off('drain', onDrain); reject(new Error('decompressor closed')); };
            z.once('drain', onDrain);
            z.once('close', onClose);
          });
        }
      }
      if (!z.destroyed) z.end();
    } catch (err) {
      feedError = err;
      z.destroy(err as Error);
    }
  })();
  try {
    for await (const out of z as AsyncIterable<Buffer>) yield out;
  } catch (err) {
    if (feedError) throw feedError;
    throw new InvalidArchiveError(`invalid ${kind} data: ${(err as Error).message}`, { cause: err });
  } finally {
    z.destroy();
    await feed;
    await src.return(undefined);
  }
  if (feedError) throw feedError;
}
