/**
 * The HTTP layer under the registry client: node:http/https with keep-alive agents (a pull or
 * push makes hundreds of small requests to one host; reconnecting for each would dominate on a
 * fast link), bodies that are always Buffers (so any request can be sent again after a broken
 * connection), an idle timeout that turns a stalled transfer into an error the retry loops
 * see, and redirects that never carry credentials to another origin (Docker Hub sends blob
 * GETs to a CDN).
 *
 * Responses are returned unread; the caller consumes or `discard()`s the body, which frees the
 * socket for reuse.
 */
import { readFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import tls from 'node:tls';

import { transportError } from './errors.js';

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: Buffer;
  /** HTTPS without certificate verification. */
  skipTlsVerify?: boolean;
  /** Follow up to this many redirects (default 0: the 3xx response is returned). */
  redirects?: number;
  signal?: AbortSignal;
}

/** What the client saw of one exchange; the observer hook gets one per response. */
export interface HttpExchange {
  method: string;
  url: string;
  status: number;
  /** Body bytes this request sent. */
  bytesSent: number;
}

export interface HttpClientOptions {
  userAgent?: string;
  /** Socket inactivity that aborts a request or a body transfer (default 60 s). */
  idleTimeoutMs?: number;
  /** Sockets per host and agent (default 8). */
  maxSockets?: number;
  onExchange?: (exchange: HttpExchange) => void;
}

export class HttpResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: IncomingHttpHeaders;
  /** The URL that produced this response (after redirects). */
  readonly url: URL;
  readonly body: IncomingMessage;

  constructor(url: URL, message: IncomingMessage) {
    this.url = url;
    this.body = message;
    this.status = message.statusCode ?? 0;
    this.statusText = message.statusMessage ?? '';
    this.headers = message.headers;
  }

  header(name: string): string | undefined {
    const v = this.headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  }

  /** Reads the whole body, refusing more than `limit` bytes (hostile or confused servers). */
  async buffer(limit: number): Promise<Buffer> {
    const length = Number(this.header('content-length'));
    if (Number.isFinite(length) && length > limit) {
      this.body.destroy();
      throw transportError(`reading ${this.url.origin}${this.url.pathname}`, new Error(`response of ${length} bytes exceeds the ${limit}-byte limit`));
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of this.body as AsyncIterable<Buffer>) {
        total += chunk.length;
        if (total > limit) {
          this.body.destroy();
          throw new Error(`response exceeds the ${limit}-byte limit`);
        }
        chunks.push(chunk);
      }
    } catch (err) {
      throw transportError(`reading ${this.url.origin}${this.url.pathname}`, err);
    }
    return Buffer.concat(chunks, total);
  }

  /** Drains the body so the socket goes back to the pool. */
  async discard(): Promise<void> {
    try {
      for await (const _ of this.body) { /* drain */ }
    } catch {
      // A body we did not want failing does not matter.
    }
  }
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/**
 * The CAs a registry's certificate is checked against: Node's built-in roots plus the PEM file
 * named by `NODE_EXTRA_CA_CERTS`. The CLI launcher hands that variable over as
 * `STRATA_EXTRA_CA_CERTS`, because Node would otherwise parse the whole file at every start-up
 * (~30 ms for a system bundle), and only registry traffic needs it.
 */
function trustedCertificates(): string[] | undefined {
  const file = process.env.STRATA_EXTRA_CA_CERTS;
  if (!file) return undefined;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(err as Error).message}`);
    return undefined;
  }
  return [...tls.rootCertificates, pem];
}

export class HttpClient {
  readonly #http: http.Agent;
  readonly #https: https.Agent;
  readonly #httpsInsecure: https.Agent;
  readonly #userAgent: string;
  readonly #idleTimeoutMs: number;
  readonly #onExchange: ((e: HttpExchange) => void) | undefined;

  constructor(options: HttpClientOptions = {}) {
    const maxSockets = options.maxSockets ?? 8;
    this.#http = new http.Agent({ keepAlive: true, maxSockets });
    this.#https = new https.Agent({ keepAlive: true, maxSockets, ca: trustedCertificates() });
    this.#httpsInsecure = new https.Agent({ keepAlive: true, maxSockets, rejectUnauthorized: false });
    this.#userAgent = options.userAgent ?? 'strata';
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.#onExchange = options.onExchange;
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    let url = req.url;
    let headers = { ...req.headers };
    let method = req.method;
    let body = req.body;
    for (let hops = 0; ; hops++) {
      const res = await this.#once({ ...req, method, url, headers, body });
      const location = res.header('location');
      if (!isRedirect(res.status) || hops >= (req.redirects ?? 0) || location === undefined) return res;
      await res.discard();
      const next = new URL(location, url);
      if (next.origin !== url.origin) {
        // Credentials for the registry must not leak to a CDN or any other origin.
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
      }
      if (res.status === 303) {
        method = 'GET';
        body = undefined;
      }
      url = next;
    }
  }

  #once(req: HttpRequest): Promise<HttpResponse> {
    const { url } = req;
    const secure = url.protocol === 'https:';
    const agent = secure ? (req.skipTlsVerify ? this.#httpsInsecure : this.#https) : this.#http;
    const headers: Record<string, string> = { 'user-agent': this.#userAgent, ...req.headers };
    if (req.body !== undefined || !['GET', 'HEAD'].includes(req.method)) {
      headers['content-length'] = String(req.body?.length ?? 0);
    }
    return new Promise<HttpResponse>((resolve, reject) => {
      const what = `${req.method} ${url.origin}${url.pathname}`;
      const r = (secure ? https : http).request(url, { method: req.method, headers, agent, signal: req.signal }, (message) => {
        // A connection that dies mid-body makes the message emit 'error'; whoever reads the
        // body sees it through its iterator, and without this listener a body nobody reads
        // yet would crash the process instead.
        message.on('error', () => undefined);
        const res = new HttpResponse(url, message);
        this.#onExchange?.({ method: req.method, url: url.href, status: res.status, bytesSent: req.body?.length ?? 0 });
        resolve(res);
      });
      // The timeout stays armed on the socket while the body streams, so a transfer that
      // stalls midway also fails (with the socket destroyed) instead of hanging.
      r.setTimeout(this.#idleTimeoutMs, () => {
        r.destroy(Object.assign(new Error(`no data for ${this.#idleTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
      });
      r.on('error', (err) => reject(transportError(what, err)));
      r.end(req.body);
    });
  }

  /** Closes idle keep-alive sockets. Requests still running finish normally. */
  close(): void {
    this.#http.destroy();
    this.#https.destroy();
    this.#httpsInsecure.destroy();
  }
}
