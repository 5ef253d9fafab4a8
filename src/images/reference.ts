/**
 * Docker image references (`busybox`, `user/app:1.0`, `localhost:5000/x@sha256:…`): parsing,
 * normalisation to fully qualified names, and the short "familiar" forms users see.
 *
 * Grammar (distribution's reference grammar, as Docker 20.10–24 parse it):
 *
 * ```
 * reference   := name [ ":" tag ] [ "@" digest ]
 * name        := [ domain "/" ] path-component { "/" path-component }
 * domain      := host [ ":" port ]           host: DNS labels joined by ".", or [IPv6]
 * path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"* ) [a-z0-9]+ )*
 * tag         := [\w][\w.-]{0,127}
 * digest      := algorithm ":" hex          algorithm: [A-Za-z][A-Za-z0-9]* ([+._-] …)*
 * ```
 *
 * Normalisation: the first path component is a domain only if it contains `.` or `:` or is
 * `localhost`; otherwise the domain is `docker.io`, and a single-component name on
 * `docker.io` gets `library/`. `index.docker.io` is the same registry as `docker.io`.
 */
import { InvalidArgumentError } from '../errors.js';

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
const NAME_TOTAL_LENGTH_MAX = 255;

const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]*)';
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const HOST = `(?:${DOMAIN_NAME}|${IPV6})`;
const DOMAIN = `${HOST}(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;

/** Whole reference; groups: name, tag, digest. */
const REFERENCE_RE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
/** Splits a matched name into domain and path. */
const NAME_RE = new RegExp(`^(?:(${DOMAIN})/)?(${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)$`);
const TAG_RE = new RegExp(`^${TAG}$`);
const HEX64_RE = /^[a-f0-9]{64}$/;

/** Hex lengths of the digest algorithms Docker accepts (go-digest's registered ones). */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

function invalid(message = 'invalid reference format'): InvalidArgumentError {
  return new InvalidArgumentError(message);
}

function validateDigest(digest: string): void {
  const i = digest.indexOf(':');
  const algorithm = digest.slice(0, i);
  const hex = digest.slice(i + 1);
  const length = DIGEST_HEX_LENGTH[algorithm];
  if (length === undefined) throw invalid('unsupported digest algorithm');
  if (hex.length !== length) throw invalid('invalid checksum digest length');
  if (!/^[a-f0-9]+$/.test(hex)) throw invalid('invalid checksum digest format');
}

/**
 * A parsed reference. `domain` is empty only for references parsed without normalisation
 * (`parseReference`) that named no domain.
 */
export class Reference {
  readonly domain: string;
  /** Repository path below the domain, e.g. `library/busybox`. */
  readonly path: string;
  readonly tag?: string;
  /** `<algorithm>:<hex>` */
  readonly digest?: string;

  constructor(parts: { domain: string; path: string; tag?: string; digest?: string }) {
    this.domain = parts.domain;
    this.path = parts.path;
    if (parts.tag !== undefined) this.tag = parts.tag;
    if (parts.digest !== undefined) this.digest = parts.digest;
  }

  /** Full repository name: `docker.io/library/busybox`. */
  get name(): string {
    return this.domain === '' ? this.path : `${this.domain}/${this.path}`;
  }

  /** Neither tag nor digest. */
  get isNameOnly(): boolean {
    return this.tag === undefined && this.digest === undefined;
  }

  /** Full form: `docker.io/library/busybox:latest`, `…@sha256:…`, `…:tag@sha256:…`. */
  toString(): string {
    return this.name + (this.tag !== undefined ? `:${this.tag}` : '') + (this.digest !== undefined ? `@${this.digest}` : '');
  }

  withTag(tag: string): Reference {
    if (!TAG_RE.test(tag)) throw invalid();
    return new Reference({ domain: this.domain, path: this.path, tag, digest: this.digest });
  }

  /** The repository alone (tag and digest dropped). */
  withoutTagOrDigest(): Reference {
    return new Reference({ domain: this.domain, path: this.path });
  }
}

/**
 * Parses a reference exactly as written (no default domain, no `library/`). Errors:
 * `invalid reference format`, `invalid reference format: repository name must be lowercase`,
 * `repository name must have at least one component`, `repository name must not be more
 * than 255 characters`, and digest errors.
 */
export function parseReference(s: string): Reference {
  const m = REFERENCE_RE.exec(s);
  if (!m) {
    if (s === '') throw invalid('repository name must have at least one component');
    if (REFERENCE_RE.test(s.toLowerCase())) throw invalid('invalid reference format: repository name must be lowercase');
    throw invalid();
  }
  const [, name, tag, digest] = m;
  if (name!.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(`repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  const n = NAME_RE.exec(name!)!;
  if (digest !== undefined) validateDigest(digest);
  return new Reference({ domain: n[1] ?? '', path: n[2]!, tag, digest });
}

/** Docker's split of a user-typed name into registry domain and remainder. */
function splitDockerDomain(s: string): { domain: string; remainder: string } {
  const i = s.indexOf('/');
  let domain: string;
  let remainder: string;
  if (i === -1 || (!/[.:]/.test(s.slice(0, i)) && s.slice(0, i) !== 'localhost')) {
    domain = DEFAULT_DOMAIN;
    remainder = s;
  } else {
    domain = s.slice(0, i);
    remainder = s.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

/**
 * Parses a user-typed reference into its fully qualified form (`busybox` →
 * `docker.io/library/busybox`), keeping tag and digest as given; a name-only input stays
 * name-only. A bare 64-hex string is refused (it is an image ID, not a name).
 *
 * @example parseNormalizedNamed('localhost:5000/x:tag').toString() === 'localhost:5000/x:tag'
 */
export function parseNormalizedNamed(s: string): Reference {
  if (HEX64_RE.test(s)) {
    throw invalid(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  }
  const { domain, remainder } = splitDockerDomain(s);
  const tagSep = remainder.indexOf(':');
  const remoteName = tagSep >= 0 ? remainder.slice(0, tagSep) : remainder;
  if (remoteName.toLowerCase() !== remoteName) throw invalid('invalid reference format: repository name must be lowercase');
  const ref = parseReference(`${domain}/${remainder}`);
  if (ref.domain === '') throw invalid();
  return ref;
}

/** Adds `:latest` to a name-only reference. */
export function withDefaultTag(ref: Reference): Reference {
  return ref.isNameOnly ? ref.withTag(DEFAULT_TAG) : ref;
}

/**
 * What `docker pull/tag/run` resolve a user string to: normalised, `:latest` when neither
 * tag nor digest is given, and only the digest when both are (`busybox` →
 * `docker.io/library/busybox:latest`).
 */
export function parseDockerRef(s: string): Reference {
  const ref = parseNormalizedNamed(s);
  if (ref.tag !== undefined && ref.digest !== undefined) {
    return new Reference({ domain: ref.domain, path: ref.path, digest: ref.digest });
  }
  return withDefaultTag(ref);
}

/** The repository name as users write it: `busybox`, `user/app`, `localhost:5000/app`. */
export function familiarName(ref: Reference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return ref.name;
  const p = ref.path;
  if (p.startsWith(OFFICIAL_REPO_PREFIX) && !p.slice(OFFICIAL_REPO_PREFIX.length).includes('/')) {
    return p.slice(OFFICIAL_REPO_PREFIX.length);
  }
  return p;
}

/** The whole reference as users write it: `busybox:latest`, `user/app@sha256:…`. */
export function familiarString(ref: Reference): string {
  return familiarName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}
