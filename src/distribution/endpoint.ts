/**
 * From the domain a reference names to the URLs strata contacts.
 *
 * - `docker.io` (and its aliases) is served by `registry-1.docker.io`; credentials for it
 *   live under docker's historical key `https://index.docker.io/v1/`.
 * - Loopback registries (`localhost`, 127.0.0.0/8, `::1`) are spoken to over plain HTTP:
 *   Docker treats 127.0.0.0/8 as insecure out of the box, and a registry started for local
 *   use rarely has a certificate.
 * - Hosts the user lists as insecure (`--insecure-registry host[:port]` or an IPv4 CIDR) are
 *   tried over HTTPS without certificate checks first, then over plain HTTP, as Docker does.
 * - Everything else is HTTPS with verification.
 */
import { isIPv4 } from 'node:net';

import { DEFAULT_DOMAIN } from '../images/reference.js';

export const DOCKER_HUB_HOST = 'registry-1.docker.io';
export const DOCKER_HUB_CREDENTIAL_KEY = 'https://index.docker.io/v1/';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** One way of reaching a registry. */
export interface Endpoint {
  /** `https://host[:port]` or `http://host[:port]`, no trailing slash. */
  baseUrl: string;
  /** TLS without certificate verification (insecure registries over HTTPS). */
  skipTlsVerify: boolean;
}

export interface EndpointOptions {
  /** Extra insecure registries: `host`, `host:port` or an IPv4 CIDR such as `10.0.0.0/8`. */
  insecureRegistries?: readonly string[];
}

/**
 * Canonical registry domain for what a user typed as a server (`docker login` argument,
 * reference domain, config.json key): scheme, path and docker.io aliases are dropped.
 *
 * @example normalizeRegistryDomain('https://index.docker.io/v1/') === 'docker.io'
 */
export function normalizeRegistryDomain(server: string | undefined): string {
  if (server === undefined || server === '') return DEFAULT_DOMAIN;
  let s = server.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = s.indexOf('/');
  if (slash >= 0) s = s.slice(0, slash);
  s = s.toLowerCase();
  return DOCKER_HUB_ALIASES.has(s) ? DEFAULT_DOMAIN : s;
}

/** The key under `auths` in docker's config.json for a registry domain. */
export function credentialKey(domain: string): string {
  const d = normalizeRegistryDomain(domain);
  return d === DEFAULT_DOMAIN ? DOCKER_HUB_CREDENTIAL_KEY : d;
}

function splitHostPort(domain: string): { host: string; port?: string } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(domain);
  if (v6) return { host: v6[1]!, port: v6[2] };
  const i = domain.lastIndexOf(':');
  return i >= 0 ? { host: domain.slice(0, i), port: domain.slice(i + 1) } : { host: domain };
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((acc, part) => (acc << 8) + Number(part), 0) >>> 0;
}

function inCidr(ip: string, cidr: string): boolean {
  const [net, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  if (!net || !isIPv4(net) || !isIPv4(ip) || !Number.isInteger(bits) || bits < 0 || bits > 32) return false;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (ipv4ToInt(ip) & mask) === (ipv4ToInt(net) & mask);
}

export function isLoopbackDomain(domain: string): boolean {
  const { host } = splitHostPort(domain);
  const h = host.toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || (isIPv4(h) && inCidr(h, '127.0.0.0/8'));
}

function isListedInsecure(domain: string, list: readonly string[]): boolean {
  const { host } = splitHostPort(domain);
  return list.some((entry) => {
    const e = entry.trim().replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '').toLowerCase();
    if (e.includes('/')) return inCidr(host, e);
    return e === domain || e === host;
  });
}

/**
 * The endpoints to try for `domain`, best first. More than one only for insecure registries
 * (HTTPS without verification, then HTTP); the client keeps the first that answers `/v2/`.
 */
export function endpointsFor(domain: string, options: EndpointOptions = {}): Endpoint[] {
  const d = normalizeRegistryDomain(domain);
  if (d === DEFAULT_DOMAIN) return [{ baseUrl: `https://${DOCKER_HUB_HOST}`, skipTlsVerify: false }];
  if (isLoopbackDomain(d)) return [{ baseUrl: `http://${d}`, skipTlsVerify: false }];
  if (isListedInsecure(d, options.insecureRegistries ?? [])) {
    return [
      { baseUrl: `https://${d}`, skipTlsVerify: true },
      { baseUrl: `http://${d}`, skipTlsVerify: false },
    ];
  }
  return [{ baseUrl: `https://${d}`, skipTlsVerify: false }];
}
