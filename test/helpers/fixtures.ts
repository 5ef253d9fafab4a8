/**
 * Test fixtures made without Docker: tar bytes assembled here (or by GNU tar from staged
 * directories), wrapped into docker-archive / OCI-layout archives, plus the readers and tree
 * snapshots the acceptance tests compare with. Everything is deterministic and generated at
 * test time; no binary is committed.
 *
 * Identity rules are re-implemented here on purpose (diffID = sha256 of the uncompressed layer
 * tar, chainID per the OCI image-spec, image ID = sha256 of the config bytes) so the tests do
 * not validate strata with strata's own code.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  chmodSync, chownSync, closeSync, existsSync, lstatSync, linkSync, mkdirSync, openSync,
  readdirSync, readFileSync, readlinkSync, readSync, symlinkSync, utimesSync, lutimesSync,
  writeFileSync, writeSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { native } from '../../src/native/addon.js';
import { buildTar as buildSpecTar } from './tar-builder.js';

export type Digest = `sha256:${string}`;

/** Repository root (this file compiles to dist/test/helpers/fixtures.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

// ---------------------------------------------------------------------------------------------
// identities

export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function hex(d: string): string {
  return d.startsWith('sha256:') ? d.slice(7) : d;
}

export function chainIdsOf(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    const prev = out.at(-1);
    out.push(prev === undefined ? d : sha256(`${prev} ${d}`));
  }
  return out;
}

/** Deterministic byte source (AES-128-CTR keystream keyed by the seed) and small PRNG. */
export class Rng {
  #state: number;
  #cipher;
  constructor(seed: number) {
    this.#state = seed >>> 0 || 1;
    const key = createHash('sha256').update(`strata-fixture-${seed}`).digest().subarray(0, 16);
    this.#cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  }
  /** mulberry32 */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  bytes(n: number): Buffer {
    return this.#cipher.update(Buffer.alloc(n));
  }
  /** Text-ish, compressible bytes. */
  text(n: number): Buffer {
    const words = ['layer', 'strata', 'overlay', 'docker', 'image', 'whiteout', 'chain', 'diff', '\n'];
    const parts: string[] = [];
    let len = 0;
    while (len < n) {
      const w = words[this.int(words.length)]! + ' ';
      parts.push(w);
      len += w.length;
    }
    return Buffer.from(parts.join('')).subarray(0, n);
  }
}

// ---------------------------------------------------------------------------------------------
// tar writing

export type TarType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarEntry {
  name: string;
  type?: TarType;
  data?: Buffer | string;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extra PAX records for this entry (e.g. `SCHILY.xattr.user.x`). */
  pax?: Record<string, string>;
}

export interface TarOptions {
  /** `ustar` (magic "ustar\0" + PAX for long names) or `gnu` (magic "ustar  " + ././@LongLink). */
  format?: 'ustar' | 'gnu';
  /** Pad the archive to a multiple of this many 512-byte blocks after the end marker (GNU tar: 20). */
  blockingFactor?: number;
}

const TYPEFLAG: Record<TarType, string> = {
  file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6',
};

export const T0 = 1_700_000_000;

function octal(buf: Buffer, off: number, len: number, value: number): void {
  const s = value.toString(8);
  if (s.length > len - 1) throw new Error(`tar: value ${value} does not fit ${len} bytes`);
  buf.write(s.padStart(len - 1, '0') + '\0', off, len, 'latin1');
}

function rawHeader(h: {
  name: string; mode: number; uid: number; gid: number; size: number; mtime: number;
  typeflag: string; linkname: string; uname: string; gname: string;
  devmajor: number; devminor: number; prefix: string; format: 'ustar' | 'gnu';
}): Buffer {
  const b = Buffer.alloc(512);
  b.write(h.name, 0, 100, 'utf8');
  octal(b, 100, 8, h.mode);
  octal(b, 108, 8, h.uid);
  octal(b, 116, 8, h.gid);
  octal(b, 124, 12, h.size);
  octal(b, 136, 12, Math.floor(h.mtime));
  b.fill(0x20, 148, 156);
  b.write(h.typeflag, 156, 1, 'latin1');
  b.write(h.linkname, 157, 100, 'utf8');
  if (h.format === 'gnu') b.write('ustar  \0', 257, 8, 'latin1');
  else b.write('ustar\u000000', 257, 8, 'latin1');
  b.write(h.uname, 265, 32, 'utf8');
  b.write(h.gname, 297, 32, 'utf8');
  if (h.typeflag === '3' || h.typeflag === '4' || h.format === 'ustar') {
    octal(b, 329, 8, h.devmajor);
    octal(b, 337, 8, h.devminor);
  }
  b.write(h.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

function padBlock(n: number): number {
  return (512 - (n % 512)) % 512;
}

function paxRecords(records: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    const bodyLen = Buffer.byteLength(body);
    let len = bodyLen + 1;
    while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
    parts.push(Buffer.from(`${len}${body}`));
  }
  return Buffer.concat(parts);
}

function splitUstar(name: string): { name: string; prefix: string } | undefined {
  if (Buffer.byteLength(name) <= 100) return { name, prefix: '' };
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const p = name.slice(0, i);
    const n = name.slice(i + 1);
    if (Buffer.byteLength(p) <= 155 && Buffer.byteLength(n) <= 100 && n.length > 0) return { name: n, prefix: p };
  }
  return undefined;
}

/** Header blocks (extension headers included) for one entry; the payload is written by the caller. */
export function encodeEntryHeader(e: TarEntry, format: 'ustar' | 'gnu' = 'ustar', size?: number): Buffer {
  const type = e.type ?? 'file';
  const dataLen = size ?? (e.data === undefined ? 0 : Buffer.byteLength(e.data));
  const base = {
    mode: e.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
    uid: e.uid ?? 0, gid: e.gid ?? 0,
    size: type === 'file' ? dataLen : 0,
    mtime: e.mtime ?? T0,
    typeflag: TYPEFLAG[type],
    uname: e.uname ?? '', gname: e.gname ?? '',
    devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0,
    format,
  };
  const linkname = e.linkname ?? '';
  const blocks: Buffer[] = [];
  const pax: Record<string, string> = { ...(e.pax ?? {}) };
  let name = e.name;
  let prefix = '';
  let link = linkname;
  const nonAscii = (s: string) => /[^\x20-\x7e]/.test(s);
  if (format === 'gnu') {
    if (Buffer.byteLength(name) > 100) {
      const payload = Buffer.concat([Buffer.from(name), Buffer.alloc(1)]);
      blocks.push(rawHeader({ ...base, name: '././@LongLink', mode: 0o644, uid: 0, gid: 0, mtime: 0, uname: '', gname: '', size: payload.length, typeflag: 'L', linkname: '', prefix: '' }));
      blocks.push(payload, Buffer.alloc(padBlock(payload.length)));
      name = name.slice(0, 100);
    }
    if (Buffer.byteLength(link) > 100) {
      const payload = Buffer.concat([Buffer.from(link), Buffer.alloc(1)]);
      blocks.push(rawHeader({ ...base, name: '././@LongLink', mode: 0o644, uid: 0, gid: 0, mtime: 0, uname: '', gname: '', size: payload.length, typeflag: 'K', linkname: '', prefix: '' }));
      blocks.push(payload, Buffer.alloc(padBlock(payload.length)));
      link = link.slice(0, 100);
    }
  } else {
    const split = nonAscii(name) ? undefined : splitUstar(name);
    if (split) {
      name = split.name;
      prefix = split.prefix;
    } else {
      pax.path = e.name;
      name = e.name.replace(/[^\x20-\x7e]/g, '_').slice(0, 100);
    }
    if (Buffer.byteLength(link) > 100 || nonAscii(link)) {
      pax.linkpath = linkname;
      link = linkname.replace(/[^\x20-\x7e]/g, '_').slice(0, 100);
    }
  }
  if (Object.keys(pax).length > 0) {
    const payload = paxRecords(pax);
    const dir = dirname(e.name.replace(/\/$/, ''));
    const base2 = e.name.replace(/\/$/, '').split('/').pop() ?? 'x';
    const paxName = (dir === '.' ? '' : dir + '/') + 'PaxHeaders.0/' + base2;
    blocks.push(rawHeader({ ...base, name: paxName.replace(/[^\x20-\x7e]/g, '_').slice(0, 100), size: payload.length, typeflag: 'x', linkname: '', prefix: '', uname: '', gname: '' }));
    blocks.push(payload, Buffer.alloc(padBlock(payload.length)));
  }
  blocks.push(rawHeader({ ...base, name, prefix, linkname: link }));
  return Buffer.concat(blocks);
}

/** A whole tar in memory. */
export function buildTar(entries: readonly TarEntry[], options: TarOptions = {}): Buffer {
  const format = options.format ?? 'ustar';
  const parts: Buffer[] = [];
  let len = 0;
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const h = encodeEntryHeader(e, format, data.length);
    parts.push(h);
    len += h.length;
    if ((e.type ?? 'file') === 'file' && data.length > 0) {
      parts.push(data, Buffer.alloc(padBlock(data.length)));
      len += data.length + padBlock(data.length);
    }
  }
  parts.push(Buffer.alloc(1024));
  len += 1024;
  const record = (options.blockingFactor ?? 0) * 512;
  if (record > 0 && len % record !== 0) parts.push(Buffer.alloc(record - (len % record)));
  return Buffer.concat(parts);
}

/** Streams a tar to a file while hashing it: for fixtures too large to hold in memory. */
export class TarFileWriter {
  readonly path: string;
  #fd: number;
  #hash = createHash('sha256');
  #size = 0;
  #format: 'ustar' | 'gnu';
  constructor(path: string, format: 'ustar' | 'gnu' = 'ustar') {
    this.path = path;
    this.#format = format;
    this.#fd = openSync(path, 'w');
  }
  #write(b: Buffer): void {
    let off = 0;
    while (off < b.length) off += writeSync(this.#fd, b, off, b.length - off);
    this.#hash.update(b);
    this.#size += b.length;
  }
  add(e: TarEntry): void {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    this.#write(encodeEntryHeader(e, this.#format, data.length));
    if ((e.type ?? 'file') === 'file' && data.length > 0) {
      this.#write(data);
      this.#write(Buffer.alloc(padBlock(data.length)));
    }
  }
  /** Adds a regular file whose payload is copied from `src`. */
  addFromFile(e: TarEntry, src: string): void {
    const size = lstatSync(src).size;
    this.#write(encodeEntryHeader({ ...e, type: 'file' }, this.#format, size));
    const fd = openSync(src, 'r');
    try {
      const buf = Buffer.alloc(1 << 20);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        this.#write(buf.subarray(0, n));
      }
    } finally {
      closeSync(fd);
    }
    this.#write(Buffer.alloc(padBlock(size)));
  }
  finish(blockingFactor = 0): { path: string; size: number; digest: Digest } {
    this.#write(Buffer.alloc(1024));
    const record = blockingFactor * 512;
    if (record > 0 && this.#size % record !== 0) this.#write(Buffer.alloc(record - (this.#size % record)));
    closeSync(this.#fd);
    return { path: this.path, size: this.#size, digest: `sha256:${this.#hash.digest('hex')}` };
  }
}

// ---------------------------------------------------------------------------------------------
// tar reading

export interface ParsedEntry {
  name: string;
  /** Raw typeflag character ('0', '1', '2', '5', ...). */
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  pax: Record<string, string>;
  data: Buffer;
}

function readNum(b: Buffer, off: number, len: number): number {
  if (b[off]! & 0x80) {
    let v = b[off]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
    return v;
  }
  const s = b.toString('latin1', off, off + len).replace(/[\0 ]+$/g, '').replace(/^[\0 ]+/, '').split('\0')[0]!;
  return s === '' ? 0 : parseInt(s, 8);
}

function readStr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end === -1 || end > off + len ? off + len : end);
}

function parsePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < buf.length) {
    const sp = buf.indexOf(0x20, off);
    if (sp < 0) break;
    const len = parseInt(buf.toString('latin1', off, sp), 10);
    if (!(len > 0)) break;
    const rec = buf.toString('utf8', sp + 1, off + len - 1);
    const eq = rec.indexOf('=');
    out[rec.slice(0, eq)] = rec.slice(eq + 1);
    off += len;
  }
  return out;
}

/** Parses a whole (uncompressed) tar. Throws on a truncated archive. */
export function parseTar(buf: Buffer): ParsedEntry[] {
  const out: ParsedEntry[] = [];
  let off = 0;
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const typeflag = String.fromCharCode(h[156]! || 0x30);
    const size = readNum(h, 124, 12);
    const dataStart = off + 512;
    if (dataStart + size > buf.length) throw new Error(`tar truncated at entry ${readStr(h, 0, 100)}`);
    const data = buf.subarray(dataStart, dataStart + size);
    off = dataStart + size + padBlock(size);
    if (typeflag === 'x') { pax = { ...pax, ...parsePax(data) }; continue; }
    if (typeflag === 'g') continue;
    if (typeflag === 'L') { longName = readStr(data, 0, data.length); continue; }
    if (typeflag === 'K') { longLink = readStr(data, 0, data.length); continue; }
    const magic = h.toString('latin1', 257, 263);
    let name = readStr(h, 0, 100);
    if (magic === 'ustar\0') {
      const prefix = readStr(h, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    name = pax.path ?? longName ?? name;
    const linkname = pax.linkpath ?? longLink ?? readStr(h, 157, 100);
    out.push({
      name, typeflag, linkname,
      mode: readNum(h, 100, 8), uid: readNum(h, 108, 8), gid: readNum(h, 116, 8),
      size: pax.size !== undefined ? Number(pax.size) : size,
      mtime: pax.mtime !== undefined ? Math.floor(Number(pax.mtime)) : readNum(h, 136, 12),
      devmajor: readNum(h, 329, 8), devminor: readNum(h, 337, 8),
      pax, data,
    });
    pax = {};
    longName = undefined;
    longLink = undefined;
  }
  return out;
}

export function isGzip(b: Buffer): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

export function maybeGunzip(b: Buffer): Buffer {
  return isGzip(b) ? gunzipSync(b) : b;
}

// ---------------------------------------------------------------------------------------------
// image configs and archives

export interface ConfigOptions {
  created?: string;
  cmd?: string[];
  env?: string[];
  architecture?: string;
  /** history entries; default one per layer. */
  history?: Array<Record<string, unknown>>;
  extra?: Record<string, unknown>;
}

/** Config JSON as Docker writes it (top-level keys sorted, no trailing newline). */
export function makeConfig(diffIds: readonly string[], o: ConfigOptions = {}): Buffer {
  const created = o.created ?? new Date(T0 * 1000).toISOString();
  const cfg: Record<string, unknown> = {
    architecture: o.architecture ?? 'amd64',
    config: {
      Env: o.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: o.cmd ?? ['sh'],
    },
    created,
    history: o.history ?? diffIds.map((_, i) => ({ created, created_by: `/bin/sh -c #(nop) ADD layer-${i} in /` })),
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: diffIds },
    ...o.extra,
  };
  const sorted = Object.fromEntries(Object.entries(cfg).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return Buffer.from(JSON.stringify(sorted));
}

export interface FixtureLayer {
  diffId: Digest;
  /** Uncompressed tar bytes (empty when the layer only lives in `file`). */
  tar: Buffer;
  /** Uncompressed tar on disk, for layers too big to hold in memory. */
  file?: string;
}

/** The uncompressed bytes of a fixture layer. */
export function layerTar(l: FixtureLayer): Buffer {
  return l.file ? readFileSync(l.file) : l.tar;
}

export interface FixtureImage {
  id: Digest;
  config: Buffer;
  diffIds: Digest[];
  chainIds: Digest[];
  /** Familiar `name:tag` references the archive carries. */
  tags: string[];
  layers: FixtureLayer[];
}

export interface Fixture {
  name: string;
  description: string;
  file: string;
  images: FixtureImage[];
  /** An archive Docker 20.10 can load holding the same images (pure OCI layouts need a twin). */
  dockerFile: string;
  /** Whether strata should apply `tags` (false where the format leaves naming to the loader). */
  checkTags: boolean;
}

export function imageFromLayers(layers: Buffer[], tags: string[], cfg: ConfigOptions = {}): FixtureImage {
  const diffIds = layers.map((t) => sha256(t));
  const config = makeConfig(diffIds, cfg);
  return {
    id: sha256(config), config, diffIds, chainIds: chainIdsOf(diffIds), tags,
    layers: layers.map((tar, i) => ({ diffId: diffIds[i]!, tar })),
  };
}

interface ArchiveFile { name: string; data?: Buffer; dir?: boolean; mode?: number; mtime?: number }

function outerTar(files: ArchiveFile[]): Buffer {
  const entries: TarEntry[] = [];
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/') + '/';
      if (!dirs.has(d)) {
        dirs.add(d);
        entries.push({ name: d, type: 'dir', mode: 0o755, mtime: T0 });
      }
    }
    if (f.dir) continue;
    entries.push({ name: f.name, data: f.data, mode: f.mode ?? 0o644, mtime: f.mtime ?? T0 });
  }
  return buildTar(entries);
}

export interface DockerArchiveOptions {
  /** gzip each layer.tar member (docker load decompresses). */
  gzipLayers?: boolean;
  /** gzip the whole archive. */
  gzipArchive?: boolean;
  /** Per image manifest overrides (hostile fixtures). */
  manifestOverride?: (manifest: Array<Record<string, unknown>>) => unknown;
  /** Extra members (hostile fixtures). */
  extraFiles?: ArchiveFile[];
  /** Members to leave out. */
  omit?: (name: string) => boolean;
  /** Layer bytes actually stored for layer i (default: tar, gzipped when gzipLayers). */
  layerBytes?: (img: FixtureImage, i: number) => Buffer;
  /** Leave out `repositories`. */
  noRepositories?: boolean;
}

/** Docker 20.10-style docker-archive: `<hex>.json`, `<dir>/layer.tar`, manifest.json, repositories. */
export function dockerArchive(images: FixtureImage[], o: DockerArchiveOptions = {}): Buffer {
  const files = new Map<string, ArchiveFile>();
  const manifest: Array<Record<string, unknown>> = [];
  const repos: Record<string, Record<string, string>> = {};
  for (const img of images) {
    files.set(`${hex(img.id)}.json`, { name: `${hex(img.id)}.json`, data: img.config });
    const layerPaths: string[] = [];
    img.layers.forEach((l, i) => {
      // One directory per (position, chainID) as Docker's v1 ids are; identical stacks share it.
      const dirName = hex(sha256(`${img.chainIds[i]}`));
      const p = `${dirName}/layer.tar`;
      layerPaths.push(p);
      if (!files.has(p)) {
        const bytes = o.layerBytes ? o.layerBytes(img, i) : o.gzipLayers ? gzipSync(l.tar) : l.tar;
        files.set(`${dirName}/VERSION`, { name: `${dirName}/VERSION`, data: Buffer.from('1.0') });
        files.set(p, { name: p, data: bytes });
      }
    });
    manifest.push({ Config: `${hex(img.id)}.json`, RepoTags: img.tags.length ? img.tags : null, Layers: layerPaths });
    for (const t of img.tags) {
      const i = t.lastIndexOf(':');
      (repos[t.slice(0, i)] ??= {})[t.slice(i + 1)] = hex(img.chainIds.at(-1)!);
    }
  }
  const finalManifest = o.manifestOverride ? o.manifestOverride(manifest) : manifest;
  files.set('manifest.json', { name: 'manifest.json', data: Buffer.from(JSON.stringify(finalManifest) + '\n'), mtime: 0 });
  if (!o.noRepositories && Object.keys(repos).length) {
    files.set('repositories', { name: 'repositories', data: Buffer.from(JSON.stringify(repos) + '\n'), mtime: 0 });
  }
  for (const f of o.extraFiles ?? []) files.set(f.name, f);
  const list = [...files.values()].filter((f) => !o.omit?.(f.name)).sort((a, b) => (a.name < b.name ? -1 : 1));
  const tar = outerTar(list);
  return o.gzipArchive ? gzipSync(tar) : tar;
}

export interface OciArchiveOptions {
  /** Also write Docker ≥25's manifest.json (then Docker 20.10 can load it). */
  withDockerManifest?: boolean;
  gzipLayers?: boolean;
}

/** OCI image layout archive: oci-layout, index.json, blobs/sha256/*. */
export function ociArchive(images: FixtureImage[], o: OciArchiveOptions = {}): Buffer {
  const blobs = new Map<string, Buffer>();
  const put = (b: Buffer): Digest => {
    const d = sha256(b);
    blobs.set(hex(d), b);
    return d;
  };
  const indexManifests: unknown[] = [];
  const dockerManifest: unknown[] = [];
  for (const img of images) {
    const layerDescs = img.layers.map((l) => {
      const bytes = o.gzipLayers ? gzipSync(l.tar) : l.tar;
      const d = put(bytes);
      return {
        mediaType: o.gzipLayers ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar',
        digest: d, size: bytes.length,
      };
    });
    put(img.config);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: img.id, size: img.config.length },
      layers: layerDescs,
    }));
    const md = put(manifest);
    for (const t of img.tags) {
      const i = t.lastIndexOf(':');
      const name = t.slice(0, i);
      const full = name.includes('/') ? `docker.io/${name}` : `docker.io/library/${name}`;
      indexManifests.push({
        mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: md, size: manifest.length,
        annotations: { 'io.containerd.image.name': `${full}:${t.slice(i + 1)}`, 'org.opencontainers.image.ref.name': t.slice(i + 1) },
      });
    }
    if (img.tags.length === 0) indexManifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: md, size: manifest.length });
    dockerManifest.push({
      Config: `blobs/sha256/${hex(img.id)}`, RepoTags: img.tags.length ? img.tags : null,
      Layers: layerDescs.map((l) => `blobs/sha256/${hex(l.digest)}`),
    });
  }
  const files: ArchiveFile[] = [...blobs.entries()].map(([h, b]) => ({ name: `blobs/sha256/${h}`, data: b }));
  files.push({ name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion": "1.0.0"}'), mtime: 0 });
  files.push({ name: 'index.json', data: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: indexManifests })), mtime: 0 });
  if (o.withDockerManifest) files.push({ name: 'manifest.json', data: Buffer.from(JSON.stringify(dockerManifest) + '\n'), mtime: 0 });
  files.sort((a, b) => (a.name < b.name ? -1 : 1));
  return outerTar(files);
}

export interface ReadArchiveImage {
  config: Buffer;
  configPath: string;
  repoTags: string[] | null;
  /** Layer members as stored (possibly compressed). */
  layerPaths: string[];
  layers: Buffer[];
}

/**
 * Reads a docker-archive (manifest.json) or, lacking one, an OCI layout (index.json) from
 * a (possibly gzipped) archive. Layer symlinks inside the archive are followed.
 */
export function readArchive(file: string): { members: Map<string, ParsedEntry>; images: ReadArchiveImage[]; format: 'docker' | 'oci' } {
  const entries = parseTar(maybeGunzip(readFileSync(file)));
  const members = new Map<string, ParsedEntry>();
  for (const e of entries) members.set(e.name.replace(/^\.\//, '').replace(/\/$/, ''), e);
  const get = (p: string, depth = 0): Buffer => {
    const e = members.get(p.replace(/^\.\//, ''));
    if (!e) throw new Error(`archive ${file} has no member ${p}`);
    if (e.typeflag === '2' && depth < 8) return get(join(dirname(p), e.linkname), depth + 1);
    if (e.typeflag === '1' && depth < 8) return get(e.linkname, depth + 1);
    return e.data;
  };
  if (members.has('manifest.json')) {
    const manifest = JSON.parse(get('manifest.json').toString()) as Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }>;
    return {
      members, format: 'docker',
      images: manifest.map((m) => ({
        config: get(m.Config), configPath: m.Config, repoTags: m.RepoTags,
        layerPaths: m.Layers, layers: m.Layers.map((p) => get(p)),
      })),
    };
  }
  const index = JSON.parse(get('index.json').toString()) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  return {
    members, format: 'oci',
    images: index.manifests.map((d) => {
      const m = JSON.parse(get(`blobs/sha256/${hex(d.digest)}`).toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
      const layerPaths = m.layers.map((l) => `blobs/sha256/${hex(l.digest)}`);
      const ref = d.annotations?.['io.containerd.image.name'];
      return {
        config: get(`blobs/sha256/${hex(m.config.digest)}`), configPath: `blobs/sha256/${hex(m.config.digest)}`,
        repoTags: ref ? [ref] : null, layerPaths, layers: layerPaths.map((p) => get(p)),
      };
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// layer contents

const D = (name: string, mtime = T0, mode = 0o755, extra: Partial<TarEntry> = {}): TarEntry =>
  ({ name: name.endsWith('/') ? name : `${name}/`, type: 'dir', mode, mtime, ...extra });
const F = (name: string, data: string | Buffer, mode = 0o644, mtime = T0, extra: Partial<TarEntry> = {}): TarEntry =>
  ({ name, type: 'file', data, mode, mtime, ...extra });
const S = (name: string, target: string, mtime = T0): TarEntry => ({ name, type: 'symlink', linkname: target, mode: 0o777, mtime });
const H = (name: string, target: string, mtime = T0): TarEntry => ({ name, type: 'hardlink', linkname: target, mode: 0o644, mtime });
/** Whiteout as Docker's native overlay diff writes it (mode 0600). */
const WH = (dir: string, base: string, mtime = T0): TarEntry => F(`${dir ? dir + '/' : ''}.wh.${base}`, '', 0o600, mtime);
const OPQ = (dir: string): TarEntry => F(`${dir}/.wh..wh..opq`, '', 0o755, 0);

const LONG_DIR = 'usr/share/very-long-directory-name-that-keeps-going/and-another-deeply-nested-component-for-pax';

/** Base layer of the multi-layer fixture (GNU-style padding to 10240 bytes). */
function multiLayer1(): Buffer {
  const rng = new Rng(11);
  return buildTar([
    D('etc'), D('etc/app', T0 + 1),
    F('etc/app/config', 'version=1\n', 0o644, T0 + 2),
    F('etc/app/old.conf', 'legacy\n'),
    F('etc/motd', 'welcome to layer one\n'),
    F('etc/removed-later', 'this file is whited out by layer 2\n'),
    S('etc/link', 'app/config'),
    D('opt'), F('opt/keep', 'kept through every layer\n'), F('opt/thing', 'a file that becomes a directory\n'),
    D('run'), { name: 'run/fifo', type: 'fifo', mode: 0o644, mtime: T0 },
    D('srv'), D('srv/www'), F('srv/www/index.html', '<h1>hello</h1>\n'),
    D('tmp', T0, 0o1777),
    D('usr'), D('usr/bin'), F('usr/bin/tool', rng.bytes(70_000), 0o755), F('usr/bin/suid', 'setuid\n', 0o4755),
    D('usr/share'), D('usr/share/doc'),
    F('usr/share/doc/a.txt', rng.text(5000)), H('usr/share/doc/a-hard', 'usr/share/doc/a.txt'),
    F('usr/share/doc/b.txt', 'bee\n'),
    D('usr/share/very-long-directory-name-that-keeps-going'), D(LONG_DIR),
    F(`${LONG_DIR}/file-with-a-name-long-enough-to-need-pax-or-prefix-handling-in-the-header.txt`, 'long\n'),
    D('var'), D('var/cache'), F('var/cache/c1', 'cache one\n'), D('var/cache/c2'), F('var/cache/c2/deep', 'deep\n'),
    D('home'), D('home/user', T0, 0o750, { uid: 1000, gid: 1000 }),
    F('home/user/.profile', 'export X=1\n', 0o600, T0, { uid: 1000, gid: 1000, uname: 'user', gname: 'user' }),
    F('home/user/empty', ''),
  ], { blockingFactor: 20 });
}

/** Second layer: file replaced, whiteouts, opaque dir, file→dir, xattr. Go-style end (no padding). */
function multiLayer2(): Buffer {
  return buildTar([
    D('etc', T0 + 100), D('etc/app', T0 + 100),
    F('etc/app/config', 'version=2\n', 0o600, T0 + 101),
    WH('etc', 'removed-later', T0 + 100),
    D('opt', T0 + 100), WH('opt', 'thing'), D('opt/thing', T0 + 102), F('opt/thing/child', 'now a dir\n'),
    D('srv', T0 + 100), D('srv/data', T0 + 103), F('srv/data/one', '1\n'), F('srv/data/two', '2\n'),
    D('usr', T0), D('usr/share', T0), D('usr/share/doc', T0 + 104), WH('usr/share/doc', 'b.txt'),
    D('var', T0), D('var/cache', T0 + 105), OPQ('var/cache'), F('var/cache/new', 'fresh cache\n'),
    F('etc/xattr-file', 'has a user xattr\n', 0o644, T0, { pax: { 'SCHILY.xattr.user.strata': 'layer-two' } }),
  ]);
}

/** Third layer: replaced again, whole dir whited out, opaque over a hard-link pair, retargeted link. */
function multiLayer3(): Buffer {
  return buildTar([
    D('etc', T0 + 200), D('etc/app', T0 + 200),
    F('etc/app/config', 'version=3\n', 0o640, T0 + 201),
    WH('etc', 'link'), S('etc/link', 'motd', T0 + 202),
    F('etc/motd', 'welcome to layer three\n', 0o644, T0 + 203),
    WH('', 'srv'),
    D('usr', T0), D('usr/share', T0), D('usr/share/doc', T0 + 204), OPQ('usr/share/doc'), F('usr/share/doc/c.txt', 'see\n'),
    D('opt', T0 + 205), WH('opt', 'keep'), F('opt/keep', 'replaced in layer three\n', 0o644, T0 + 206),
  ], { format: 'gnu' });
}

function randomLayer(seed: number, prefix: string, files: number, bigBytes = 0): Buffer {
  const rng = new Rng(seed);
  const entries: TarEntry[] = [D(prefix)];
  for (let d = 0; d < Math.ceil(files / 10); d++) {
    const dir = `${prefix}/d${d}`;
    entries.push(D(dir, T0 + d));
    for (let f = 0; f < 10 && d * 10 + f < files; f++) {
      const n = rng.int(3) === 0 ? rng.int(20_000) : rng.int(600);
      entries.push(F(`${dir}/f${f}`, rng.int(2) ? rng.bytes(n) : rng.text(n), 0o644, T0 + f));
    }
    if (d % 3 === 0) entries.push(S(`${dir}/sym`, `f0`));
  }
  if (bigBytes) entries.push(F(`${prefix}/big.bin`, rng.bytes(bigBytes)));
  return buildTar(entries);
}

// ---------------------------------------------------------------------------------------------
// the fixture set

export const FIXTURE_NAMES = ['single', 'multi', 'gzlayers', 'gzarchive', 'shared', 'oci', 'oci-pure', 'busybox'] as const;
export type FixtureName = (typeof FIXTURE_NAMES)[number];

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.error ?? ''}`);
  return r.stdout;
}

/** Single layer written by GNU tar (`--format=posix`) from a staged directory. */
function gnuTarLayer(work: string): Buffer {
  const stage = join(work, 'single-stage');
  mkdirSync(stage, { recursive: true });
  const rng = new Rng(1);
  const mk = (p: string, mode: number) => { mkdirSync(join(stage, p), { recursive: true }); chmodSync(join(stage, p), mode); };
  const isRoot = process.getuid?.() === 0;
  mk('app', 0o755); mk('app/bin', 0o755); mk('app/data', 0o750); mk('app/empty', 0o700);
  const put = (p: string, data: Buffer | string, mode = 0o644) => { writeFileSync(join(stage, p), data); chmodSync(join(stage, p), mode); };
  put('app/hello.txt', 'hello from strata\n');
  put('app/bin/run', '#!/bin/sh\necho run\n', 0o755);
  put('app/data/blob.bin', rng.bytes(3 * 1024 * 1024 + 123));
  put('app/données é.txt', 'unicode name\n');
  put('app/with space', 'spaces\n');
  const long = 'app/' + 'nested-directory-level/'.repeat(5);
  for (let i = 1; i <= 5; i++) mk('app/' + 'nested-directory-level/'.repeat(i), 0o755);
  put(long + 'a-file-whose-full-path-is-longer-than-one-hundred-bytes.txt', 'pax path\n');
  symlinkSync('hello.txt', join(stage, 'app/link'));
  symlinkSync('/etc/does-not-exist', join(stage, 'app/dangling'));
  linkSync(join(stage, 'app/hello.txt'), join(stage, 'app/hard'));
  put('app/owned', 'owned by 1000\n', 0o640);
  if (isRoot) chownSync(join(stage, 'app/owned'), 1000, 1001);
  return Buffer.from(spawnSyncBuffer('tar', [
    '--format=posix', '--sort=name', '--numeric-owner', `--mtime=@${T0}`,
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    '-C', stage, '-cf', '-', 'app',
  ]));
}

function spawnSyncBuffer(cmd: string, args: string[]): Buffer {
  const r = spawnSync(cmd, args, { maxBuffer: 512 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr?.toString()}`);
  return r.stdout;
}

/** Builds the base image with scripts/make-base-image.js and reads it back. */
export function buildBusybox(file: string, tag = 'busybox:latest'): FixtureImage {
  run(process.execPath, [join(REPO_ROOT, 'scripts/make-base-image.js'), '-o', file, '-t', tag, '--quiet']);
  return imageFromArchive(file)[0]!;
}

/** FixtureImages from a docker-archive or OCI archive on disk (layers decompressed). */
export function imageFromArchive(file: string): FixtureImage[] {
  return readArchive(file).images.map((img) => {
    const layers = img.layers.map((b) => maybeGunzip(b));
    const cfg = JSON.parse(img.config.toString()) as { rootfs: { diff_ids: Digest[] } };
    const diffIds = cfg.rootfs.diff_ids;
    return {
      id: sha256(img.config), config: img.config, diffIds, chainIds: chainIdsOf(diffIds),
      tags: img.repoTags ?? [], layers: layers.map((tar, i) => ({ diffId: diffIds[i]!, tar })),
    };
  });
}

export function buildBusyboxSkipReason(): string | undefined {
  for (const p of ['/bin/busybox', '/usr/bin/busybox']) if (existsSync(p)) return undefined;
  return 'busybox (Debian busybox-static) is not installed; run scripts/setup.sh';
}

/** Writes every good fixture into `dir` and describes them. */
export function buildFixtures(dir: string, only?: readonly FixtureName[]): Fixture[] {
  mkdirSync(dir, { recursive: true });
  const want = (n: FixtureName) => !only || only.includes(n);
  const out: Fixture[] = [];
  const write = (name: string, data: Buffer) => { const p = join(dir, name); writeFileSync(p, data); return p; };
  const l1 = multiLayer1();
  if (want('single')) {
    const img = imageFromLayers([gnuTarLayer(dir)], ['fx-single:latest'], { cmd: ['/app/bin/run'] });
    const file = write('single.tar', dockerArchive([img]));
    out.push({ name: 'single', description: 'one layer written by GNU tar --format=posix', file, dockerFile: file, images: [img], checkTags: true });
  }
  if (want('multi')) {
    const img = imageFromLayers([l1, multiLayer2(), multiLayer3()], ['fx-multi:v1', 'fx-multi:latest']);
    const file = write('multi.tar', dockerArchive([img]));
    out.push({ name: 'multi', description: '3 layers: whiteouts, opaque dirs, replaced files, hard links, xattr', file, dockerFile: file, images: [img], checkTags: true });
  }
  if (want('gzlayers')) {
    const img = imageFromLayers([randomLayer(21, 'gz1', 60), randomLayer(22, 'gz2', 40, 300_000)], ['fx-gzlayers:1']);
    const file = write('gzlayers.tar', dockerArchive([img], { gzipLayers: true }));
    out.push({ name: 'gzlayers', description: 'gzip-compressed layer members', file, dockerFile: file, images: [img], checkTags: true });
  }
  if (want('gzarchive')) {
    const empty = Buffer.alloc(1024);
    const img = imageFromLayers([randomLayer(31, 'arch', 80, 1_000_000), empty], ['fx-gzarchive:1']);
    const file = write('gzarchive.tar.gz', dockerArchive([img], { gzipArchive: true }));
    out.push({ name: 'gzarchive', description: 'whole archive gzipped; second layer is the empty tar', file, dockerFile: file, images: [img], checkTags: true });
  }
  if (want('shared')) {
    const a = imageFromLayers([l1, randomLayer(41, 'sa', 20)], ['fx-shared-a:1'], { created: '2023-11-14T22:13:20Z' });
    const b = imageFromLayers([l1, randomLayer(42, 'sb', 20)], ['fx-shared-b:1', 'fx-shared-b:2'], { created: '2023-11-14T22:13:21Z' });
    const file = write('shared.tar', dockerArchive([a, b]));
    out.push({ name: 'shared', description: 'two images sharing a base layer (also shared with multi)', file, dockerFile: file, images: [a, b], checkTags: true });
  }
  if (want('oci')) {
    // second layer from the archive team's independent tar builder: its own PAX header naming,
    // an xattr, and bytes after the end-of-archive marker (Docker keeps them in tar-split)
    const spec = buildSpecTar([
      { name: 'oci2/', mode: 0o755, mtime: T0 },
      { name: 'oci2/' + 'p'.repeat(110), body: 'long name via PAX\n', mtime: T0 },
      { name: 'oci2/attr', body: 'xattr\n', xattrs: { 'user.origin': 'tar-builder' }, mtime: T0 },
      { name: 'oci2/bin/', mode: 0o755, mtime: T0 + 1 },
      { name: 'oci2/bin/tool', body: new Rng(52).bytes(20_000), mode: 0o755, mtime: T0 + 2 },
    ], { trailing: Buffer.from('trailing bytes after the end-of-archive marker\n') });
    const img = imageFromLayers([randomLayer(51, 'oci1', 30), spec], ['fx-oci25:1']);
    const file = write('oci25.tar', ociArchive([img], { withDockerManifest: true }));
    out.push({ name: 'oci', description: 'OCI layout with Docker ≥25 manifest.json', file, dockerFile: file, images: [img], checkTags: true });
  }
  if (want('oci-pure')) {
    const img = imageFromLayers([randomLayer(61, 'pure1', 30), randomLayer(62, 'pure2', 10)], ['fx-oci:v1']);
    const file = write('oci-pure.tar', ociArchive([img], { gzipLayers: true }));
    const twin = write('oci-pure-twin.tar', dockerArchive([img]));
    out.push({ name: 'oci-pure', description: 'pure OCI layout (index.json only), gzip layers', file, dockerFile: twin, images: [img], checkTags: false });
  }
  if (want('busybox') && !buildBusyboxSkipReason()) {
    const file = join(dir, 'busybox.tar');
    const img = buildBusybox(file);
    out.push({ name: 'busybox', description: 'base image from busybox-static', file, dockerFile: file, images: [img], checkTags: true });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// hostile archives

export interface HostileFixture {
  name: string;
  file: string;
  /** What a clear error message mentions (loose). */
  message: RegExp;
  /** Paths that must not exist afterwards. */
  mustNotExist: string[];
}

/**
 * Hostile archives aimed at `sentinel` (a directory outside the data root whose contents the
 * test snapshots). `base` is a valid FixtureImage already loaded by the test (its first layer
 * is reused so a failing load shares a layer with a good image).
 */
export function buildHostileFixtures(dir: string, sentinel: string, base: FixtureImage): HostileFixture[] {
  mkdirSync(dir, { recursive: true });
  const out: HostileFixture[] = [];
  const up = '../'.repeat(24);
  const add = (name: string, data: Buffer, message: RegExp, mustNotExist: string[] = []) => {
    const d = join(dir, name, 'a', 'b');
    mkdirSync(d, { recursive: true });
    const file = join(d, `${name}.tar`);
    writeFileSync(file, data);
    out.push({ name, file, message, mustNotExist });
  };
  const okLayer = buildTar([D('ok'), F('ok/file', 'fine\n')]);
  const okImg = (layers: Buffer[], tag: string) => imageFromLayers(layers, [tag]);

  // manifest path traversal: the referenced path exists (and is a valid layer) outside the archive
  {
    const img = okImg([okLayer], 'evil-traversal:1');
    const target = join(dir, 'manifest-traversal', 'x');
    mkdirSync(target, { recursive: true });
    writeFileSync(join(target, 'layer.tar'), okLayer);
    add('manifest-traversal', dockerArchive([img], {
      manifestOverride: (m) => m.map((x) => ({ ...x, Layers: ['../../x/layer.tar'] })),
      extraFiles: [{ name: 'x/layer.tar', data: Buffer.from('not this one') }],
    }), /manifest|path|invalid|outside|escape|not found|no such/i);
  }
  {
    const img = okImg([okLayer], 'evil-config-traversal:1');
    const target = join(dir, 'config-traversal', 'x');
    mkdirSync(target, { recursive: true });
    writeFileSync(join(target, 'config.json'), img.config);
    add('config-traversal', dockerArchive([img], {
      manifestOverride: (m) => m.map((x) => ({ ...x, Config: '../../x/config.json' })),
    }), /manifest|config|path|invalid|outside|escape|not found|no such/i);
  }
  // absolute layer path to a valid layer on the host
  {
    const img = okImg([okLayer], 'evil-absolute:1');
    const hostLayer = join(sentinel, 'host-layer.tar');
    writeFileSync(hostLayer, okLayer);
    add('manifest-absolute', dockerArchive([img], {
      manifestOverride: (m) => m.map((x) => ({ ...x, Layers: [hostLayer] })),
    }), /manifest|path|invalid|absolute|outside|not found|no such/i);
  }
  // layer members escaping the layer directory
  add('layer-dotdot', dockerArchive([okImg([buildTar([D('ok'), F(`${up}${sentinel.slice(1)}/escape`, 'escaped\n'), F('../escape2', 'x')])], 'evil-dotdot:1')]),
    /invalid|escape|outside|\.\.|path|unsafe/i, [join(sentinel, 'escape')]);
  add('layer-absolute', dockerArchive([okImg([buildTar([D('ok'), F(`${sentinel}/evil`, 'evil\n'), F('/etc/strata-evil-test', 'evil\n')])], 'evil-abs:1')]),
    /invalid|absolute|outside|path|unsafe/i, [join(sentinel, 'evil'), '/etc/strata-evil-test']);
  add('symlink-absolute', dockerArchive([okImg([buildTar([D('ok'), S('ok/link', sentinel), F('ok/link/pwned', 'pwned\n')])], 'evil-symlink:1')]),
    /invalid|symlink|link|escape|outside|path|unsafe/i, [join(sentinel, 'pwned')]);
  add('symlink-relative', dockerArchive([okImg([buildTar([D('ok'), S('ok/rel', `${up}${sentinel.slice(1)}`), F('ok/rel/pwned2', 'pwned\n')])], 'evil-symlink2:1')]),
    /invalid|symlink|link|escape|outside|path|unsafe/i, [join(sentinel, 'pwned2')]);
  add('hardlink-passwd', dockerArchive([okImg([buildTar([D('etc'), H('etc/passwd-link', '/etc/passwd')])], 'evil-hardlink:1')]),
    /invalid|hard ?link|link|outside|path|unsafe|not found|no such/i);
  add('hardlink-escape', dockerArchive([okImg([buildTar([D('ok'), H('ok/secret', `${up}${sentinel.slice(1)}/secret`)])], 'evil-hardlink2:1')]),
    /invalid|hard ?link|link|escape|outside|path|unsafe|not found|no such/i);
  add('whiteout-device', dockerArchive([okImg([buildTar([D('ok'), { name: 'ok/dev', type: 'char', devmajor: 0, devminor: 0, mode: 0o600 }])], 'evil-chardev:1')]),
    /invalid|device|whiteout|0:0|refus|unsafe/i);
  add('overlay-xattr', dockerArchive([okImg([buildTar([D('ok', T0, 0o755, { pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y' } }), F('ok/f', 'x')])], 'evil-xattr:1')]),
    /invalid|xattr|overlay|trusted|refus|unsafe/i);
  // integrity problems
  {
    const img = okImg([okLayer], 'evil-diffid:1');
    const wrong = imageFromLayers([buildTar([D('other')])], ['evil-diffid:1']);
    add('diffid-mismatch', dockerArchive([{ ...img, id: wrong.id, config: wrong.config }], {
      layerBytes: () => okLayer,
    }), /diff ?id|digest|mismatch|expected/i);
  }
  {
    const big = buildTar([D('t'), F('t/payload', new Rng(7).bytes(200_000))]);
    const img = okImg([big], 'evil-truncated:1');
    add('truncated-layer', dockerArchive([img], { layerBytes: () => big.subarray(0, 100_000) }),
      /truncat|unexpected|end of|EOF|short|incomplete|invalid|diff ?id|digest|mismatch/i);
  }
  {
    // first layer is the preloaded image's base layer (shared); the second is truncated
    const bad = buildTar([D('t2'), F('t2/payload', new Rng(8).bytes(100_000))]);
    const img = imageFromLayers([base.layers[0]!.tar, bad], ['evil-second:1']);
    add('second-layer-truncated', dockerArchive([img], { layerBytes: (_im, i) => (i === 0 ? base.layers[0]!.tar : bad.subarray(0, 60_000)) }),
      /truncat|unexpected|end of|EOF|short|incomplete|invalid|diff ?id|digest|mismatch/i);
  }
  {
    const img = okImg([okLayer], 'evil-badgzip:1');
    const gz = gzipSync(okLayer);
    gz[gz.length - 6] = gz[gz.length - 6]! ^ 0xff; // corrupt the CRC32 trailer
    add('corrupt-gzip-layer', dockerArchive([img], { layerBytes: () => gz }), /gzip|crc|check|corrupt|invalid|unexpected|decompress|zlib|incorrect/i);
  }
  {
    const bad = buildSpecTar([{ name: 'ok/', mtime: T0 }, { name: 'ok/f', body: 'x', checksum: 1234 }]);
    add('bad-header-checksum', dockerArchive([okImg([bad], 'evil-checksum:1')]), /checksum|header|invalid|corrupt/i);
  }
  {
    const img = okImg([okLayer], 'evil-missing:1');
    add('missing-layer', dockerArchive([img], { omit: (n) => n.endsWith('layer.tar') }), /not found|no such|missing|layer|ENOENT/i);
  }
  {
    const img = okImg([okLayer], 'evil-nomanifest:1');
    add('missing-manifest', dockerArchive([img], { omit: (n) => n === 'manifest.json' || n === 'repositories' }), /manifest|invalid archive|not found/i);
  }
  {
    const img = okImg([okLayer], 'evil-badconfig:1');
    add('config-not-json', dockerArchive([{ ...img, config: Buffer.from('{"rootfs": not json') }]), /json|config|invalid|parse|unexpected/i);
  }
  {
    const img = okImg([okLayer, buildTar([D('ok2'), F('ok2/x', new Rng(9).bytes(50_000))])], 'evil-trunc-archive:1');
    const whole = dockerArchive([img]);
    add('truncated-archive', whole.subarray(0, Math.floor(whole.length * 0.6)), /truncat|unexpected|end of|EOF|short|incomplete|invalid|manifest|not found/i);
  }
  {
    const img = okImg([okLayer], 'evil-layers-count:1');
    add('layer-count-mismatch', dockerArchive([img], {
      manifestOverride: (m) => m.map((x) => ({ ...x, Layers: [...(x.Layers as string[]), ...(x.Layers as string[])] })),
    }), /layers|length|mismatch|expected|invalid/i);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// big images (crash test, bench)

export interface BigImageOptions {
  layers: number;
  filesPerLayer: number;
  /** Approximate payload bytes per layer. */
  bytesPerLayer: number;
  seed?: number;
  tag: string;
  /** Directory for the per-layer temp tars. */
  work: string;
}

/**
 * Streams a multi-layer docker-archive to `file`: varied file sizes, nested dirs, symlinks,
 * hard links; higher layers modify, white out and opaque some of the lower paths.
 */
export function writeBigImage(file: string, o: BigImageOptions): FixtureImage & { totalBytes: number; totalFiles: number } {
  mkdirSync(o.work, { recursive: true });
  const rng = new Rng(o.seed ?? 99);
  const layerFiles: Array<{ path: string; digest: Digest; size: number }> = [];
  let totalBytes = 0;
  let totalFiles = 0;
  const earlier: string[] = [];
  for (let l = 0; l < o.layers; l++) {
    const w = new TarFileWriter(join(o.work, `big-layer-${l}.tar`));
    const top = `l${l}`;
    w.add(D(top));
    const perDir = 50;
    const dirs = Math.ceil(o.filesPerLayer / perDir);
    // sizes: mostly small, some medium, a few large; scaled to the byte budget
    const budget = o.bytesPerLayer;
    // scale the size distribution (mean ~51 KiB) to the budget; large files top it up at the end
    const scale = Math.min(1, budget / (o.filesPerLayer * 52_000));
    let spent = 0;
    const touched = new Set<string>();
    const mine: string[] = [];
    for (let d = 0; d < dirs; d++) {
      const dir = `${top}/g${Math.floor(d / 20)}/d${d}`;
      if (d % 20 === 0) w.add(D(`${top}/g${Math.floor(d / 20)}`));
      w.add(D(dir));
      for (let f = 0; f < perDir && d * perDir + f < o.filesPerLayer; f++) {
        const p = `${dir}/f${f}`;
        const r = rng.next();
        if (f > 0 && r < 0.04) { w.add(S(p, `f${f - 1}`)); totalFiles++; continue; }
        if (f > 0 && r < 0.07) { w.add(H(p, `${dir}/f0`)); totalFiles++; continue; }
        let size = r < 0.6 ? rng.int(2048) : r < 0.95 ? 2048 + rng.int(64 * 1024) : 256 * 1024 + rng.int(1 << 20);
        size = Math.floor(size * scale);
        const left = budget - spent;
        size = Math.max(0, Math.min(size, left > 0 ? left : rng.int(512)));
        w.add(F(p, rng.int(4) === 0 ? rng.text(size) : rng.bytes(size), rng.int(10) === 0 ? 0o755 : 0o644, T0 + rng.int(100000)));
        spent += size;
        totalBytes += size;
        totalFiles++;
        if (f === 1) mine.push(p);
      }
    }
    if (spent < budget) {
      // top up with large files to reach the byte budget
      let i = 0;
      while (spent < budget) {
        const size = Math.min(budget - spent, 16 << 20);
        w.add(F(`${top}/fill-${i++}.bin`, rng.bytes(size)));
        spent += size;
        totalBytes += size;
        totalFiles++;
      }
    }
    // modify / delete some paths of lower layers
    if (l > 0) {
      const victim = `l${l - 1}/g0/d1`;
      for (let k = 0; k < Math.min(50, earlier.length); k++) {
        const p = earlier[rng.int(earlier.length)]!;
        const parent = dirname(p);
        if (touched.has(p) || parent === victim) continue;
        touched.add(p);
        if (rng.int(2)) w.add(F(p, `replaced in layer ${l}\n`, 0o644, T0 + l));
        else w.add(WH(parent, p.slice(parent.length + 1)));
      }
      w.add(D(victim, T0 + l));
      w.add(OPQ(victim));
      w.add(F(`${victim}/after-opaque`, `layer ${l}\n`));
    }
    earlier.push(...mine);
    const res = w.finish(l % 2 === 0 ? 20 : 0);
    layerFiles.push({ path: res.path, digest: res.digest, size: res.size });
  }
  const diffIds = layerFiles.map((l) => l.digest);
  const config = makeConfig(diffIds, {});
  const id = sha256(config);
  const chainIds = chainIdsOf(diffIds);
  const out = new TarFileWriter(file);
  out.add({ name: `${hex(id)}.json`, data: config });
  const paths: string[] = [];
  layerFiles.forEach((l, i) => {
    const dirName = hex(sha256(chainIds[i]!));
    out.add(D(dirName));
    out.addFromFile({ name: `${dirName}/layer.tar` }, l.path);
    paths.push(`${dirName}/layer.tar`);
  });
  out.add({ name: 'manifest.json', data: JSON.stringify([{ Config: `${hex(id)}.json`, RepoTags: [o.tag], Layers: paths }]) + '\n' });
  out.finish();
  return {
    id, config, diffIds, chainIds, tags: [o.tag], totalBytes, totalFiles,
    // layer bytes stay on disk (too big to hold): tests needing them read the files
    layers: layerFiles.map((l) => ({ diffId: l.digest, tar: Buffer.alloc(0), file: l.path })),
  };
}

/** An image with `count` small layers, each adding, replacing and deleting a few files. */
export function manyLayerImage(count: number, tag: string, seed = 5): FixtureImage {
  const rng = new Rng(seed);
  const layers: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const entries: TarEntry[] = [D('layers', T0 + i), F(`layers/l${i}`, rng.text(200 + rng.int(4000))), F('layers/current', `layer ${i}\n`)];
    entries.push(D(`data${i % 7}`, T0 + i), F(`data${i % 7}/blob${i}`, rng.bytes(1000 + rng.int(20_000))));
    if (i > 2) entries.push(WH('layers', `l${i - 2}`));
    if (i % 10 === 9) entries.push(D(`data${(i + 1) % 7}`, T0 + i), OPQ(`data${(i + 1) % 7}`));
    layers.push(buildTar(entries));
  }
  return imageFromLayers(layers, [tag]);
}

// ---------------------------------------------------------------------------------------------
// tree snapshots (what a filesystem view contains)

export interface NodeInfo {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  sha?: string;
  link?: string;
  rdev?: number;
  mtime: number;
  /** Other paths in the tree sharing this inode (hard links), sorted. */
  hardlinks?: string[];
  xattrs?: Record<string, string>;
}

export type Tree = Map<string, NodeInfo>;

export interface SnapshotOptions {
  /** Reads extended attributes (needs `xattr`). */
  xattr?: (path: string) => Record<string, string>;
}

/** Walks `root` (not following symlinks) into a comparable map keyed by relative path. */
export function snapshotTree(root: string, o: SnapshotOptions = {}): Tree {
  const tree: Tree = new Map();
  const inodes = new Map<string, string[]>();
  const walk = (rel: string) => {
    const abs = rel ? join(root, rel) : root;
    for (const name of readdirSync(abs).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(root, r);
      const st = lstatSync(p, { bigint: false });
      const mode = st.mode & 0o7777;
      const base = { mode, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
      let info: NodeInfo;
      if (st.isDirectory()) info = { type: 'dir', ...base };
      else if (st.isSymbolicLink()) info = { type: 'symlink', ...base, link: readlinkSync(p) };
      else if (st.isFile()) info = { type: 'file', ...base, size: st.size, sha: createHash('sha256').update(readFileSync(p)).digest('hex') };
      else if (st.isCharacterDevice()) info = { type: 'char', ...base, rdev: st.rdev };
      else if (st.isBlockDevice()) info = { type: 'block', ...base, rdev: st.rdev };
      else if (st.isFIFO()) info = { type: 'fifo', ...base };
      else info = { type: 'socket', ...base };
      if (o.xattr) {
        const x = o.xattr(p);
        if (Object.keys(x).length) info.xattrs = x;
      }
      if (!st.isDirectory() && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const list = inodes.get(key) ?? [];
        list.push(r);
        inodes.set(key, list);
      }
      tree.set(r, info);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  for (const list of inodes.values()) {
    if (list.length < 2) continue;
    for (const p of list) tree.get(p)!.hardlinks = list.filter((x) => x !== p).sort();
  }
  return tree;
}

/** The tree a tar describes (e.g. `docker export`), with hard links resolved like snapshotTree. */
export function treeFromTar(entries: ParsedEntry[]): Tree {
  const tree: Tree = new Map();
  const links: Array<[string, string]> = [];
  for (const e of entries) {
    const name = e.name.replace(/^\.?\/+/, '').replace(/\/+$/, '');
    if (!name) continue;
    const base = { mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, mtime: e.mtime };
    switch (e.typeflag) {
      case '5': tree.set(name, { type: 'dir', ...base }); break;
      case '2': tree.set(name, { type: 'symlink', ...base, link: e.linkname }); break;
      case '1': links.push([name, e.linkname.replace(/^\.?\/+/, '')]); break;
      case '3': tree.set(name, { type: 'char', ...base, rdev: e.devmajor * 256 + e.devminor }); break;
      case '4': tree.set(name, { type: 'block', ...base, rdev: e.devmajor * 256 + e.devminor }); break;
      case '6': tree.set(name, { type: 'fifo', ...base }); break;
      default: tree.set(name, { type: 'file', ...base, size: e.data.length, sha: createHash('sha256').update(e.data).digest('hex') });
    }
  }
  const groups = new Map<string, string[]>();
  for (const [name, target] of links) {
    const t = tree.get(target);
    if (t) tree.set(name, { ...t });
    const g = groups.get(target) ?? [target];
    g.push(name);
    groups.set(target, g);
  }
  for (const g of groups.values()) for (const p of g) { const n = tree.get(p); if (n) n.hardlinks = g.filter((x) => x !== p).sort(); }
  return tree;
}

export interface DiffOptions {
  /** Ignore mtimes of directories (views where dir times legitimately differ). */
  ignoreDirMtime?: boolean;
  ignoreMtime?: (path: string, node: NodeInfo) => boolean;
  ignorePath?: (path: string) => boolean;
  ignoreHardlinks?: boolean;
  ignoreXattrs?: boolean;
  /** Skip any field of any node (by the expected node). */
  ignoreField?: (path: string, node: NodeInfo, field: keyof NodeInfo) => boolean;
}

/** Human-readable differences between two trees (empty = equal). */
export function diffTrees(expected: Tree, actual: Tree, o: DiffOptions = {}): string[] {
  const out: string[] = [];
  const keys = new Set([...expected.keys(), ...actual.keys()]);
  for (const k of [...keys].sort()) {
    if (o.ignorePath?.(k)) continue;
    const a = expected.get(k);
    const b = actual.get(k);
    if (!a) { out.push(`+ ${k} (${b!.type}) only in actual`); continue; }
    if (!b) { out.push(`- ${k} (${a.type}) missing in actual`); continue; }
    const fields: Array<keyof NodeInfo> = ['type', 'mode', 'uid', 'gid', 'size', 'sha', 'link', 'rdev', 'mtime', 'hardlinks', 'xattrs'];
    for (const f of fields) {
      if (f === 'mtime' && ((o.ignoreDirMtime && a.type === 'dir') || o.ignoreMtime?.(k, a))) continue;
      if (f === 'hardlinks' && o.ignoreHardlinks) continue;
      if (f === 'xattrs' && o.ignoreXattrs) continue;
      if (o.ignoreField?.(k, a, f)) continue;
      const va = JSON.stringify(a[f]);
      const vb = JSON.stringify(b[f]);
      if (va !== vb) out.push(`~ ${k}: ${f} expected ${f === 'mode' ? (a[f] as number).toString(8) : va} got ${f === 'mode' ? (b[f] as number).toString(8) : vb}`);
    }
  }
  return out;
}

export function relativeTo(root: string, p: string): string {
  return relative(root, p);
}

/** Sets atime/mtime (helper for staged trees). */
export function touch(p: string, t: number, symlink = false): void {
  if (symlink) lutimesSync(p, t, t);
  else utimesSync(p, t, t);
}

// ---------------------------------------------------------------------------------------------
// what a layer tar should leave in a driver's layer directory

/**
 * The tree a layer tar should produce in an overlay2 `diff` dir: whiteouts as char 0:0,
 * opaque markers as `trusted.overlay.opaque=y`, PAX `SCHILY.xattr.*` applied, hard links
 * grouped. Whiteout mode/mtime are left out of comparisons by `WHITEOUT_FIELDS`.
 */
export function expectedOverlayLayer(tar: Buffer): Tree {
  const tree: Tree = new Map();
  const groups = new Map<string, Set<string>>();
  const removeSubtree = (p: string) => {
    for (const k of [...tree.keys()]) if (k === p || k.startsWith(p + '/')) tree.delete(k);
  };
  for (const e of parseTar(tar)) {
    const name = e.name.replace(/^(\.\/)+/, '').replace(/^\/+/, '').replace(/\/+$/, '');
    if (!name || name === '.') continue;
    const slash = name.lastIndexOf('/');
    const dir = slash < 0 ? '' : name.slice(0, slash);
    const base = name.slice(slash + 1);
    const xattrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(e.pax)) if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice(13)] = v;
    const meta = { mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, mtime: e.mtime, ...(Object.keys(xattrs).length ? { xattrs } : {}) };
    if (base === '.wh..wh..opq') {
      const d = tree.get(dir);
      if (d) d.xattrs = { ...(d.xattrs ?? {}), 'trusted.overlay.opaque': 'y' };
      continue;
    }
    if (base.startsWith('.wh.')) {
      const p = (dir ? dir + '/' : '') + base.slice(4);
      removeSubtree(p);
      tree.set(p, { type: 'char', mode: 0, uid: e.uid, gid: e.gid, rdev: 0, mtime: e.mtime });
      continue;
    }
    const prev = tree.get(name);
    let node: NodeInfo;
    switch (e.typeflag) {
      case '5': node = { type: 'dir', ...meta }; break;
      case '2': node = { type: 'symlink', ...meta, mode: prev?.type === 'symlink' ? prev.mode : 0o777, link: e.linkname }; break;
      case '1': {
        const target = e.linkname.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
        // the link's own header metadata is applied to the shared inode (as Docker's applier does)
        const t = tree.get(target);
        node = t ? { ...t, mode: meta.mode, uid: meta.uid, gid: meta.gid, mtime: meta.mtime } : { type: 'file', ...meta };
        const g = groups.get(target) ?? new Set([target]);
        g.add(name);
        groups.set(target, g);
        for (const member of g) {
          const m = tree.get(member);
          if (m) Object.assign(m, { mode: node.mode, uid: node.uid, gid: node.gid, mtime: node.mtime });
        }
        break;
      }
      case '3': node = { type: 'char', ...meta, rdev: e.devmajor * 256 + e.devminor }; break;
      case '4': node = { type: 'block', ...meta, rdev: e.devmajor * 256 + e.devminor }; break;
      case '6': node = { type: 'fifo', ...meta }; break;
      default: node = { type: 'file', ...meta, size: e.data.length, sha: createHash('sha256').update(e.data).digest('hex') };
    }
    if (node.type === 'symlink') node.mode = 0o777;
    if (prev && !(prev.type === 'dir' && node.type === 'dir')) removeSubtree(name);
    if (prev && prev.type === 'dir' && node.type === 'dir' && prev.xattrs?.['trusted.overlay.opaque']) {
      node.xattrs = { ...(node.xattrs ?? {}), 'trusted.overlay.opaque': 'y' };
    }
    tree.set(name, node);
  }
  for (const g of groups.values()) {
    const members = [...g].filter((p) => tree.has(p));
    for (const p of members) {
      const n = tree.get(p)!;
      const others = members.filter((x) => x !== p).sort();
      if (others.length) n.hardlinks = others;
    }
  }
  return tree;
}

/** Whiteout device metadata Docker does not take from the tar (mode, mtime). */
export function isWhiteoutNode(n: NodeInfo): boolean {
  return n.type === 'char' && n.rdev === 0;
}

// ---------------------------------------------------------------------------------------------
// Docker's on-disk layout, read the way seed 003 walks it

export interface LayoutLayer {
  chainId: Digest;
  diffId: Digest;
  parent?: Digest;
  cacheId: string;
  size: string;
  layerdbDir: string;
  /** overlay2: `<home>/<cache-id>/diff`; vfs: `<home>/dir/<cache-id>`. */
  layerDir: string;
  /** overlay2 only. */
  link?: string;
  lower?: string;
}

export interface LayoutImage {
  id: Digest;
  config: Buffer;
  diffIds: Digest[];
  layers: LayoutLayer[];
}

export function readFileSyncSafe(p: string): string | undefined {
  return readText(p);
}

function readText(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * imagedb/content/sha256/<id> → rootfs.diff_ids → chainIDs → layerdb/sha256/<chain>/{diff,
 * parent,cache-id,size} → driver dir. Throws a precise error at the first broken link.
 */
export function walkLayout(dataRoot: string, driver: string, imageId: string): LayoutImage {
  const imageRoot = join(dataRoot, 'image', driver);
  const cfgPath = join(imageRoot, 'imagedb', 'content', 'sha256', hex(imageId));
  const config = readFileSync(cfgPath);
  if (sha256(config) !== `sha256:${hex(imageId)}`) throw new Error(`${cfgPath} does not hash to its name`);
  const parsed = JSON.parse(config.toString()) as { rootfs?: { diff_ids?: Digest[] } };
  const diffIds = parsed.rootfs?.diff_ids ?? [];
  const chains = chainIdsOf(diffIds);
  const layers: LayoutLayer[] = chains.map((chainId, i) => {
    const dir = join(imageRoot, 'layerdb', 'sha256', hex(chainId));
    if (!existsSync(dir)) throw new Error(`layerdb has no ${dir} for diffID ${diffIds[i]}`);
    const diff = readText(join(dir, 'diff'));
    if (diff !== diffIds[i]) throw new Error(`${dir}/diff is ${JSON.stringify(diff)}, want ${diffIds[i]}`);
    const parent = readText(join(dir, 'parent')) as Digest | undefined;
    const wantParent = i === 0 ? undefined : chains[i - 1];
    if (parent !== wantParent) throw new Error(`${dir}/parent is ${JSON.stringify(parent)}, want ${JSON.stringify(wantParent)}`);
    const cacheId = readText(join(dir, 'cache-id')) ?? '';
    if (!/^[0-9a-f]{64}$/.test(cacheId)) throw new Error(`${dir}/cache-id is ${JSON.stringify(cacheId)}, want 64 hex`);
    const size = readText(join(dir, 'size')) ?? '';
    if (!/^\d+$/.test(size)) throw new Error(`${dir}/size is ${JSON.stringify(size)}`);
    if (driver === 'overlay2') {
      const home = join(dataRoot, 'overlay2');
      const layerDir = join(home, cacheId, 'diff');
      if (!existsSync(layerDir)) throw new Error(`missing ${layerDir} (cache-id of ${chainId})`);
      const link = readText(join(home, cacheId, 'link')) ?? '';
      if (!/^[A-Z2-7]{26}$/.test(link)) throw new Error(`${home}/${cacheId}/link is ${JSON.stringify(link)}`);
      const target = readlinkOr(join(home, 'l', link));
      if (target !== `../${cacheId}/diff`) throw new Error(`${home}/l/${link} points to ${JSON.stringify(target)}, want ../${cacheId}/diff`);
      const lower = readText(join(home, cacheId, 'lower'));
      return { chainId, diffId: diffIds[i]!, parent, cacheId, size, layerdbDir: dir, layerDir, link, lower };
    }
    const layerDir = join(dataRoot, driver, 'dir', cacheId);
    if (!existsSync(layerDir)) throw new Error(`missing ${layerDir} (cache-id of ${chainId})`);
    return { chainId, diffId: diffIds[i]!, parent, cacheId, size, layerdbDir: dir, layerDir };
  });
  if (driver === 'overlay2') {
    layers.forEach((l, i) => {
      const want = layers.slice(0, i).reverse().map((x) => `l/${x.link}`).join(':');
      if ((l.lower ?? '') !== want) throw new Error(`overlay2/${l.cacheId}/lower is ${JSON.stringify(l.lower)}, want ${JSON.stringify(want)}`);
      const hasWork = existsSync(join(dataRoot, 'overlay2', l.cacheId, 'work'));
      if (hasWork !== i > 0) throw new Error(`overlay2/${l.cacheId}/work ${hasWork ? 'exists' : 'is missing'} (layer ${i})`);
    });
  }
  return { id: `sha256:${hex(imageId)}`, config, diffIds, layers };
}

function readlinkOr(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

/**
 * Mounts the merged read-only view of `layers` (bottom-up) the way Docker does for a
 * committed layer: `lowerdir=<top diff>:<home>/l/<parent links>…` — with util-linux mount, not
 * strata's code. Returns the directory to read (the diff dir itself for one layer, the vfs dir
 * for vfs) and an unmount function.
 */
export function mountView(dataRoot: string, driver: string, layout: LayoutImage, mountpoint: string): { path: string; release: () => void } {
  const top = layout.layers.at(-1);
  if (!top) throw new Error('image has no layers');
  if (driver !== 'overlay2' || layout.layers.length === 1) return { path: top.layerDir, release: () => {} };
  const home = join(dataRoot, 'overlay2');
  const lowers = [top.layerDir, ...(top.lower ?? '').split(':').filter(Boolean).map((l) => join(home, l))];
  mkdirSync(mountpoint, { recursive: true });
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lowers.join(':')}`, mountpoint], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount overlay at ${mountpoint} failed: ${r.stderr}`);
  return {
    path: mountpoint,
    release: () => { spawnSync('umount', [mountpoint]); },
  };
}

/** Extended attributes of a path (not following symlinks), via strata's native addon. */
export function readXattrs(p: string): Record<string, string> {
  const addon = native();
  const out: Record<string, string> = {};
  for (const name of addon.llistxattr(p).sort()) {
    if (name === 'security.selinux') continue;
    const v = addon.lgetxattr(p, name);
    if (v !== undefined) out[name] = v.toString('utf8');
  }
  return out;
}
