/**
 * Blob downloads that verify while streaming and survive broken connections.
 *
 * The stream hashes every byte it passes on; when the registry has sent `size` bytes it checks
 * the sha256 against the descriptor, and only then ends. A mismatch (a tampered or corrupted
 * blob) makes the stream fail with DigestMismatchError instead of ending, so a consumer that
 * commits only on a clean end (the layer store) keeps nothing. More bytes than the descriptor
 * declares fail the stream at once. Nothing is buffered beyond the chunk in hand: no temp copy
 * of the blob.
 *
 * When the connection breaks (or the server stops early), the download resumes with
 * `Range: bytes=<received>-`; a server that ignores Range and answers 200 has the bytes
 * already passed on skipped. Attempts are counted per stall: a transfer that keeps making
 * progress between failures is never given up on.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

import type { Digest } from '../digest.js';
import { DigestMismatchError } from '../errors.js';
import { backoffMs, sleep, type Repository } from './client.js';
import { RegistryError, isTransient, transportError } from './errors.js';

export interface BlobReadOptions {
  /** Bytes received so far and the blob's size, after each chunk. */
  onProgress?: (bytes: number, total: number) => void;
  signal?: AbortSignal;
  /** Called when a broken transfer is resumed (for progress displays and tests). */
  onResume?: (offset: number) => void;
}

function rangeStart(header: string | undefined): number | undefined {
  const m = header ? /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(header.trim()) : null;
  return m ? Number(m[1]) : undefined;
}

/**
 * A verified stream of one blob of `repo`. Nothing is requested until the stream is read.
 *
 * @example
 * const stream = openBlob(repo, { digest, size });
 * for await (const chunk of stream) hash.update(chunk); // throws DigestMismatchError on bad bytes
 */
export function openBlob(repo: Repository, descriptor: { digest: Digest; size: number }, options: BlobReadOptions = {}): Readable {
  return Readable.from(download(repo, descriptor, options), { objectMode: false, highWaterMark: 1 << 20 });
}

async function* download(repo: Repository, descriptor: { digest: Digest; size: number }, options: BlobReadOptions): AsyncGenerator<Buffer> {
  const { digest, size } = descriptor;
  const hash = createHash('sha256');
  let offset = 0;
  let failures = 0;
  let offsetAtLastFailure = -1;
  const what = `downloading ${digest} from ${repo.name}`;

  const retryOrThrow = async (err: unknown): Promise<void> => {
    if (offset !== offsetAtLastFailure) failures = 0;
    offsetAtLastFailure = offset;
    failures++;
    if (!isTransient(err) || failures >= repo.client.attempts || options.signal?.aborted) throw err;
    await sleep(backoffMs(failures));
    options.onResume?.(offset);
  };

  while (offset < size || size === 0) {
    let res;
    try {
      res = await repo.getBlob(digest, offset, options.signal);
    } catch (err) {
      await retryOrThrow(err);
      continue;
    }
    let skip = 0;
    if (offset > 0) {
      if (res.status === 206) {
        const start = rangeStart(res.header('content-range'));
        if (start === undefined || start > offset) {
          await res.discard();
          throw new RegistryError(`${what}: the registry answered a range request from ${offset} with ${res.header('content-range') ?? 'no Content-Range'}`, { status: 502 });
        }
        skip = offset - start;
      } else {
        skip = offset;
      }
    }
    try {
      for await (const raw of res.body as AsyncIterable<Buffer>) {
        let chunk = raw;
        if (skip > 0) {
          if (chunk.length <= skip) {
            skip -= chunk.length;
            continue;
          }
          chunk = chunk.subarray(skip);
          skip = 0;
        }
        if (offset + chunk.length > size) {
          res.body.destroy();
          throw new DigestMismatchError(`${what}: the registry sent more than the ${size} bytes the manifest declares`, digest, 'unknown');
        }
        hash.update(chunk);
        offset += chunk.length;
        options.onProgress?.(offset, size);
        yield chunk;
      }
    } catch (err) {
      if (err instanceof DigestMismatchError) throw err;
      await retryOrThrow(err);
      continue;
    }
    if (size === 0) break;
    if (offset < size) await retryOrThrow(transportError(what, Object.assign(new Error(`connection closed after ${offset} of ${size} bytes`), { code: 'ERR_STREAM_PREMATURE_CLOSE' })));
  }
  const actual: Digest = `sha256:${hash.digest('hex')}`;
  if (actual !== digest) {
    throw new DigestMismatchError(`filesystem layer verification failed for digest ${digest}: ${repo.name} served content with digest ${actual}`, digest, actual);
  }
}
