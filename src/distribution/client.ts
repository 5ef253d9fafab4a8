/**
 * The registry client: one `RegistryClient` per operation (or per engine) holds the keep-alive
 * HTTP agents and, per registry host, the endpoint that answered `/v2/` and its Authorizer.
 * `repository(ref, actions)` gives a `Repository`, whose methods are the distribution API's
 * requests one by one (manifest GET/PUT, blob HEAD/GET, upload POST/PATCH/GET/PUT/DELETE).
 * `pull.ts`, `push.ts` and `login.ts` compose them.
 *
 * Every request goes through `Repository.send`: the Authorization header for the repository's
 * scopes, one retry after a 401 that brought a new challenge, and retries with backoff for
 * idempotent requests whose connection broke. Uploads do their own recovery (blob-upload.ts).
 */
import type { Digest } from '../digest.js';
import { isDigest } from '../digest.js';
import { InvalidArgumentError, StrataError } from '../errors.js';
import type { Reference } from '../images/reference.js';
import { Authorizer, parseChallenges, repositoryScope, type Credentials } from './auth.js';
import { readCredentials } from './credentials.js';
import { endpointsFor, normalizeRegistryDomain, type Endpoint } from './endpoint.js';
import { RegistryError, formatRegistryErrors, isTransient, type RegistryErrorEntry } from './errors.js';
import { HttpClient, type HttpExchange, type HttpResponse } from './http.js';
import { MANIFEST_ACCEPT, MANIFEST_SIZE_LIMIT } from './manifest.js';

export interface RegistryClientOptions {
  /** docker-style config.json to read credentials from; without it every registry is anonymous. */
  credentialsFile?: string;
  /** Registries to reach without TLS verification, then over plain HTTP (`host[:port]`, IPv4 CIDR). */
  insecureRegistries?: readonly string[];
  userAgent?: string;
  /** Socket inactivity after which a request or transfer fails and is retried (default 60 s). */
  idleTimeoutMs?: number;
  /** Observes every HTTP response (tests count requests with it). */
  onExchange?: (exchange: HttpExchange) => void;
  /** Bytes per upload PATCH (default 8 MiB). */
  chunkSize?: number;
  /** Attempts for a transfer whose connection keeps breaking (default 5). */
  attempts?: number;
}

export const DEFAULT_CHUNK_SIZE = 8 << 20;
const ERROR_BODY_LIMIT = 64 << 10;

/** A registry host as resolved by `/v2/`: where it answered and how it authenticates. */
export interface RegistryHost {
  /** `docker.io`, `localhost:5000`. */
  domain: string;
  endpoint: Endpoint;
  authorizer: Authorizer;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Backoff before attempt `n` (1-based) of a retried transfer: 0.2 s, 0.4 s, … capped at 5 s. */
export function backoffMs(n: number): number {
  return Math.min(5000, 200 * 2 ** (n - 1));
}

/** The error a registry's non-success response stands for, with its spec error body. */
export async function responseError(res: HttpResponse, what: string): Promise<RegistryError> {
  let errors: RegistryErrorEntry[] = [];
  if (res.body.readable && !res.body.readableEnded) {
    try {
      const body = await res.buffer(ERROR_BODY_LIMIT);
      const json = JSON.parse(body.toString('utf8')) as { errors?: unknown };
      if (Array.isArray(json.errors)) {
        errors = json.errors.filter((e): e is RegistryErrorEntry => typeof e === 'object' && e !== null && typeof e.code === 'string')
          .map((e) => ({ code: e.code, message: typeof e.message === 'string' ? e.message : '', detail: e.detail }));
      }
    } catch {
      // Not a spec error body; the status says enough.
    }
  }
  const detail = errors.length > 0 ? formatRegistryErrors(errors)
    : res.status === 401 ? 'unauthorized: authentication required'
    : `unexpected status ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  return new RegistryError(`${what}: ${detail}`, { status: res.status, errors });
}

function locationOf(res: HttpResponse, what: string): URL {
  const location = res.header('location');
  if (!location) throw new RegistryError(`${what}: the registry sent no Location header`, { status: 502 });
  return new URL(location, res.url);
}

/** `Range: 0-<last>` of an upload: how many bytes the registry holds (0 for "0-0" at offset 0). */
function receivedFromRange(res: HttpResponse, expectedAtLeast: number): number | undefined {
  const range = res.header('range');
  const m = range ? /^(?:bytes=)?0-(\d+)$/.exec(range.trim()) : null;
  if (!m) return undefined;
  const last = Number(m[1]);
  // Distribution answers "0-0" both for an empty upload and for one byte; an upload we have
  // not sent to yet is empty.
  if (last === 0 && expectedAtLeast === 0) return 0;
  return last + 1;
}

export class RegistryClient {
  readonly http: HttpClient;
  readonly chunkSize: number;
  readonly attempts: number;
  readonly #options: RegistryClientOptions;
  readonly #hosts = new Map<string, Promise<RegistryHost>>();

  constructor(options: RegistryClientOptions = {}) {
    this.#options = options;
    this.http = new HttpClient({ userAgent: options.userAgent, idleTimeoutMs: options.idleTimeoutMs, onExchange: options.onExchange });
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.attempts = Math.max(1, options.attempts ?? 5);
  }

  /** Credentials stored for a registry domain in the configured file. */
  async credentialsFor(domain: string): Promise<Credentials | undefined> {
    const file = this.#options.credentialsFile;
    return file === undefined ? undefined : readCredentials(file, normalizeRegistryDomain(domain));
  }

  /**
   * Pings `/v2/` on each endpoint of `domain` until one answers, and learns its challenge.
   * `credentials` overrides the stored ones and bypasses the cache (login verification).
   */
  async connect(domain: string, credentials?: Credentials): Promise<RegistryHost> {
    const d = normalizeRegistryDomain(domain);
    if (credentials !== undefined) return this.#ping(d, credentials);
    let host = this.#hosts.get(d);
    if (!host) {
      host = this.credentialsFor(d).then((c) => this.#ping(d, c));
      this.#hosts.set(d, host);
      host.catch(() => this.#hosts.delete(d));
    }
    return host;
  }

  async #ping(domain: string, credentials: Credentials | undefined): Promise<RegistryHost> {
    const endpoints = endpointsFor(domain, { insecureRegistries: this.#options.insecureRegistries });
    let lastError: unknown;
    for (const endpoint of endpoints) {
      const url = new URL(`${endpoint.baseUrl}/v2/`);
      let res: HttpResponse;
      try {
        res = await this.#retrying(() => this.http.request({ method: 'GET', url, skipTlsVerify: endpoint.skipTlsVerify }));
      } catch (err) {
        lastError = err;
        continue;
      }
      const authorizer = new Authorizer({ http: this.http, credentials, registryOrigin: url.origin, skipTlsVerify: endpoint.skipTlsVerify });
      if (res.status === 401) {
        authorizer.setChallenges(parseChallenges(res.headers['www-authenticate']));
        await res.discard();
      } else if (res.status >= 200 && res.status < 300) {
        await res.discard();
      } else {
        throw await responseError(res, `GET ${url.href}`);
      }
      return { domain, endpoint, authorizer };
    }
    throw lastError instanceof StrataError ? lastError : new StrataError('ERR_SYSTEM', `cannot reach registry ${domain}`, { cause: lastError });
  }

  /** Drops what was learnt about a registry (after its credentials changed). */
  forget(domain: string): void {
    this.#hosts.delete(normalizeRegistryDomain(domain));
  }

  /** Runs `fn` again after transient failures, with backoff. */
  async #retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (attempt >= this.attempts || !isTransient(err)) throw err;
        await sleep(backoffMs(attempt));
      }
    }
  }

  /** A repository session with the scopes `actions` need (`pull`, or `pull` + `push`). */
  async repository(ref: Reference, actions: readonly ('pull' | 'push')[]): Promise<Repository> {
    if (ref.domain === '') throw new InvalidArgumentError(`reference ${ref.toString()} is not normalised`);
    const host = await this.connect(ref.domain);
    return new Repository(this, host, ref.path, actions);
  }

  /** Closes idle sockets. */
  close(): void {
    this.http.close();
  }
}

export interface SendRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: Buffer;
  redirects?: number;
  /** Scopes on top of the repository's own (e.g. pull on the source of a mount). */
  extraScopes?: readonly string[];
  /** Safe to send again after a broken connection (default: GET, HEAD). */
  idempotent?: boolean;
  signal?: AbortSignal;
}

/** An upload session: the URL to send the next request to and the bytes the registry holds. */
export interface UploadSession {
  location: URL;
  /** Bytes the registry acknowledged. */
  offset: number;
}

export class Repository {
  readonly client: RegistryClient;
  readonly host: RegistryHost;
  /** Path below the registry: `library/busybox`. */
  readonly path: string;
  readonly scopes: readonly string[];

  constructor(client: RegistryClient, host: RegistryHost, path: string, actions: readonly string[]) {
    this.client = client;
    this.host = host;
    this.path = path;
    this.scopes = [repositoryScope(path, actions)];
  }

  /** Fully qualified repository name: `docker.io/library/busybox`. */
  get name(): string {
    return `${this.host.domain}/${this.path}`;
  }

  url(suffix: string): URL {
    return new URL(`${this.host.endpoint.baseUrl}/v2/${this.path}/${suffix}`);
  }

  async send(req: SendRequest): Promise<HttpResponse> {
    const scopes = [...this.scopes, ...(req.extraScopes ?? [])];
    const idempotent = req.idempotent ?? (req.method === 'GET' || req.method === 'HEAD');
    for (let attempt = 1, authRetried = false; ; attempt++) {
      let res: HttpResponse;
      try {
        const authorization = await this.host.authorizer.header(scopes);
        res = await this.client.http.request({
          method: req.method,
          url: req.url,
          headers: { ...req.headers, ...(authorization ? { authorization } : {}) },
          body: req.body,
          skipTlsVerify: this.host.endpoint.skipTlsVerify,
          redirects: req.redirects,
          signal: req.signal,
        });
      } catch (err) {
        if (idempotent && attempt < this.client.attempts && isTransient(err)) {
          await sleep(backoffMs(attempt));
          continue;
        }
        throw err;
      }
      if (res.status === 401 && !authRetried && (await this.host.authorizer.refresh(res, scopes))) {
        authRetried = true;
        await res.discard();
        continue;
      }
      if (idempotent && attempt < this.client.attempts && (res.status >= 500 || res.status === 429)) {
        await res.discard();
        await sleep(backoffMs(attempt));
        continue;
      }
      return res;
    }
  }

  /**
   * GET a manifest by tag or digest. Returns the exact bytes, the Content-Type and the digest
   * (computed; a digest reference or a `Docker-Content-Digest` header that disagrees with the
   * bytes is a DigestMismatchError raised by the caller).
   */
  async getManifest(reference: string, signal?: AbortSignal): Promise<{ raw: Buffer; contentType?: string; headerDigest?: string }> {
    const url = this.url(`manifests/${reference}`);
    const res = await this.send({ method: 'GET', url, headers: { accept: MANIFEST_ACCEPT.join(', ') }, signal });
    if (res.status !== 200) {
      const err = await responseError(res, `GET ${url.href}`);
      if (res.status === 404) {
        throw new RegistryError(`manifest for ${this.name}${reference.includes(':') ? '@' : ':'}${reference} not found: ${formatRegistryErrors(err.errors) || 'manifest unknown'}`, { status: 404, errors: err.errors });
      }
      throw err;
    }
    const raw = await res.buffer(MANIFEST_SIZE_LIMIT);
    return { raw, contentType: res.header('content-type'), headerDigest: res.header('docker-content-digest') };
  }

  /** Size of a blob the repository holds, or undefined when it has none by that digest. */
  async headBlob(digest: Digest, extra?: { signal?: AbortSignal }): Promise<number | undefined> {
    const url = this.url(`blobs/${digest}`);
    const res = await this.send({ method: 'HEAD', url, redirects: 5, signal: extra?.signal });
    await res.discard();
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await responseError(res, `HEAD ${url.href}`);
    const size = Number(res.header('content-length'));
    return Number.isSafeInteger(size) && size >= 0 ? size : undefined;
  }

  /** Starts a blob GET at byte `offset`; the response is 200 or 206 and unread. */
  async getBlob(digest: Digest, offset: number, signal?: AbortSignal): Promise<HttpResponse> {
    const url = this.url(`blobs/${digest}`);
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const res = await this.send({ method: 'GET', url, headers, redirects: 5, signal });
    if (res.status !== 200 && res.status !== 206) {
      const err = await responseError(res, `GET ${url.href}`);
      if (res.status === 404) throw new RegistryError(`blob ${digest} not found in ${this.name}: ${formatRegistryErrors(err.errors) || 'blob unknown'}`, { status: 404, errors: err.errors });
      throw err;
    }
    return res;
  }

  /**
   * POST an upload. With `mount`, asks the registry to link the blob from another
   * repository; `mounted` says it did (201), otherwise a fresh session is returned (202).
   */
  async startUpload(options: { mount?: { digest: Digest; from: string }; signal?: AbortSignal } = {}): Promise<{ mounted: true } | { mounted: false; session: UploadSession }> {
    const url = this.url('blobs/uploads/');
    const extraScopes: string[] = [];
    if (options.mount) {
      url.searchParams.set('mount', options.mount.digest);
      url.searchParams.set('from', options.mount.from);
      extraScopes.push(repositoryScope(options.mount.from, ['pull']));
    }
    const res = await this.send({ method: 'POST', url, extraScopes, idempotent: true, signal: options.signal });
    if (res.status === 201 && options.mount) {
      await res.discard();
      return { mounted: true };
    }
    if (res.status !== 202) throw await responseError(res, `POST ${url.origin}${url.pathname}`);
    await res.discard();
    return { mounted: false, session: { location: locationOf(res, 'starting an upload'), offset: 0 } };
  }

  /** PATCH one chunk at the session's offset; returns the session after it. */
  async patchUpload(session: UploadSession, chunk: Buffer, signal?: AbortSignal): Promise<UploadSession> {
    const end = session.offset + chunk.length - 1;
    const res = await this.send({
      method: 'PATCH',
      url: session.location,
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${session.offset}-${end}` },
      body: chunk,
      idempotent: false,
      signal,
    });
    if (res.status !== 202) throw await responseError(res, `PATCH ${session.location.origin}${session.location.pathname}`);
    await res.discard();
    const received = receivedFromRange(res, session.offset + chunk.length) ?? session.offset + chunk.length;
    return { location: locationOf(res, 'uploading a chunk'), offset: received };
  }

  /** GET the session's status: where the registry stands after a broken request. */
  async uploadStatus(session: UploadSession, signal?: AbortSignal): Promise<UploadSession> {
    const res = await this.send({ method: 'GET', url: session.location, signal });
    if (res.status !== 204 && res.status !== 200) throw await responseError(res, `GET ${session.location.origin}${session.location.pathname}`);
    await res.discard();
    const received = receivedFromRange(res, session.offset);
    if (received === undefined) throw new RegistryError('upload status without a Range header', { status: 502 });
    const location = res.header('location') ? locationOf(res, 'upload status') : session.location;
    return { location, offset: received };
  }

  /** PUT `?digest=` closing the session, optionally with the last bytes as body. */
  async completeUpload(session: UploadSession, digest: Digest, body?: Buffer, signal?: AbortSignal): Promise<void> {
    const url = new URL(session.location);
    url.searchParams.set('digest', digest);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (body && body.length > 0) headers['content-range'] = `${session.offset}-${session.offset + body.length - 1}`;
    const res = await this.send({ method: 'PUT', url, headers, body: body ?? Buffer.alloc(0), idempotent: false, signal });
    if (res.status !== 201 && res.status !== 204) throw await responseError(res, `PUT ${url.origin}${url.pathname}`);
    await res.discard();
    const got = res.header('docker-content-digest');
    if (got !== undefined && isDigest(got) && got !== digest) {
      throw new RegistryError(`registry stored blob ${got} for upload of ${digest}`, { status: 502 });
    }
  }

  /** DELETE a session we abandon, so the registry can free it; failures are ignored. */
  async cancelUpload(session: UploadSession): Promise<void> {
    try {
      const res = await this.send({ method: 'DELETE', url: session.location, idempotent: true });
      await res.discard();
    } catch {
      // Registries expire abandoned uploads on their own.
    }
  }

  /** PUT a manifest under a tag or digest; returns the digest the registry reports, if any. */
  async putManifest(reference: string, mediaType: string, raw: Buffer, signal?: AbortSignal): Promise<string | undefined> {
    const url = this.url(`manifests/${reference}`);
    const res = await this.send({ method: 'PUT', url, headers: { 'content-type': mediaType }, body: raw, idempotent: true, signal });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await responseError(res, `PUT ${url.href}`);
    await res.discard();
    return res.header('docker-content-digest');
  }
}
