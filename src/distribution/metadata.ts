/**
 * Docker's distribution metadata: what links a layer (diffID, uncompressed) to the compressed
 * blobs registries know it as. A pull records where each layer came from; a push reads it to
 * skip uploads (the blob is already in that repository: HEAD) or to mount the blob from
 * another repository of the same registry instead of sending it again.
 *
 * ```
 * <imageRoot>/distribution/                                       0700
 *   .lock                                  flock serialising writers (not Docker's)
 *   diffid-by-digest/sha256/<blob hex>     0644  "sha256:<diffID hex>", no newline
 *   v2metadata-by-diffid/sha256/<diffID>   0644  [{"Digest":…,"SourceRepository":…,"HMAC":…}]
 * ```
 * (namespace dirs 0755). Files are replaced atomically, so readers take no lock. A
 * v2metadata list keeps the newest entry last, holds no duplicates and at most 50 entries,
 * as Docker keeps it. `SourceRepository` is the fully qualified repository
 * (`docker.io/library/busybox`). Pull entries have an empty HMAC; push entries carry an
 * HMAC-SHA256 over digest + repository keyed by a digest of the credentials used, so a later
 * push can prefer blobs it knows those credentials could reach.
 */
import { createHmac } from 'node:crypto';
import path from 'node:path';

import { digestHex, isDigest, sha256, type Digest } from '../digest.js';
import { atomicWriteFile } from '../sys/atomic.js';
import { ensureDir, readOptional } from '../sys/fs.js';
import { FileLock } from '../sys/lock.js';
import type { Credentials } from './auth.js';

export interface V2Metadata {
  Digest: Digest;
  SourceRepository: string;
  HMAC: string;
}

const MAX_METADATA = 50;
const DIFFID_BY_DIGEST = 'diffid-by-digest';
const V2METADATA_BY_DIFFID = 'v2metadata-by-diffid';

/** The HMAC key docker derives from the credentials of a push (anonymous pushes included). */
export function v2MetadataHmacKey(credentials: Credentials | undefined): string {
  const input: Record<string, string> = {};
  if (credentials?.username) input.username = credentials.username;
  if (credentials?.password) input.password = credentials.password;
  return sha256(JSON.stringify(input));
}

export function v2MetadataHmac(key: string, digest: Digest, repository: string): string {
  return createHmac('sha256', key).update(digest).update(repository).digest('hex');
}

function parseList(raw: Buffer | undefined): V2Metadata[] {
  if (raw === undefined) return [];
  try {
    const value = JSON.parse(raw.toString('utf8')) as unknown;
    if (!Array.isArray(value)) return [];
    return value.filter(
      (e): e is V2Metadata => typeof e === 'object' && e !== null && typeof e.Digest === 'string' && isDigest(e.Digest)
        && typeof e.SourceRepository === 'string' && typeof (e.HMAC ?? '') === 'string',
    ).map((e) => ({ Digest: e.Digest, SourceRepository: e.SourceRepository, HMAC: e.HMAC ?? '' }));
  } catch {
    // A damaged file only costs a re-upload; Docker treats it the same way.
    return [];
  }
}

function same(a: V2Metadata, b: V2Metadata): boolean {
  return a.Digest === b.Digest && a.SourceRepository === b.SourceRepository && a.HMAC === b.HMAC;
}

export class DistributionMetadataStore {
  /** `<imageRoot>/distribution`. */
  readonly root: string;

  /** @param imageRoot `<data-root>/image/<driver>` */
  constructor(imageRoot: string) {
    this.root = path.join(imageRoot, 'distribution');
  }

  #file(namespace: string, digest: Digest): string {
    return path.join(this.root, namespace, 'sha256', digestHex(digest));
  }

  async #write(namespace: string, digest: Digest, data: string): Promise<void> {
    await ensureDir(this.root, 0o700);
    await ensureDir(path.join(this.root, namespace, 'sha256'), 0o755);
    await atomicWriteFile(this.#file(namespace, digest), data, { mode: 0o644 });
  }

  async #locked<T>(fn: () => Promise<T>): Promise<T> {
    await ensureDir(this.root, 0o700);
    const lock = await FileLock.acquire(path.join(this.root, '.lock'), { mode: 'exclusive' });
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }

  /** The diffID a compressed blob decompresses to, as recorded by an earlier pull or push. */
  async diffIdFor(blobDigest: Digest): Promise<Digest | undefined> {
    const raw = await readOptional(this.#file(DIFFID_BY_DIGEST, blobDigest));
    const text = raw?.toString('utf8').trim();
    return text !== undefined && isDigest(text) ? text : undefined;
  }

  async setDiffId(blobDigest: Digest, diffId: Digest): Promise<void> {
    await this.#write(DIFFID_BY_DIGEST, blobDigest, diffId);
  }

  /** Known blobs of a layer, oldest first. */
  async v2Metadata(diffId: Digest): Promise<V2Metadata[]> {
    return parseList(await readOptional(this.#file(V2METADATA_BY_DIFFID, diffId)));
  }

  /**
   * Appends `entry` (moving an identical one to the end) and records the blob's diffID, like
   * Docker's V2MetadataService.Add.
   */
  async addV2Metadata(diffId: Digest, entry: V2Metadata): Promise<void> {
    await this.#locked(async () => {
      const list = (await this.v2Metadata(diffId)).filter((e) => !same(e, entry));
      list.push({ Digest: entry.Digest, SourceRepository: entry.SourceRepository, HMAC: entry.HMAC });
      await this.#write(V2METADATA_BY_DIFFID, diffId, JSON.stringify(list.slice(-MAX_METADATA)));
      await this.setDiffId(entry.Digest, diffId);
    });
  }

  /** Forgets a blob location that turned out to be wrong (the registry no longer has it). */
  async removeV2Metadata(diffId: Digest, entry: V2Metadata): Promise<void> {
    await this.#locked(async () => {
      const list = await this.v2Metadata(diffId);
      const kept = list.filter((e) => !same(e, entry));
      if (kept.length !== list.length) await this.#write(V2METADATA_BY_DIFFID, diffId, JSON.stringify(kept));
    });
  }

  /**
   * Records a completed pull: each layer's blob in `repository` (fully qualified name). Call
   * it after the layers were registered, i.e. after their diffIDs were verified.
   */
  async recordPull(repository: string, layers: readonly { digest: Digest; diffId: Digest }[]): Promise<void> {
    for (const l of layers) await this.addV2Metadata(l.diffId, { Digest: l.digest, SourceRepository: repository, HMAC: '' });
  }
}
