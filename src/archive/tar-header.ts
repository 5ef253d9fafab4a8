/**
 * 512-byte tar header blocks: decode (ustar, GNU, PAX, v7) and encode exactly as Go's
 * archive/tar writes them (what Docker produces).
 *
 * Byte semantics: tar names are byte strings. A name that is valid UTF-8 is exposed as a JS
 * string; one that is not keeps its bytes in `nameRaw`/`linknameRaw` (then `name`/`linkname`
 * hold a latin1 rendering, good for messages only). Internally the Go algorithms (path
 * splitting, ASCII filtering, length limits) run on "binary strings": one char per byte.
 */
import { InvalidArchiveError, InvalidArgumentError } from '../errors.js';
import { cleanPath } from '../sys/go-path.js';

export const BLOCK_SIZE = 512;

/** Typeflag bytes as characters: '0' file, '1' hard link, '2' symlink, '3' char, '4' block,
 * '5' dir, '6' fifo, 'x' PAX, 'g' PAX global, 'L' GNU long name, 'K' GNU long link. */
export type Typeflag = string;

export interface TarHeader {
  name: string;
  linkname: string;
  typeflag: Typeflag;
  /** Permission + setuid/setgid/sticky bits (type bits, if present in the field, removed). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch; PAX may give fractions. */
  mtime: number;
  atime?: number;
  ctime?: number;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /**
   * PAX records of this entry's own extended header (`x`), values decoded as UTF-8. Global
   * headers (`g`) are not merged into later entries (Go's reader and Docker ignore them); a
   * global header is itself surfaced as an entry with typeflag 'g' and its records here.
   */
  pax?: Record<string, string>;
  /** `SCHILY.xattr.*` records, name without the prefix → raw value bytes. */
  xattrs?: Map<string, Buffer>;
  /** Present only when the name bytes are not valid UTF-8. */
  nameRaw?: Buffer;
  /** Present only when the link name bytes are not valid UTF-8. */
  linknameRaw?: Buffer;
}

export const TYPE_REG = '0';
export const TYPE_LINK = '1';
export const TYPE_SYMLINK = '2';
export const TYPE_CHAR = '3';
export const TYPE_BLOCK = '4';
export const TYPE_DIR = '5';
export const TYPE_FIFO = '6';
export const TYPE_CONT = '7';
export const TYPE_PAX = 'x';
export const TYPE_PAX_GLOBAL = 'g';
export const TYPE_GNU_LONGNAME = 'L';
export const TYPE_GNU_LONGLINK = 'K';
export const TYPE_GNU_SPARSE = 'S';

export const PAX_SCHILY_XATTR = 'SCHILY.xattr.';

/** Types whose header `size` never announces a payload (Go's isHeaderOnlyType). */
export function isHeaderOnlyType(typeflag: Typeflag): boolean {
  return (
    typeflag === TYPE_LINK || typeflag === TYPE_SYMLINK || typeflag === TYPE_CHAR ||
    typeflag === TYPE_BLOCK || typeflag === TYPE_DIR || typeflag === TYPE_FIFO
  );
}

/** Bytes of payload that follow a header in the archive. */
export function payloadSize(header: TarHeader): number {
  return isHeaderOnlyType(header.typeflag) ? 0 : header.size;
}

/** Zero bytes needed after `size` payload bytes to reach a block boundary. */
export function blockPadding(size: number): number {
  return (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;
}

// ---------------------------------------------------------------------------------------------
// field layout (offset, length)

const F_NAME = 0, L_NAME = 100;
const F_MODE = 100, L_MODE = 8;
const F_UID = 108, L_UID = 8;
const F_GID = 116, L_GID = 8;
const F_SIZE = 124, L_SIZE = 12;
const F_MTIME = 136, L_MTIME = 12;
const F_CHKSUM = 148, L_CHKSUM = 8;
const F_TYPE = 156;
const F_LINK = 157, L_LINK = 100;
const F_MAGIC = 257;
const F_VERSION = 263;
const F_UNAME = 265, L_UNAME = 32;
const F_GNAME = 297, L_GNAME = 32;
const F_DEVMAJ = 329, L_DEVMAJ = 8;
const F_DEVMIN = 337, L_DEVMIN = 8;
const F_PREFIX = 345, L_PREFIX = 155;
const F_GNU_ATIME = 345, F_GNU_CTIME = 357, L_GNU_TIME = 12;
const F_STAR_TRAILER = 508;

export type HeaderFormat = 'v7' | 'ustar' | 'gnu' | 'star';

const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

/** Decodes name bytes: a plain string when valid UTF-8, else latin1 text + the raw bytes. */
export function decodeName(bytes: Buffer): { text: string; raw?: Buffer } {
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return { text: bytes.toString('latin1', 0, bytes.length) };
  try {
    return { text: utf8Fatal.decode(bytes) };
  } catch {
    return { text: bytes.toString('latin1', 0, bytes.length), raw: Buffer.from(bytes) };
  }
}

/** The exact bytes of a header's name (raw when present). */
export function nameBytes(header: Pick<TarHeader, 'name' | 'nameRaw'>): Buffer {
  return header.nameRaw ?? Buffer.from(header.name, 'utf8');
}

export function linknameBytes(header: Pick<TarHeader, 'linkname' | 'linknameRaw'>): Buffer {
  return header.linknameRaw ?? Buffer.from(header.linkname, 'utf8');
}

function cstringEnd(block: Buffer, off: number, len: number): number {
  const end = off + len;
  for (let i = off; i < end; i++) if (block[i] === 0) return i;
  return end;
}

function cstring(block: Buffer, off: number, len: number): Buffer {
  return block.subarray(off, cstringEnd(block, off, len));
}

/** Go's parseNumeric: base-256 when the top bit is set, else octal trimmed of spaces/NULs. */
export function parseNumeric(block: Buffer, off: number, len: number, field: string): number {
  const first = block[off]!;
  if (first & 0x80) {
    // Two's complement big-endian; 0xff lead byte means negative.
    const negative = (first & 0x40) !== 0;
    let value = 0;
    for (let i = 0; i < len; i++) {
      let b = block[off + i]!;
      if (i === 0) b &= 0x7f;
      if (negative) b ^= 0xff;
      value = value * 256 + b;
      if (value > Number.MAX_SAFE_INTEGER) {
        throw new InvalidArchiveError(`invalid tar header: ${field} out of range`);
      }
    }
    return negative ? -(value + 1) : value;
  }
  let start = off;
  let end = off + len;
  while (start < end && (block[start] === 0x20 || block[start] === 0)) start++;
  while (end > start && (block[end - 1] === 0x20 || block[end - 1] === 0)) end--;
  let value = 0;
  for (let i = start; i < end; i++) {
    const d = block[i]! - 0x30;
    if (d < 0 || d > 7) throw new InvalidArchiveError(`invalid tar header: bad octal ${field}`);
    value = value * 8 + d;
  }
  return value;
}

function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK_SIZE; i++) if (block[i] !== 0) return false;
  return true;
}

/** Unsigned and signed sums with the checksum field read as spaces. */
function checksums(block: Buffer): [number, number] {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    let b = block[i]!;
    if (i >= F_CHKSUM && i < F_CHKSUM + L_CHKSUM) b = 0x20;
    unsigned += b;
    signed += b < 128 ? b : b - 256;
  }
  return [unsigned, signed];
}

function detectFormat(block: Buffer): HeaderFormat {
  // magic "ustar\0" version "00" (POSIX) or "ustar " " \0" (GNU); anything else is v7.
  if (block[F_MAGIC] === 0x75 && block[F_MAGIC + 1] === 0x73 && block[F_MAGIC + 2] === 0x74 &&
      block[F_MAGIC + 3] === 0x61 && block[F_MAGIC + 4] === 0x72) {
    const m5 = block[F_MAGIC + 5];
    const v0 = block[F_VERSION];
    const v1 = block[F_VERSION + 1];
    if (m5 === 0 && v0 === 0x30 && v1 === 0x30) {
      const star = block[F_STAR_TRAILER] === 0x74 && block[F_STAR_TRAILER + 1] === 0x61 &&
        block[F_STAR_TRAILER + 2] === 0x72 && block[F_STAR_TRAILER + 3] === 0;
      return star ? 'star' : 'ustar';
    }
    if (m5 === 0x20 && v0 === 0x20 && v1 === 0) return 'gnu';
  }
  return 'v7';
}

/** Decodes a header block and also reports its format (ustar vs GNU matters to readers). */
export function decodeHeaderBlockEx(block: Buffer): { header: TarHeader; format: HeaderFormat } | null {
  if (block.length < BLOCK_SIZE) throw new InvalidArchiveError('invalid tar header: short block');
  if (isZeroBlock(block)) return null;
  const stored = parseNumeric(block, F_CHKSUM, L_CHKSUM, 'checksum');
  const [unsigned, signed] = checksums(block);
  if (stored !== unsigned && stored !== signed) {
    throw new InvalidArchiveError('invalid tar header: checksum mismatch');
  }
  const format = detectFormat(block);
  let nameBuf = cstring(block, F_NAME, L_NAME);
  let atime: number | undefined;
  let ctime: number | undefined;
  if (format === 'ustar' || format === 'star') {
    const prefixLen = format === 'star' ? 131 : L_PREFIX;
    const prefix = cstring(block, F_PREFIX, prefixLen);
    if (prefix.length > 0) nameBuf = Buffer.concat([prefix, Buffer.from('/'), nameBuf]);
  } else if (format === 'gnu') {
    if (block[F_GNU_ATIME] !== 0) atime = parseNumeric(block, F_GNU_ATIME, L_GNU_TIME, 'atime');
    if (block[F_GNU_CTIME] !== 0) ctime = parseNumeric(block, F_GNU_CTIME, L_GNU_TIME, 'ctime');
  }
  const name = decodeName(nameBuf);
  const link = decodeName(cstring(block, F_LINK, L_LINK));
  let typeflag = String.fromCharCode(block[F_TYPE]!);
  if (typeflag === '\0') typeflag = TYPE_REG;
  const v7 = format === 'v7';
  const header: TarHeader = {
    name: name.text,
    linkname: link.text,
    typeflag,
    mode: parseNumeric(block, F_MODE, L_MODE, 'mode') & 0o7777,
    uid: parseNumeric(block, F_UID, L_UID, 'uid'),
    gid: parseNumeric(block, F_GID, L_GID, 'gid'),
    size: parseNumeric(block, F_SIZE, L_SIZE, 'size'),
    mtime: parseNumeric(block, F_MTIME, L_MTIME, 'mtime'),
    uname: v7 ? '' : decodeName(cstring(block, F_UNAME, L_UNAME)).text,
    gname: v7 ? '' : decodeName(cstring(block, F_GNAME, L_GNAME)).text,
    devmajor: v7 ? 0 : parseNumeric(block, F_DEVMAJ, L_DEVMAJ, 'devmajor'),
    devminor: v7 ? 0 : parseNumeric(block, F_DEVMIN, L_DEVMIN, 'devminor'),
  };
  if (header.size < 0) throw new InvalidArchiveError('invalid tar header: negative size');
  if (atime !== undefined) header.atime = atime;
  if (ctime !== undefined) header.ctime = ctime;
  if (name.raw) header.nameRaw = name.raw;
  if (link.raw) header.linknameRaw = link.raw;
  return { header, format };
}

/** Decodes one raw header block; returns null for an all-zero block. Throws on a bad checksum. */
export function decodeHeaderBlock(block: Buffer): TarHeader | null {
  return decodeHeaderBlockEx(block)?.header ?? null;
}

// ---------------------------------------------------------------------------------------------
// PAX records

/** Parses a PAX extended header payload into key → raw value bytes (later keys win). */
export function parsePaxRecords(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    // "<len> <key>=<value>\n", len counts the whole record including its own digits.
    let sp = pos;
    let len = 0;
    while (sp < data.length && data[sp]! >= 0x30 && data[sp]! <= 0x39) {
      len = len * 10 + (data[sp]! - 0x30);
      sp++;
    }
    if (sp === pos || data[sp] !== 0x20 || len <= sp - pos + 1 || pos + len > data.length ||
        data[pos + len - 1] !== 0x0a) {
      // GNU and Go both stop at NUL padding some writers leave after the last record.
      if (data[pos] === 0) break;
      throw new InvalidArchiveError('invalid tar header: malformed PAX record');
    }
    const rec = data.subarray(sp + 1, pos + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new InvalidArchiveError('invalid tar header: malformed PAX record');
    const key = rec.toString('utf8', 0, eq);
    const value = Buffer.from(rec.subarray(eq + 1));
    // As Go's validPAXRecord: names may not hide a NUL (the kernel would see a shorter path).
    if ((key === 'path' || key === 'linkpath' || key === 'uname' || key === 'gname') && value.includes(0)) {
      throw new InvalidArchiveError(`invalid tar header: NUL byte in PAX ${key}`);
    }
    out.set(key, value);
    pos += len;
  }
  return out;
}

function parsePaxInt(v: Buffer, key: string): number {
  const s = v.toString('latin1');
  if (!/^-?[0-9]+$/.test(s)) throw new InvalidArchiveError(`invalid tar header: bad PAX ${key} "${s}"`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new InvalidArchiveError(`invalid tar header: PAX ${key} out of range`);
  return n;
}

function parsePaxTime(v: Buffer, key: string): number {
  const s = v.toString('latin1');
  if (!/^-?[0-9]+(\.[0-9]*)?$/.test(s)) {
    throw new InvalidArchiveError(`invalid tar header: bad PAX ${key} "${s}"`);
  }
  return Number(s);
}

/**
 * Applies an entry's PAX records the way Go's reader does (an empty value keeps the ustar
 * field). GNU sparse records are refused: strata cannot reproduce such payloads.
 */
export function applyPaxRecords(header: TarHeader, records: Map<string, Buffer>): void {
  const pax: Record<string, string> = {};
  for (const [key, value] of records) {
    pax[key] = value.toString('utf8');
    if (key.startsWith('GNU.sparse.')) {
      throw new InvalidArchiveError(`sparse files are not supported ("${header.name}")`, { entry: header.name });
    }
    if (value.length === 0) continue;
    switch (key) {
      case 'path': {
        const d = decodeName(value);
        header.name = d.text;
        if (d.raw) header.nameRaw = d.raw;
        else delete header.nameRaw;
        break;
      }
      case 'linkpath': {
        const d = decodeName(value);
        header.linkname = d.text;
        if (d.raw) header.linknameRaw = d.raw;
        else delete header.linknameRaw;
        break;
      }
      case 'uname': header.uname = value.toString('utf8'); break;
      case 'gname': header.gname = value.toString('utf8'); break;
      case 'uid': header.uid = parsePaxInt(value, key); break;
      case 'gid': header.gid = parsePaxInt(value, key); break;
      case 'size': {
        const size = parsePaxInt(value, key);
        if (size < 0) throw new InvalidArchiveError('invalid tar header: negative size');
        header.size = size;
        break;
      }
      case 'mtime': header.mtime = parsePaxTime(value, key); break;
      case 'atime': header.atime = parsePaxTime(value, key); break;
      case 'ctime': header.ctime = parsePaxTime(value, key); break;
      default:
        if (key.startsWith(PAX_SCHILY_XATTR)) {
          header.xattrs ??= new Map();
          header.xattrs.set(key.slice(PAX_SCHILY_XATTR.length), value);
        }
    }
  }
  header.pax = pax;
}

/**
 * Collects the meta entries (PAX `x`, GNU `L`/`K`) that precede a real entry and applies
 * them to it, with Go's precedence: PAX first, then GNU long names override.
 */
export class PendingMeta {
  #pax: Map<string, Buffer> | undefined;
  #longName: Buffer | undefined;
  #longLink: Buffer | undefined;

  get empty(): boolean {
    return this.#pax === undefined && this.#longName === undefined && this.#longLink === undefined;
  }

  /** Records a meta entry's payload (PAX `x`, GNU `L`/`K`); other typeflags are ignored. */
  add(typeflag: Typeflag, payload: Buffer): void {
    if (typeflag === TYPE_PAX) this.#pax = parsePaxRecords(payload);
    else if (typeflag === TYPE_GNU_LONGNAME) this.#longName = cstring(payload, 0, payload.length);
    else if (typeflag === TYPE_GNU_LONGLINK) this.#longLink = cstring(payload, 0, payload.length);
  }

  apply(header: TarHeader): void {
    if (this.#pax) applyPaxRecords(header, this.#pax);
    if (this.#longName && this.#longName.length > 0) {
      const d = decodeName(this.#longName);
      header.name = d.text;
      if (d.raw) header.nameRaw = d.raw;
      else delete header.nameRaw;
    }
    if (this.#longLink && this.#longLink.length > 0) {
      const d = decodeName(this.#longLink);
      header.linkname = d.text;
      if (d.raw) header.linknameRaw = d.raw;
      else delete header.linknameRaw;
    }
    this.clear();
  }

  clear(): void {
    this.#pax = undefined;
    this.#longName = undefined;
    this.#longLink = undefined;
  }
}

/** True for typeflags whose payload describes the next entry rather than a file. */
export function isMetaType(typeflag: Typeflag): boolean {
  return typeflag === TYPE_PAX || typeflag === TYPE_GNU_LONGNAME || typeflag === TYPE_GNU_LONGLINK;
}

/** A global PAX header as the entry Go's reader returns for it: name and records only. */
export function globalHeaderEntry(block: TarHeader, records: Map<string, Buffer>): TarHeader {
  const pax: Record<string, string> = {};
  for (const [k, v] of records) pax[k] = v.toString('utf8');
  const header: TarHeader = {
    name: block.name, linkname: '', typeflag: TYPE_PAX_GLOBAL, mode: 0, uid: 0, gid: 0, size: 0,
    mtime: 0, uname: '', gname: '', devmajor: 0, devminor: 0, pax,
  };
  if (block.nameRaw) header.nameRaw = block.nameRaw;
  return header;
}

// ---------------------------------------------------------------------------------------------
// Go path helpers on binary strings (one char per byte)

export { cleanPath } from '../sys/go-path.js';

function toBinary(b: Buffer): string {
  return b.toString('latin1', 0, b.length);
}

function isASCIIBinary(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** Go's toASCII over bytes: drops every byte that belongs to a non-ASCII sequence. */
function toASCIIBinary(s: string): string {
  if (isASCIIBinary(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x80) out += s[i];
  return out;
}

// ---------------------------------------------------------------------------------------------
// encoding (Go's tar.Writer with Format unset)

const NAME_SIZE = 100;
const PREFIX_SIZE = 155;

function fitsInOctal(width: number, x: number): boolean {
  const octBits = (width - 1) * 3;
  return x >= 0 && (width >= 22 || x < 2 ** octBits);
}

/** Go's formatter.formatString over a binary string: copy, NUL-terminate if room. */
function putString(block: Buffer, off: number, len: number, s: string): void {
  const n = Math.min(s.length, len);
  block.write(s.slice(0, n), off, n, 'latin1');
  if (s.length < len) block[off + s.length] = 0;
  // A regular file whose truncated v7 name ends in '/' would look like a directory to some
  // readers; Go cuts the trailing slashes with a NUL.
  if (s.length > len && block[off + len - 1] === 0x2f) {
    let m = len - 1;
    while (m > 0 && s.charCodeAt(m - 1) === 0x2f) m--;
    block[off + m] = 0;
  }
}

/** Go's formatOctal: zero-padded octal leaving room for a trailing NUL; 0 when it can't fit. */
function putOctal(block: Buffer, off: number, len: number, x: number): void {
  if (!fitsInOctal(len, x)) x = 0;
  let s = x.toString(8);
  if (len - s.length - 1 > 0) s = '0'.repeat(len - s.length - 1) + s;
  putString(block, off, len, s);
}

function setMagicAndChecksum(block: Buffer): void {
  block.write('ustar\x00', F_MAGIC, 6, 'latin1');
  block.write('00', F_VERSION, 2, 'latin1');
  block.fill(0x20, F_CHKSUM, F_CHKSUM + L_CHKSUM);
  let sum = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) sum += block[i]!;
  putOctal(block, F_CHKSUM, 7, sum);
  block[F_CHKSUM + 7] = 0x20;
}

function splitUSTARPath(name: string): [string, string] | undefined {
  let length = name.length;
  if (length <= NAME_SIZE || !isASCIIBinary(name)) return undefined;
  if (length > PREFIX_SIZE + 1) length = PREFIX_SIZE + 1;
  else if (name.charCodeAt(length - 1) === 0x2f) length--;
  const i = name.lastIndexOf('/', length - 1);
  const nlen = name.length - i - 1;
  const plen = i;
  if (i <= 0 || nlen > NAME_SIZE || nlen === 0 || plen > PREFIX_SIZE) return undefined;
  return [name.slice(0, i), name.slice(i + 1)];
}

interface EncodeFields {
  name: string;
  linkname: string;
  uname: string;
  gname: string;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  devmajor: number;
  devminor: number;
}

function templateV7Plus(f: EncodeFields, str: (s: string) => string): Buffer {
  const block = Buffer.alloc(BLOCK_SIZE);
  block.write(f.typeflag, F_TYPE, 1, 'latin1');
  putString(block, F_NAME, L_NAME, str(f.name));
  putString(block, F_LINK, L_LINK, str(f.linkname));
  putOctal(block, F_MODE, L_MODE, f.mode);
  putOctal(block, F_UID, L_UID, f.uid);
  putOctal(block, F_GID, L_GID, f.gid);
  putOctal(block, F_SIZE, L_SIZE, f.size);
  putOctal(block, F_MTIME, L_MTIME, f.mtime);
  putString(block, F_UNAME, L_UNAME, str(f.uname));
  putString(block, F_GNAME, L_GNAME, str(f.gname));
  putOctal(block, F_DEVMAJ, L_DEVMAJ, f.devmajor);
  putOctal(block, F_DEVMIN, L_DEVMIN, f.devminor);
  return block;
}

/** One PAX record, length self-inclusive, on binary strings (lengths count bytes). */
function formatPaxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let size = body.length;
  size += String(size).length;
  let record = String(size) + body;
  if (record.length !== size) record = String(record.length) + body;
  return record;
}

function validPaxRecord(key: string, value: string): boolean {
  if (key === '' || key.includes('=')) return false;
  if (key === 'path' || key === 'linkpath' || key === 'uname' || key === 'gname') return !value.includes('\0');
  return !key.includes('\0');
}

const BASIC_KEYS = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname', 'mtime', 'atime', 'ctime']);

function binaryUtf8(s: string): string {
  return isASCIIBinary(s) ? s : toBinary(Buffer.from(s, 'utf8'));
}

/**
 * Encodes a header as Go's tar.Writer would for the same tar.Header with Format unset:
 * plain USTAR when representable, otherwise a PAX extended header
 * (`<dir>/PaxHeaders.0/<base>`) followed by the USTAR block. Returns whole blocks.
 * mtime is rounded to the second and atime/ctime are dropped, as Go does without a format.
 */
export function encodeHeader(header: TarHeader): Buffer {
  const typeflag = header.typeflag === '' || header.typeflag === '\0'
    ? (header.name.endsWith('/') ? TYPE_DIR : TYPE_REG)
    : header.typeflag;
  const f: EncodeFields = {
    name: header.nameRaw ? toBinary(header.nameRaw) : binaryUtf8(header.name),
    linkname: header.linknameRaw ? toBinary(header.linknameRaw) : binaryUtf8(header.linkname),
    uname: binaryUtf8(header.uname),
    gname: binaryUtf8(header.gname),
    typeflag,
    mode: header.mode,
    uid: header.uid,
    gid: header.gid,
    size: header.size,
    mtime: Math.floor(header.mtime + 0.5),
    devmajor: header.devmajor,
    devminor: header.devminor,
  };
  const userPax = new Map<string, string>();
  for (const [k, v] of Object.entries(header.pax ?? {})) userPax.set(k, binaryUtf8(v));

  let ustarOk = true;
  let paxOk = true;
  let paxOnly = false;
  const paxHdrs = new Map<string, string>();
  const why: string[] = [];

  const verifyString = (s: string, size: number, field: string, key: string | null): void => {
    const tooLong = s.length > size;
    if (!isASCIIBinary(s) || tooLong) {
      if (!(key === 'path' && splitUSTARPath(s))) {
        ustarOk = false;
        why.push(`USTAR cannot encode ${field}`);
      }
      if (key === null) paxOk = false;
      else paxHdrs.set(key, s);
    }
    if (key !== null && userPax.get(key) === s) paxHdrs.set(key, s);
  };
  const verifyNumeric = (n: number, size: number, field: string, key: string | null): void => {
    if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`tar header ${field} is not an integer: ${n}`);
    if (!fitsInOctal(size, n)) {
      ustarOk = false;
      why.push(`USTAR cannot encode ${field}=${n}`);
      if (key === null) paxOk = false;
      else paxHdrs.set(key, String(n));
    }
    if (key !== null && userPax.get(key) === String(n)) paxHdrs.set(key, String(n));
  };

  verifyString(f.name, L_NAME, 'name', 'path');
  verifyString(f.linkname, L_LINK, 'linkname', 'linkpath');
  verifyString(f.uname, L_UNAME, 'uname', 'uname');
  verifyString(f.gname, L_GNAME, 'gname', 'gname');
  verifyNumeric(f.mode, L_MODE, 'mode', null);
  verifyNumeric(f.uid, L_UID, 'uid', 'uid');
  verifyNumeric(f.gid, L_GID, 'gid', 'gid');
  verifyNumeric(f.size, L_SIZE, 'size', 'size');
  verifyNumeric(f.devmajor, L_DEVMAJ, 'devmajor', null);
  verifyNumeric(f.devminor, L_DEVMIN, 'devminor', null);
  // mtime: only an out-of-range value needs PAX (sub-seconds were rounded away above).
  if (!fitsInOctal(L_MTIME, f.mtime)) {
    ustarOk = false;
    paxHdrs.set('mtime', String(f.mtime));
  }
  if (userPax.get('mtime') === String(f.mtime)) paxHdrs.set('mtime', String(f.mtime));

  switch (typeflag) {
    case TYPE_REG: case TYPE_CHAR: case TYPE_BLOCK: case TYPE_FIFO: case TYPE_GNU_SPARSE:
      if (f.name.endsWith('/')) throw new InvalidArgumentError(`tar header "${header.name}": filename may not have trailing slash`);
      break;
    case TYPE_PAX: case TYPE_GNU_LONGNAME: case TYPE_GNU_LONGLINK:
      throw new InvalidArgumentError('cannot manually encode PAX or GNU long-name headers');
    case TYPE_PAX_GLOBAL:
      paxOnly = true;
      break;
  }
  if (header.xattrs && header.xattrs.size > 0) {
    for (const [k, v] of header.xattrs) paxHdrs.set(PAX_SCHILY_XATTR + binaryUtf8(k), toBinary(v));
    paxOnly = true;
  }
  if (userPax.size > 0) {
    for (const [k, v] of userPax) {
      const key = binaryUtf8(k);
      if (paxHdrs.has(key) || BASIC_KEYS.has(key)) continue;
      paxHdrs.set(key, v);
    }
    paxOnly = true;
  }
  for (const [k, v] of paxHdrs) {
    if (!validPaxRecord(k, v)) throw new InvalidArgumentError(`invalid PAX record: "${k} = ${v}"`);
  }

  if (ustarOk && !paxOnly) {
    const split = splitUSTARPath(f.name);
    const fields = split ? { ...f, name: split[1] } : f;
    const block = templateV7Plus(fields, (s) => s);
    if (split) putString(block, F_PREFIX, L_PREFIX, split[0]);
    setMagicAndChecksum(block);
    return block;
  }
  if (!paxOk) throw new InvalidArgumentError(`tar header "${header.name}" cannot be encoded: ${why.join('; ')}`);

  const keys = [...paxHdrs.keys()].sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
  let data = '';
  for (const k of keys) data += formatPaxRecord(k, paxHdrs.get(k)!);
  const isGlobal = typeflag === TYPE_PAX_GLOBAL;
  let paxName: string;
  if (isGlobal) {
    paxName = f.name === '' ? 'GlobalHead.0.0' : f.name;
  } else {
    const slash = f.name.lastIndexOf('/');
    const dir = f.name.slice(0, slash + 1);
    const file = f.name.slice(slash + 1);
    paxName = cleanPath([dir, 'PaxHeaders.0', file].filter((x) => x !== '').join('/'));
  }
  paxName = toASCIIBinary(paxName);
  if (paxName.length > NAME_SIZE) paxName = paxName.slice(0, NAME_SIZE);
  paxName = paxName.replace(/\/+$/, '');
  if (data.length > 1 << 20) throw new InvalidArgumentError(`PAX header of "${header.name}" too long`);

  const paxBlock = Buffer.alloc(BLOCK_SIZE);
  paxBlock.write(isGlobal ? TYPE_PAX_GLOBAL : TYPE_PAX, F_TYPE, 1, 'latin1');
  putString(paxBlock, F_NAME, L_NAME, paxName);
  putOctal(paxBlock, F_MODE, L_MODE, 0);
  putOctal(paxBlock, F_UID, L_UID, 0);
  putOctal(paxBlock, F_GID, L_GID, 0);
  putOctal(paxBlock, F_SIZE, L_SIZE, data.length);
  putOctal(paxBlock, F_MTIME, L_MTIME, 0);
  setMagicAndChecksum(paxBlock);
  const dataBuf = Buffer.alloc(data.length + blockPadding(data.length));
  dataBuf.write(data, 0, 'latin1');
  if (isGlobal) return Buffer.concat([paxBlock, dataBuf]);

  const main = templateV7Plus(f, toASCIIBinary);
  setMagicAndChecksum(main);
  return Buffer.concat([paxBlock, dataBuf, main]);
}
