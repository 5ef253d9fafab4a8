/**
 * Chunked blob uploads that resume after a broken connection.
 *
 * The blob is produced as a stream (a layer being gzipped) and cut into chunks of the client's
 * chunk size; each chunk is one `PATCH` with `Content-Range: <start>-<end>`, and the upload
 * ends with `PUT ?digest=<sha256 of everything sent>`. A blob that fits in one chunk is sent
 * as the body of that PUT instead (one request fewer).
 *
 * Only the chunk in flight is held in memory, which is what makes resuming cheap: when a
 * PATCH fails on the connection, the session's status is asked for (`GET` on the last upload
 * URL, whose `Range: 0-<last>` says how many bytes the registry holds), and sending continues
 * from that offset with the rest of the chunk in hand. Chunks the registry acknowledged are
 * never sent again.
 *
 * A registry may instead declare the session dead. The reference registry (distribution,
 * Debian's docker-registry) does so whenever a PATCH body was cut midway: it keeps the partial
 * bytes, and every later request with the previous upload state fails with
 * BLOB_UPLOAD_INVALID ("upload resumed at wrong offset"). Then, and when the completing PUT
 * is refused for a digest mismatch, the blob restarts in a fresh session from a freshly opened
 * source (layer gzip is deterministic, so the digest is the same). Other blobs of the push are
 * unaffected; only the blob whose session died is sent again.
 */
import { createHash } from 'node:crypto';

import type { Digest } from '../digest.js';
import { DigestMismatchError } from '../errors.js';
import { backoffMs, sleep, type Repository, type UploadSession } from './client.js';
import { RegistryError, isTransient } from './errors.js';

export interface UploadOptions {
  /** Session to use for the first attempt (a mount the registry answered with 202). */
  session?: UploadSession;
  /** The digest the bytes must have (known blobs such as a config); checked before the PUT. */
  expectedDigest?: Digest;
  /** Bytes the registry acknowledged so far. */
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
}

export interface UploadOutcome {
  digest: Digest;
  size: number;
  /** Times a broken request was continued in the same session. */
  resumes: number;
  /** Times the blob had to start over in a new session. */
  restarts: number;
}

/** The session is unusable; the blob starts over in a new one. */
class SessionLost extends Error {
  constructor(readonly reason: unknown) {
    super('upload session lost', { cause: reason });
  }
}

/** Cuts a byte stream into `size`-byte buffers (the last one shorter). */
async function* rechunk(source: AsyncIterable<Buffer> | Iterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let buf = Buffer.allocUnsafe(size);
  let fill = 0;
  for await (const piece of source) {
    let p = piece;
    while (p.length > 0) {
      const n = Math.min(size - fill, p.length);
      p.copy(buf, fill, 0, n);
      fill += n;
      p = p.subarray(n);
      if (fill === size) {
        yield buf;
        buf = Buffer.allocUnsafe(size);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}

/**
 * Uploads the bytes `open()` yields to `repo`, opening them again if the upload has to
 * restart. Resolves once the registry has committed the blob.
 */
export async function uploadBlob(
  repo: Repository,
  open: () => Promise<AsyncIterable<Buffer>> | AsyncIterable<Buffer> | Iterable<Buffer>,
  options: UploadOptions = {},
): Promise<UploadOutcome> {
  const chunkSize = repo.client.chunkSize;
  const attempts = repo.client.attempts;
  let session = options.session;
  let resumes = 0;
  let restarts = 0;

  for (;;) {
    try {
      if (!session) {
        const started = await repo.startUpload({ signal: options.signal });
        if (started.mounted) throw new Error('unreachable: a plain upload cannot be a mount');
        session = started.session;
      }
      const hash = createHash('sha256');
      let size = 0;
      let first = true;
      let last: Buffer | undefined;
      for await (const chunk of rechunk(await open(), chunkSize)) {
        hash.update(chunk);
        size += chunk.length;
        if (first && chunk.length < chunkSize) {
          last = chunk; // the whole blob fits one request: send it with the PUT
          break;
        }
        first = false;
        const sent = await sendChunk(repo, session, chunk, options.signal, () => resumes++);
        session = sent;
        options.onProgress?.(session.offset);
      }
      const digest: Digest = `sha256:${hash.digest('hex')}`;
      if (options.expectedDigest !== undefined && digest !== options.expectedDigest) {
        throw new DigestMismatchError(`blob ${options.expectedDigest} read back as ${digest}`, options.expectedDigest, digest);
      }
      await complete(repo, session, digest, size, last, options.signal);
      options.onProgress?.(size);
      return { digest, size, resumes, restarts };
    } catch (err) {
      if (!(err instanceof SessionLost)) {
        if (session) await repo.cancelUpload(session);
        throw err;
      }
      restarts++;
      if (restarts >= attempts || options.signal?.aborted) throw err.reason;
      session = undefined;
      await sleep(backoffMs(restarts));
    }
  }
}

/** Sends one chunk at `session.offset`, resuming in the same session after broken requests. */
async function sendChunk(
  repo: Repository,
  session: UploadSession,
  chunk: Buffer,
  signal: AbortSignal | undefined,
  onResume: () => void,
): Promise<UploadSession> {
  const start = session.offset;
  const end = start + chunk.length;
  let s = session;
  let failures = 0;
  while (s.offset < end) {
    try {
      s = await repo.patchUpload(s, chunk.subarray(s.offset - start), signal);
    } catch (err) {
      if (err instanceof RegistryError && (err.hasCode('BLOB_UPLOAD_INVALID') || err.hasCode('BLOB_UPLOAD_UNKNOWN') || err.status === 404 || err.status === 416)) {
        throw new SessionLost(err);
      }
      if (!isTransient(err) || ++failures >= repo.client.attempts || signal?.aborted) throw err;
      await sleep(backoffMs(failures));
      s = await status(repo, s, signal);
      onResume();
    }
    if (s.offset < start || s.offset > end) {
      throw new SessionLost(new RegistryError(`upload to ${repo.name} is at byte ${s.offset}, outside the chunk ${start}-${end - 1} being sent`, { status: 416 }));
    }
  }
  return s;
}

/** Where the session stands; a session the registry no longer accepts is lost. */
async function status(repo: Repository, session: UploadSession, signal: AbortSignal | undefined): Promise<UploadSession> {
  for (let failures = 1; ; failures++) {
    try {
      return await repo.uploadStatus(session, signal);
    } catch (err) {
      if (err instanceof RegistryError && !err.temporary) throw new SessionLost(err);
      if (!isTransient(err) || failures >= repo.client.attempts) throw err;
      await sleep(backoffMs(failures));
    }
  }
}

async function complete(
  repo: Repository,
  session: UploadSession,
  digest: Digest,
  size: number,
  body: Buffer | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  try {
    await repo.completeUpload(session, digest, body, signal);
  } catch (err) {
    if (err instanceof RegistryError && !err.temporary) {
      // DIGEST_INVALID (the registry assembled other bytes) or a dead session: start over.
      if (err.hasCode('DIGEST_INVALID') || err.hasCode('BLOB_UPLOAD_INVALID') || err.hasCode('BLOB_UPLOAD_UNKNOWN') || err.status === 404) {
        throw new SessionLost(err);
      }
      throw err;
    }
    if (!isTransient(err)) throw err;
    // The PUT may have landed before the connection broke.
    const stored = await repo.headBlob(digest, { signal }).catch(() => undefined);
    if (stored === size) return;
    throw new SessionLost(err);
  }
}
