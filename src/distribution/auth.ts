/**
 * Registry authentication: the `WWW-Authenticate` challenge a registry answers `/v2/` with,
 * and the Authorization header that satisfies it.
 *
 * - `Basic realm="..."`: the stored user:password goes with every request.
 * - `Bearer realm="https://auth…/token",service="…",scope="…"`: a token is fetched from the
 *   realm (`GET realm?service=…&scope=…`, with the user:password as Basic auth when there are
 *   credentials, anonymously otherwise) for the scopes a request needs, e.g.
 *   `repository:library/busybox:pull` or, for a push with a cross-repository mount,
 *   `repository:me/app:pull,push` plus `repository:me/base:pull`. Tokens are cached per scope
 *   set until shortly before they expire.
 *
 * One Authorizer serves one registry host. A 401 on a request is handed to `refresh()`, which
 * learns the new challenge (a registry may ask for more scope mid-session) and says whether
 * one retry is worth it.
 */
import type { HttpClient, HttpResponse } from './http.js';
import { RegistryError, formatRegistryErrors, type RegistryErrorEntry } from './errors.js';

export interface Challenge {
  /** Lower-cased: `basic`, `bearer`. */
  scheme: string;
  params: Record<string, string>;
}

export interface Credentials {
  username: string;
  password: string;
}

const TOKEN_BODY_LIMIT = 1 << 20;
/** Lifetime assumed when a token server names none (the token spec's default). */
const DEFAULT_TOKEN_SECONDS = 60;

/**
 * Parses `WWW-Authenticate` values (RFC 7235: a scheme, then comma-separated auth-params whose
 * values may be quoted strings with backslash escapes). Several challenges may share one
 * header; each header value is parsed in turn.
 */
export function parseChallenges(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const values = typeof header === 'string' ? [header] : header;
  const out: Challenge[] = [];
  for (const value of values) {
    let i = 0;
    const s = value;
    const skipSpace = () => { while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++; };
    const token = () => {
      const start = i;
      while (i < s.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(s[i]!)) i++;
      return s.slice(start, i);
    };
    let current: Challenge | undefined;
    while (i < s.length) {
      skipSpace();
      const start = i;
      const name = token();
      if (name === '') { i++; continue; }
      let j = i;
      while (j < s.length && s[j] === ' ') j++;
      if (s[j] === '=' && current) {
        i = j + 1;
        while (i < s.length && s[i] === ' ') i++;
        let v = '';
        if (s[i] === '"') {
          i++;
          while (i < s.length && s[i] !== '"') {
            if (s[i] === '\\' && i + 1 < s.length) i++;
            v += s[i++];
          }
          i++;
        } else {
          const vs = i;
          while (i < s.length && s[i] !== ',') i++;
          v = s.slice(vs, i).trim();
        }
        current.params[name.toLowerCase()] = v;
      } else {
        i = start + name.length;
        current = { scheme: name.toLowerCase(), params: {} };
        out.push(current);
      }
    }
  }
  return out;
}

/** `repository:<path>:<actions>` as the token spec writes scopes. */
export function repositoryScope(path: string, actions: readonly string[]): string {
  return `repository:${path}:${actions.join(',')}`;
}

interface CachedToken {
  token: string;
  /** ms since epoch after which the token is not used any more. */
  expires: number;
}

export class Authorizer {
  readonly #http: HttpClient;
  readonly #credentials: Credentials | undefined;
  readonly #registryOrigin: string;
  readonly #skipTlsVerify: boolean;
  #challenge: Challenge | undefined;
  readonly #tokens = new Map<string, CachedToken>();
  readonly #pending = new Map<string, Promise<CachedToken>>();
  /** Scopes a 401 asked for on top of what requests name (insufficient_scope). */
  readonly #extraScopes = new Set<string>();

  constructor(options: { http: HttpClient; credentials?: Credentials; registryOrigin: string; skipTlsVerify?: boolean }) {
    this.#http = options.http;
    this.#credentials = options.credentials;
    this.#registryOrigin = options.registryOrigin;
    this.#skipTlsVerify = options.skipTlsVerify ?? false;
  }

  get credentials(): Credentials | undefined {
    return this.#credentials;
  }

  /** The scheme in use, once a challenge was seen: `basic`, `bearer`, or undefined (open registry). */
  get scheme(): string | undefined {
    return this.#challenge?.scheme;
  }

  /** Learns the registry's challenge from a `/v2/` (or any 401) response. */
  setChallenges(challenges: readonly Challenge[]): void {
    // Bearer wins when a registry offers both: it is what docker uses and it carries scopes.
    this.#challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic') ?? this.#challenge;
  }

  /** The Authorization header for a request needing `scopes`, or undefined when none applies. */
  async header(scopes: readonly string[]): Promise<string | undefined> {
    const challenge = this.#challenge;
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') {
      if (!this.#credentials) return undefined;
      const { username, password } = this.#credentials;
      return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    }
    if (challenge.scheme === 'bearer') {
      const token = await this.#token(challenge, scopes);
      return `Bearer ${token.token}`;
    }
    return undefined;
  }

  /**
   * Handles a 401: records the challenge it carries and drops the cached token, returning
   * whether a retry with a fresh Authorization header can succeed.
   */
  async refresh(res: HttpResponse, scopes: readonly string[]): Promise<boolean> {
    const before = this.#challenge;
    const challenges = parseChallenges(res.headers['www-authenticate']);
    if (challenges.length === 0) return false;
    this.setChallenges(challenges);
    const now = this.#challenge!;
    if (now.scheme === 'basic') return before?.scheme !== 'basic' && this.#credentials !== undefined;
    if (now.scheme !== 'bearer') return false;
    for (const s of (now.params.scope ?? '').split(' ').filter(Boolean)) this.#extraScopes.add(s);
    this.#tokens.delete(this.#key(now, scopes));
    return true;
  }

  #allScopes(scopes: readonly string[]): string[] {
    return [...new Set([...scopes, ...this.#extraScopes])].sort();
  }

  #key(challenge: Challenge, scopes: readonly string[]): string {
    return `${challenge.params.realm ?? ''}|${challenge.params.service ?? ''}|${this.#allScopes(scopes).join(' ')}`;
  }

  async #token(challenge: Challenge, scopes: readonly string[]): Promise<CachedToken> {
    const key = this.#key(challenge, scopes);
    const cached = this.#tokens.get(key);
    if (cached && cached.expires > Date.now()) return cached;
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = this.#fetchToken(challenge, this.#allScopes(scopes)).finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    const token = await pending;
    this.#tokens.set(key, token);
    return token;
  }

  async #fetchToken(challenge: Challenge, scopes: readonly string[]): Promise<CachedToken> {
    const realm = challenge.params.realm;
    if (!realm) throw new RegistryError('bearer challenge without a realm', { status: 401 });
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#credentials) {
      url.searchParams.set('account', this.#credentials.username);
      const { username, password } = this.#credentials;
      headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    }
    const res = await this.#http.request({
      method: 'GET',
      url,
      headers,
      // The token server is often another host; only our own registry's origin inherits
      // the insecure setting.
      skipTlsVerify: this.#skipTlsVerify && url.origin === this.#registryOrigin,
      redirects: 3,
    });
    const body = await res.buffer(TOKEN_BODY_LIMIT);
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      // Reported below with the status.
    }
    if (res.status !== 200) {
      const errors = Array.isArray(json.errors) ? (json.errors as RegistryErrorEntry[]) : [];
      const detail = errors.length > 0 ? formatRegistryErrors(errors)
        : typeof json.details === 'string' ? `unauthorized: ${json.details}`
        : `unexpected status ${res.status} ${res.statusText}`;
      throw new RegistryError(`getting a token from ${url.origin}${url.pathname}: ${detail}`, { status: res.status === 200 ? 500 : res.status, errors });
    }
    const token = typeof json.token === 'string' && json.token !== '' ? json.token : json.access_token;
    if (typeof token !== 'string' || token === '') {
      throw new RegistryError(`token server ${url.origin}${url.pathname} returned no token`, { status: 500 });
    }
    const lifetime = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : DEFAULT_TOKEN_SECONDS;
    // Renew a little early so a token does not expire between check and use.
    const margin = Math.min(10, lifetime / 4);
    return { token, expires: Date.now() + (lifetime - margin) * 1000 };
  }
}
