/**
 * The build context and the other trees COPY/ADD read from, with Docker 20.10's rules:
 *
 *  - `.dockerignore`: comments, `!` exceptions, `**`, leading `/` and `./` cleaned, later
 *    patterns win, a pattern naming a directory excludes what is below it. The client walks
 *    the context like `docker build` does (an excluded directory is only entered when an
 *    exception could match below it; such a directory is not sent itself, so the daemon
 *    recreates it with mode 0755). `.dockerignore` and the Dockerfile are always sent, then
 *    hidden from COPY when the patterns match them.
 *  - A tar context (`-`) is taken as sent: .dockerignore is not applied to it (Docker does not
 *    either), only the hiding of .dockerignore / Dockerfile.
 *  - Source paths are resolved inside the tree: a leading `/` or `./` is dropped, `..` that
 *    leaves the tree fails with `forbidden path outside the build context: ../x ()`, symlinks
 *    are followed but cannot leave the tree (an absolute target is taken from the tree root).
 *  - Globs use Go's filepath.Match on paths relative to the tree, matched against every entry
 *    in walk order; the matches keep that order.
 *
 * Cache checksums are Docker's: each entry hashes a "tarsum v1" header (name, mode with the
 * file-type bits, uid, gid, size, typeflag, linkname, uname, gname, devmajor, devminor, then
 * sorted xattrs) followed by the file content; mtime is not part of it, so touching a file
 * does not bust the cache, while chmod or a content change does. A file is `file:<sum>`, a
 * directory `dir:<sha256 of its entries' sums, sorted and joined by ",">` (the directory
 * itself included, symlinks hashed as their targets), several sources `multi:<sha256 of
 * their checksums joined by ",">`. For the context the header is the one `docker build` puts
 * in the tar it sends (uid/gid 0, uname/gname left out); for a tree from an image (COPY
 * --from) it is built from the files as they are, with user and group names looked up in
 * the host's /etc/passwd and /etc/group (what the daemon's Go runtime does).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { chmod, link, lstat, lutimes, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, utimes } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';

import { openDecompressed, readTarEntries, decodeHeaderBlock, cleanPath } from '../archive/index.js';
import { InvalidArgumentError, NotFoundError, isErrno } from '../errors.js';

// ---------------------------------------------------------------------------------------------
// .dockerignore

/** Reads .dockerignore text into patterns (Docker's ReadAll: comments, trim, clean, `/`). */
export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  let lines = text.split('\n');
  if (lines.length > 0 && lines[0]!.startsWith('\ufeff')) lines[0] = lines[0]!.slice(1);
  lines = lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  for (const raw of lines) {
    if (raw.startsWith('#')) continue;
    let p = raw.trim();
    if (p === '') continue;
    const invert = p[0] === '!';
    if (invert) p = p.slice(1).trim();
    if (p.length > 0) {
      p = cleanPath(p);
      if (p.length > 1 && p[0] === '/') p = p.slice(1);
    }
    out.push(invert ? '!' + p : p);
  }
  return out;
}

interface Pattern {
  cleaned: string;
  dirs: string[];
  exclusion: boolean;
  re: RegExp;
}

/** Translates a .dockerignore pattern into a regexp (Docker 20.10 fileutils rules). */
function patternRegExp(pattern: string): RegExp {
  let re = '^';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        if (chars[i + 1] === '/') i++;
        // `**` at the end matches everything; elsewhere any number of directories.
        re += i + 1 >= chars.length ? '.*' : '(.*/)?';
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '.' || ch === '$') re += '\\' + ch;
    else if (ch === '\\') {
      if (i + 1 < chars.length) re += '\\' + chars[++i];
      else re += '\\\\';
    } else if ('+()|{}^'.includes(ch)) re += '\\' + ch;
    else re += ch;
  }
  try {
    return new RegExp(re + '$', 'su');
  } catch {
    throw new InvalidArgumentError('syntax error in pattern');
  }
}

/** Docker's PatternMatcher: last matching pattern decides; parents' matches count too. */
export class PatternMatcher {
  readonly patterns: readonly Pattern[];
  readonly exclusions: boolean;

  constructor(patterns: readonly string[]) {
    const list: Pattern[] = [];
    let exclusions = false;
    for (let p of patterns) {
      p = p.trim();
      if (p === '') continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p[0] === '!') {
        if (p.length === 1) throw new InvalidArgumentError('illegal exclusion pattern: "!"');
        exclusion = true;
        exclusions = true;
        p = p.slice(1);
      }
      goMatch(p, '.'); // syntax check, as Docker does
      list.push({ cleaned: p, dirs: p.split('/'), exclusion, re: patternRegExp(p) });
    }
    this.patterns = list;
    this.exclusions = exclusions;
  }

  matches(file: string): boolean {
    let matched = false;
    const parent = path.posix.dirname(file);
    const parentDirs = parent.split('/');
    for (const p of this.patterns) {
      let m = p.re.test(file);
      if (!m && parent !== '.' && p.dirs.length <= parentDirs.length) {
        m = p.re.test(parentDirs.slice(0, p.dirs.length).join('/'));
      }
      if (m) matched = !p.exclusion;
    }
    return matched;
  }
}

/** fileutils.Matches: whether `file` is excluded by `patterns` (never the root). */
export function isExcluded(file: string, patterns: readonly string[]): boolean {
  const f = cleanPath(file);
  if (f === '.') return false;
  return new PatternMatcher(patterns).matches(f);
}

// ---------------------------------------------------------------------------------------------
// Go's filepath.Match

const BAD_PATTERN = 'syntax error in pattern';

/** Go's filepath.Match (Unix): `*`, `?`, `[...]`, `\` escapes; `/` never matched by wildcards. */
export function goMatch(pattern: string, name: string): boolean {
  const p = Array.from(pattern);
  const n = Array.from(name);
  return matchFrom(p, 0, n, 0);
}

function matchFrom(p: string[], pi: number, n: string[], ni: number): boolean {
  while (pi < p.length) {
    const c = p[pi]!;
    if (c === '*') {
      while (p[pi] === '*') pi++;
      if (pi === p.length) {
        for (let k = ni; k < n.length; k++) if (n[k] === '/') return false;
        return true;
      }
      // Validate the rest of the pattern first, as Go reports a bad pattern even on a miss.
      checkPattern(p, pi);
      for (let k = ni; k <= n.length; k++) {
        if (matchFrom(p, pi, n, k)) return true;
        if (k < n.length && n[k] === '/') return false;
      }
      return false;
    }
    if (ni >= n.length) {
      checkPattern(p, pi);
      return false;
    }
    if (c === '?') {
      if (n[ni] === '/') return false;
      pi++;
      ni++;
      continue;
    }
    if (c === '[') {
      const r = matchClass(p, pi, n[ni]!);
      if (!r.ok || n[ni] === '/') {
        checkPattern(p, r.end);
        return false;
      }
      pi = r.end;
      ni++;
      continue;
    }
    let lit = c;
    if (c === '\\') {
      pi++;
      if (pi >= p.length) throw new Error(BAD_PATTERN);
      lit = p[pi]!;
    }
    if (n[ni] !== lit) {
      checkPattern(p, pi + 1);
      return false;
    }
    pi++;
    ni++;
  }
  return ni === n.length;
}

/** Matches one char against a `[...]` class starting at p[pi]; returns where it ends. */
function matchClass(p: string[], pi: number, ch: string): { ok: boolean; end: number } {
  let i = pi + 1;
  let negated = false;
  if (p[i] === '^') {
    negated = true;
    i++;
  }
  let matched = false;
  let n = 0;
  for (;;) {
    if (i >= p.length) throw new Error(BAD_PATTERN);
    if (p[i] === ']' && n > 0) {
      i++;
      break;
    }
    let lo = p[i]!;
    if (lo === '\\') {
      i++;
      if (i >= p.length) throw new Error(BAD_PATTERN);
      lo = p[i]!;
    } else if (lo === '-' || lo === ']') {
      throw new Error(BAD_PATTERN);
    }
    i++;
    let hi = lo;
    if (p[i] === '-') {
      i++;
      if (i >= p.length) throw new Error(BAD_PATTERN);
      hi = p[i]!;
      if (hi === '\\') {
        i++;
        if (i >= p.length) throw new Error(BAD_PATTERN);
        hi = p[i]!;
      } else if (hi === ']' || hi === '-') throw new Error(BAD_PATTERN);
      i++;
    }
    if (lo <= ch && ch <= hi) matched = true;
    n++;
  }
  return { ok: matched !== negated, end: i };
}

/** Throws ErrBadPattern if the rest of the pattern is malformed (Go checks even on a miss). */
function checkPattern(p: string[], pi: number): void {
  for (let i = pi; i < p.length; i++) {
    if (p[i] === '\\') {
      if (++i >= p.length) throw new Error(BAD_PATTERN);
    } else if (p[i] === '[') {
      i = matchClass(p, i, '\0').end - 1;
    }
  }
}

/** Whether a COPY source is a glob (`*`, `?`, `[` not escaped by `\`). */
export function hasWildcards(p: string): boolean {
  for (let i = 0; i < p.length; i++) {
    const ch = p[i];
    if (ch === '\\') i++;
    else if (ch === '*' || ch === '?' || ch === '[') return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// trees

export type EntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface TreeEntry {
  /** Path relative to the tree root, `/`-separated, no leading `./`. */
  rel: string;
  type: EntryType;
  /** Where it is on this machine. */
  hostPath: string;
  /** A directory the daemon would have created for children it received, not itself sent. */
  implied?: boolean;
}

/**
 * A tree COPY/ADD can read: the build context or an image's root filesystem. Paths are
 * relative to the root. Only what `entry` reports exists (the context hides ignored files).
 */
export interface SourceTree {
  readonly root: string;
  readonly kind: 'context' | 'image';
  /** The entry at `rel` (not following a final symlink), or undefined. */
  entry(rel: string): Promise<TreeEntry | undefined>;
  /** Children names of a directory entry, sorted as Go's filepath.Walk visits them. */
  children(rel: string): Promise<string[]>;
  /** The tarsum of one entry (already resolved), or undefined when the tree has none. */
  entrySum(rel: string): Promise<string | undefined>;
  /** Release temporary files (tar contexts). */
  close(): Promise<void>;
}

const S_IFMT = 0o170000;

function entryTypeOf(st: Stats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  return 'other';
}

function typeflagOf(st: Stats): string {
  if (st.isFile()) return '0';
  if (st.isSymbolicLink()) return '2';
  if (st.isCharacterDevice()) return '3';
  if (st.isBlockDevice()) return '4';
  if (st.isDirectory()) return '5';
  if (st.isFIFO()) return '6';
  return '0';
}

/** The V1 tarsum header fields, in Docker's order. */
export interface SumHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  xattrs?: ReadonlyMap<string, string>;
}

/** A sha256 already fed with a tarsum v1 header; the content follows. */
function tarsumHasher(h: SumHeader): Hash {
  const hash = createHash('sha256');
  hash.update(`name${h.name}mode${h.mode}uid${h.uid}gid${h.gid}size${h.size}typeflag${h.typeflag}linkname${h.linkname}uname${h.uname}gname${h.gname}devmajor${h.devmajor}devminor${h.devminor}`);
  if (h.xattrs) for (const k of [...h.xattrs.keys()].sort(byteCompare)) hash.update(k + h.xattrs.get(k)!);
  return hash;
}

/** sha256 over a tarsum v1 header and the content (hex). */
export async function tarsumEntry(h: SumHeader, content?: string | Buffer | (() => AsyncIterable<Buffer>)): Promise<string> {
  const hash = tarsumHasher(h);
  if (typeof content === 'function') for await (const c of content()) hash.update(c);
  else if (content !== undefined) hash.update(content);
  return hash.digest('hex');
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** `prefix:<sha256 of the items joined by ",">` (Docker's hashStringSlice). */
export function hashStringSlice(prefix: string, items: readonly string[]): string {
  return `${prefix}:${sha256Hex(items.join(','))}`;
}

function devMajor(rdev: number): number {
  return ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}
function devMinor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >> 12) & ~0xff);
}

function headerFromStat(name: string, st: Stats, linkname: string): SumHeader {
  const typeBits = st.mode & S_IFMT;
  const isDev = st.isCharacterDevice() || st.isBlockDevice();
  return {
    name: st.isDirectory() && !name.endsWith('/') ? name + '/' : name,
    // Go 1.8-compatible type bits, as Docker ≤ 23 writes them.
    mode: (st.mode & 0o7777) | typeBits,
    uid: st.uid,
    gid: st.gid,
    size: st.isFile() ? st.size : 0,
    typeflag: typeflagOf(st),
    linkname,
    uname: '',
    gname: '',
    devmajor: isDev ? devMajor(st.rdev) : 0,
    devminor: isDev ? devMinor(st.rdev) : 0,
  };
}

/** Host user/group names by id (what Go's os/user finds in /etc/passwd and /etc/group). */
export interface NameLookup {
  user(uid: number): string;
  group(gid: number): string;
}

/** Reads the host's /etc/passwd and /etc/group once. */
export async function hostNameLookup(etc = '/etc'): Promise<NameLookup> {
  const table = async (file: string): Promise<Map<number, string>> => {
    const m = new Map<number, string>();
    let text = '';
    try {
      text = await readFile(path.join(etc, file), 'utf8');
    } catch {
      return m;
    }
    for (const line of text.split('\n')) {
      const f = line.split(':');
      if (f.length < 3 || line.startsWith('#')) continue;
      const id = Number(f[2]);
      if (Number.isInteger(id) && !m.has(id)) m.set(id, f[0]!);
    }
    return m;
  };
  const users = await table('passwd');
  const groups = await table('group');
  return { user: (uid) => users.get(uid) ?? '', group: (gid) => groups.get(gid) ?? '' };
}

/** Joins a root and a relative path (no escaping: `rel` is already confined). */
function under(root: string, rel: string): string {
  return rel === '' || rel === '.' ? root : path.join(root, rel);
}

/**
 * A tree on this machine read as it is (an image root mounted by the engine, or an
 * extracted tar context). Sums are computed lazily and memoised.
 */
class DirectoryTree implements SourceTree {
  readonly root: string;
  readonly kind: 'context' | 'image';
  readonly #names: NameLookup | undefined;
  readonly #sums = new Map<string, Promise<string | undefined>>();
  readonly #fixed: Map<string, string> | undefined;
  readonly #hidden: Set<string>;
  readonly #cleanup: (() => Promise<void>) | undefined;

  constructor(root: string, kind: 'context' | 'image', options: {
    names?: NameLookup; sums?: Map<string, string>; hidden?: Set<string>; cleanup?: () => Promise<void>;
  } = {}) {
    this.root = root;
    this.kind = kind;
    this.#names = options.names;
    this.#fixed = options.sums;
    this.#hidden = options.hidden ?? new Set();
    this.#cleanup = options.cleanup;
  }

  async entry(rel: string): Promise<TreeEntry | undefined> {
    if (this.#hidden.has(rel)) return undefined;
    const hostPath = under(this.root, rel);
    const st = await lstat(hostPath).catch(() => undefined);
    if (!st) return undefined;
    return { rel, type: entryTypeOf(st), hostPath };
  }

  async children(rel: string): Promise<string[]> {
    const names = await readdir(under(this.root, rel));
    return names.filter((n) => !this.#hidden.has(rel === '' ? n : `${rel}/${n}`)).sort(byteCompare);
  }

  entrySum(rel: string): Promise<string | undefined> {
    let p = this.#sums.get(rel);
    if (!p) {
      p = this.#computeSum(rel);
      this.#sums.set(rel, p);
    }
    return p;
  }

  async #computeSum(rel: string): Promise<string | undefined> {
    if (this.#fixed) return this.#fixed.get(rel);
    const hostPath = under(this.root, rel);
    const st = await lstat(hostPath).catch(() => undefined);
    if (!st) return undefined;
    const link = st.isSymbolicLink() ? await readlink(hostPath) : '';
    const h = headerFromStat(rel, st, link);
    if (this.#names) {
      h.uname = this.#names.user(st.uid);
      h.gname = this.#names.group(st.gid);
    }
    return tarsumEntry(h, st.isFile() && st.size > 0 ? () => createReadStream(hostPath) : undefined);
  }

  async close(): Promise<void> {
    await this.#cleanup?.();
  }
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** An image's root filesystem (mounted read-only by the engine) as a COPY --from source. */
export function imageTree(root: string, names: NameLookup): SourceTree {
  return new DirectoryTree(root, 'image', { names });
}

/**
 * A context directory as `docker build DIR` sends it: .dockerignore applied on the client
 * side, uid/gid 0 in the headers, names relative to the directory.
 */
class FilteredContext implements SourceTree {
  readonly root: string;
  readonly kind = 'context' as const;
  readonly #entries: Map<string, TreeEntry & { st?: Stats; hardlinkTo?: string }>;
  readonly #children: Map<string, string[]>;
  readonly #sums = new Map<string, Promise<string | undefined>>();

  constructor(root: string, entries: Map<string, TreeEntry & { st?: Stats; hardlinkTo?: string }>) {
    this.root = root;
    this.#entries = entries;
    this.#children = new Map([['', []]]);
    for (const rel of entries.keys()) {
      const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
      const base = rel.slice(rel.lastIndexOf('/') + 1);
      if (!this.#children.has(parent)) this.#children.set(parent, []);
      this.#children.get(parent)!.push(base);
    }
    for (const list of this.#children.values()) list.sort(byteCompare);
  }

  async entry(rel: string): Promise<TreeEntry | undefined> {
    if (rel === '') return { rel: '', type: 'dir', hostPath: this.root };
    const e = this.#entries.get(rel);
    return e ? { rel: e.rel, type: e.type, hostPath: e.hostPath, ...(e.implied ? { implied: true } : {}) } : undefined;
  }

  async children(rel: string): Promise<string[]> {
    return [...(this.#children.get(rel) ?? [])];
  }

  entrySum(rel: string): Promise<string | undefined> {
    let p = this.#sums.get(rel);
    if (!p) {
      p = this.#computeSum(rel);
      this.#sums.set(rel, p);
    }
    return p;
  }

  async #computeSum(rel: string): Promise<string | undefined> {
    const e = this.#entries.get(rel);
    if (!e || e.implied || !e.st) return undefined;
    const link = e.type === 'symlink' ? await readlink(e.hostPath) : '';
    const h = headerFromStat(rel, e.st, link);
    // `docker build` sends everything as root (TarOptions.ChownOpts 0:0).
    h.uid = 0;
    h.gid = 0;
    if (e.hardlinkTo !== undefined) {
      h.typeflag = '1';
      h.linkname = e.hardlinkTo;
      h.size = 0;
      return tarsumEntry(h);
    }
    return tarsumEntry(h, e.type === 'file' && e.st.size > 0 ? () => createReadStream(e.hostPath) : undefined);
  }

  async close(): Promise<void> {}
}

export interface ContextOptions {
  /** The Dockerfile's path relative to the context (-f), default `Dockerfile`. */
  dockerfile?: string;
}

/** What `docker build` would send from `dir`, seen from the daemon. */
export async function contextFromDirectory(dir: string, options: ContextOptions = {}): Promise<SourceTree> {
  const root = path.resolve(dir);
  const st = await stat(root).catch((err: unknown) => {
    if (isErrno(err, 'ENOENT')) throw new NotFoundError(`unable to prepare context: path "${dir}" not found`);
    throw err;
  });
  if (!st.isDirectory()) throw new InvalidArgumentError(`unable to prepare context: path "${dir}" is not a directory`);
  const ignoreText = await readFile(path.join(root, '.dockerignore'), 'utf8').catch(() => undefined);
  const original = ignoreText === undefined ? [] : parseDockerignore(ignoreText);
  const dockerfile = cleanPath(options.dockerfile ?? 'Dockerfile');
  // The client always sends .dockerignore and the Dockerfile; the daemon then hides them.
  const excludes = [...original];
  if (isExcluded('.dockerignore', excludes)) excludes.push('!.dockerignore');
  if (isExcluded(dockerfile, excludes)) excludes.push('!' + dockerfile);
  const pm = new PatternMatcher(excludes);

  const entries = new Map<string, TreeEntry & { st?: Stats; hardlinkTo?: string }>();
  const inodes = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(under(root, rel))).sort(byteCompare);
    for (const name of names) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const hostPath = path.join(root, r);
      const est = await lstat(hostPath);
      if (est.isSocket()) continue; // Go's tar writer cannot archive sockets
      if (pm.matches(r)) {
        if (!est.isDirectory()) continue;
        if (!pm.exclusions) continue;
        const dirSlash = r + '/';
        if (!pm.patterns.some((p) => p.exclusion && (p.cleaned + '/').startsWith(dirSlash))) continue;
        // Not sent itself, but children may be: the daemon creates it when they arrive.
        await walk(r);
        continue;
      }
      const e: TreeEntry & { st?: Stats; hardlinkTo?: string } = { rel: r, type: entryTypeOf(est), hostPath, st: est };
      if (!est.isDirectory() && est.nlink > 1) {
        const key = `${est.dev}:${est.ino}`;
        const first = inodes.get(key);
        if (first !== undefined) e.hardlinkTo = first;
        else inodes.set(key, r);
      }
      entries.set(r, e);
      if (est.isDirectory()) await walk(r);
    }
  };
  await walk('');
  // Parents the daemon had to create for entries whose directory was not sent.
  for (const rel of [...entries.keys()]) {
    let p = rel;
    while (p.includes('/')) {
      p = p.slice(0, p.lastIndexOf('/'));
      if (entries.has(p)) break;
      entries.set(p, { rel: p, type: 'dir', hostPath: path.join(root, p), implied: true });
    }
  }
  for (const f of ['.dockerignore', dockerfile]) if (isExcluded(f, original)) entries.delete(f);
  return new FilteredContext(root, entries);
}

/**
 * A context sent as a tar stream (`docker build -`): extracted to a temp dir (removed by
 * `close`), sums taken from the tar headers as received. The Dockerfile is read by the
 * caller from the tree before hiding (see `readContextFile`).
 */
export async function contextFromTar(input: Readable | AsyncIterable<Buffer>, options: ContextOptions & { tmpDir?: string } = {}): Promise<SourceTree & { readDockerfile(name?: string): Promise<string> }> {
  const dir = await mkdtemp(path.join(options.tmpDir ?? tmpdir(), 'strata-build-context-'));
  const cleanup = async () => rm(dir, { recursive: true, force: true });
  const sums = new Map<string, string>();
  try {
    const src = await openDecompressed(input);
    const dirTimes: Array<[string, number]> = [];
    for await (const { header, body } of readTarEntries(src.chunks)) {
      if (header.typeflag === 'g') continue;
      const name = cleanPath('/' + header.name).slice(1);
      if (name === '') {
        for await (const _ of body) void _;
        continue;
      }
      const target = path.join(dir, name);
      await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
      const xattrs = header.xattrs ? new Map([...header.xattrs].map(([k, v]) => [k, v.toString('latin1')])) : undefined;
      const h: SumHeader = {
        name: header.name, mode: header.mode, uid: header.uid, gid: header.gid, size: header.size,
        typeflag: header.typeflag, linkname: header.linkname, uname: '', gname: '',
        devmajor: header.devmajor, devminor: header.devminor, ...(xattrs ? { xattrs } : {}),
      };
      const hash = tarsumHasher(h);
      const isFile = header.typeflag === '0' || header.typeflag === '7';
      if (header.typeflag !== '5') await rm(target, { recursive: true, force: true });
      if (isFile) {
        const out = createWriteStream(target, { mode: header.mode });
        for await (const c of body) {
          hash.update(c);
          if (!out.write(c)) await once(out, 'drain');
        }
        out.end();
        await once(out, 'close');
      } else {
        for await (const c of body) hash.update(c);
      }
      sums.set(name, hash.digest('hex'));
      switch (header.typeflag) {
        case '5':
          await mkdir(target, { recursive: true });
          await chmod(target, header.mode);
          dirTimes.push([target, header.mtime]);
          continue;
        case '2':
          await symlink(header.linkname, target);
          await lutimes(target, header.mtime, header.mtime).catch(() => undefined);
          continue;
        case '1': {
          const to = cleanPath('/' + header.linkname).slice(1);
          await link(path.join(dir, to), target);
          continue;
        }
        case '0':
        case '7':
          await chmod(target, header.mode);
          await utimes(target, header.mtime, header.mtime);
          continue;
        default:
          continue; // devices and fifos make no sense in a build context
      }
    }
    for (const [p, t] of dirTimes.reverse()) await utimes(p, t, t).catch(() => undefined);
  } catch (err) {
    await cleanup();
    throw err;
  }
  const dockerfileName = cleanPath(options.dockerfile ?? 'Dockerfile');
  const ignoreText = await readFile(path.join(dir, '.dockerignore'), 'utf8').catch(() => undefined);
  const excludes = ignoreText === undefined ? [] : parseDockerignore(ignoreText);
  const hidden = new Set<string>();
  for (const f of ['.dockerignore', dockerfileName]) if (isExcluded(f, excludes)) hidden.add(f);
  const tree = new DirectoryTree(dir, 'context', { sums, hidden, cleanup });
  return Object.assign(tree, {
    async readDockerfile(name = dockerfileName): Promise<string> {
      const n = cleanPath(name);
      for (const candidate of n === 'Dockerfile' ? ['Dockerfile', 'dockerfile'] : [n]) {
        const text = await readFile(path.join(dir, candidate), 'utf8').catch(() => undefined);
        if (text !== undefined) return text;
      }
      throw new NotFoundError(`Cannot locate specified Dockerfile: ${name}`);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// resolving COPY/ADD sources

const MAX_SYMLINKS = 255;

export class ForbiddenPathError extends InvalidArgumentError {}

const CONTEXT_ANCHOR = '/build-context';

/**
 * Resolves `p` inside `tree` following symlinks (moby/sys/symlink FollowSymlinkInScope):
 * `..` cannot climb above the root, absolute link targets start at the root. Returns the
 * relative path ('' for the root), whether it exists or not. A `p` that climbs out
 * lexically is refused, as Docker refuses it.
 */
export async function resolveInTree(tree: SourceTree, p: string, options: { followFinal?: boolean } = {}): Promise<string> {
  // Joined onto a synthetic anchor: a result outside it climbed above the context.
  const lexical = path.posix.join(CONTEXT_ANCHOR, p);
  if (lexical !== CONTEXT_ANCHOR && !lexical.startsWith(`${CONTEXT_ANCHOR}/`)) throw new ForbiddenPathError(`forbidden path outside the build context: ${p} ()`);
  const followFinal = options.followFinal ?? true;
  const parts = cleanPath(p).split('/').filter((x) => x !== '' && x !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const rel = [...resolved, part].join('/');
    const e = await tree.entry(rel);
    if (e?.type === 'symlink' && (followFinal || parts.length > 0)) {
      if (++links > MAX_SYMLINKS) throw new InvalidArgumentError(`too many links in ${p}`);
      const target = await readlink(e.hostPath);
      if (target.startsWith('/')) resolved.length = 0;
      parts.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
      continue;
    }
    resolved.push(part);
  }
  return resolved.join('/');
}

/** One resolved COPY/ADD source. */
export interface CopyInfo {
  tree: SourceTree;
  /** The source as matched (relative, symlinks not followed): its basename names the copy. */
  path: string;
  /** Relative path after following symlinks. */
  resolved: string;
  /** Host path of the resolved source. */
  hostPath: string;
  isDir: boolean;
  /** `file:<sum>` / `dir:<sum>`. */
  hash: string;
}

/** Docker's Hash(path): the sum of what `path` resolves to, or the path itself if unknown. */
async function hashPath(tree: SourceTree, rel: string): Promise<string> {
  const resolved = await resolveInTree(tree, rel);
  const sum = await tree.entrySum(resolved);
  if (sum !== undefined) return sum;
  return tree.kind === 'image' ? resolved : rel;
}

async function walkTree(tree: SourceTree, start: string, visit: (rel: string, e: TreeEntry) => Promise<void>): Promise<void> {
  const e = await tree.entry(start);
  if (!e) return;
  await visit(start, e);
  if (e.type !== 'dir') return;
  for (const name of await tree.children(start)) await walkTree(tree, start === '' ? name : `${start}/${name}`, visit);
}

async function infoForPath(tree: SourceTree, orig: string): Promise<CopyInfo> {
  const resolved = await resolveInTree(tree, orig);
  const e = await tree.entry(resolved);
  if (!e) {
    const err = new NotFoundError(`stat ${orig}: file does not exist`);
    if (tree.kind === 'context') throw new NotFoundError(`file not found in build context or excluded by .dockerignore: ${err.message}`);
    throw err;
  }
  if (e.type !== 'dir') {
    return { tree, path: orig, resolved, hostPath: e.hostPath, isDir: false, hash: 'file:' + (await hashPath(tree, orig)) };
  }
  const sums: string[] = [];
  await walkTree(tree, resolved, async (rel) => {
    if (rel === '') return;
    sums.push(await hashPath(tree, rel));
  });
  sums.sort(byteCompare);
  return { tree, path: orig, resolved, hostPath: e.hostPath, isDir: true, hash: hashStringSlice('dir', sums) };
}

/**
 * COPY/ADD source resolution (Docker's calcCopyInfo): strips a leading `/` and `./`, expands
 * globs over the whole tree in walk order, checks every path stays inside the tree, and
 * computes each source's checksum. Throws Docker's messages without the `COPY failed:`
 * prefix (the caller adds it).
 */
export async function resolveSources(tree: SourceTree, sources: readonly string[]): Promise<CopyInfo[]> {
  const infos: CopyInfo[] = [];
  for (const raw of sources) {
    let orig = raw;
    if (orig.startsWith('/')) orig = orig.slice(1);
    if (orig.startsWith('./')) orig = orig.slice(2);
    if (hasWildcards(orig)) {
      const matched: string[] = [];
      await walkTree(tree, '', async (rel) => {
        if (rel === '') return;
        let ok: boolean;
        try {
          ok = goMatch(orig, rel);
        } catch {
          ok = false;
        }
        if (ok) matched.push(rel);
      });
      for (const rel of matched) infos.push(await infoForPath(tree, rel));
      continue;
    }
    infos.push(await infoForPath(tree, orig));
  }
  if (infos.length === 0) throw new InvalidArgumentError('no source files were specified');
  return infos;
}

/** The checksum Docker puts in `#(nop) COPY <checksum> in <dest>` for a set of sources. */
export function sourcesChecksum(infos: readonly CopyInfo[]): string {
  if (infos.length === 1) return infos[0]!.hash;
  return hashStringSlice('multi', infos.map((i) => i.hash));
}

/**
 * Whether a file is an archive ADD unpacks: gzip (or plain) data whose first block is a valid
 * tar header. bzip2 / xz archives are not supported (strata ships no decoders).
 */
export async function isTarArchive(hostPath: string): Promise<boolean> {
  let src;
  try {
    src = await openDecompressed(createReadStream(hostPath));
  } catch {
    return false;
  }
  let head = Buffer.alloc(0);
  try {
    for await (const c of src.chunks) {
      head = Buffer.concat([head, c]);
      if (head.length >= 512) break;
    }
  } catch {
    return false;
  }
  if (head.length < 512) return false;
  try {
    return decodeHeaderBlock(head.subarray(0, 512)) !== null;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// --chown

/** Reads a file of the destination rootfs (e.g. `/etc/passwd`), or undefined if missing. */
export type RootfsReader = (absPath: string) => Promise<Buffer | undefined>;

function lookupId(kind: 'user' | 'group', spec: string, table: string | undefined, file: string): number {
  if (/^[+-]?\d+$/.test(spec)) {
    const n = Number(spec);
    if (Number.isSafeInteger(n)) return n;
  }
  if (table === undefined) throw new Error(`open ${file}: no such file or directory`);
  for (const line of table.split('\n')) {
    const f = line.split(':');
    if (f[0] === spec && f.length >= 3) {
      const id = Number(f[2]);
      if (Number.isInteger(id)) return id;
    }
  }
  throw new Error(`no such ${kind}: ${spec}`);
}

/**
 * Resolves `--chown=user[:group]` against the stage's /etc/passwd and /etc/group. Numbers
 * are taken as they are; a lone user is used as the group too (Docker's rule).
 */
export async function resolveChown(chown: string, read: RootfsReader): Promise<{ uid: number; gid: number }> {
  const parts = chown.split(':');
  const wrap = (msg: string) => new InvalidArgumentError(`unable to convert uid/gid chown string to host mapping: ${msg}`);
  if (parts.length > 2) throw wrap(`invalid chown string format: ${chown}`);
  const userStr = parts[0]!;
  const groupStr = parts.length === 1 ? parts[0]! : parts[1]!;
  const passwd = /^[+-]?\d+$/.test(userStr) ? undefined : (await read('/etc/passwd'))?.toString('utf8');
  let uid: number;
  try {
    uid = lookupId('user', userStr, passwd, '/etc/passwd');
  } catch (err) {
    throw wrap(`can't find uid for user ${userStr}: ${(err as Error).message}`);
  }
  const group = /^[+-]?\d+$/.test(groupStr) ? undefined : (await read('/etc/group'))?.toString('utf8');
  let gid: number;
  try {
    gid = lookupId('group', groupStr, group, '/etc/group');
  } catch (err) {
    throw wrap(`can't find gid for group ${groupStr}: ${(err as Error).message}`);
  }
  return { uid, gid };
}

