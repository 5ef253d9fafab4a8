/**
 * tar-split records (Docker's `layerdb/sha256/<chainID>/tar-split.json.gz`): everything needed
 * to rebuild a layer tar byte for byte except file payloads, which are named and checksummed.
 *
 * Format (facts §4.2/§4.3): newline-terminated JSON objects, keys in the order
 * `type, name | name_raw, size, payload, position`; `type` 1 = file, 2 = segment. Segments carry
 * raw bytes (base64); files carry the CRC-64/ISO of their payload (8 bytes big-endian, base64)
 * or `null` when the header size is 0.
 *
 * We write the Docker ≥ 25 form (tar-split ≥ v0.11.5): no empty segment is emitted for the final
 * zero-length read. Older Docker (20.10–24) wrote one extra `{"type":2,"payload":"",...}` line;
 * both forms reassemble to the same bytes, and the reader accepts either.
 */
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { InvalidArchiveError } from '../errors.js';
import { zlib } from '../sys/builtins.js';
import { Crc64 } from './crc64.js';
import { cleanPath, type TarHeader } from './tar-header.js';

export const ENTRY_FILE = 1;
export const ENTRY_SEGMENT = 2;

/** A decoded tar-split entry. `name` is a binary string (one char per byte) of the tar name. */
export interface TarSplitEntry {
  type: typeof ENTRY_FILE | typeof ENTRY_SEGMENT;
  /** Entry name bytes (files only). */
  name?: Buffer;
  size: number;
  /** Segment bytes, or the 8-byte CRC of a file payload; null for an empty file. */
  payload: Buffer | null;
  position: number;
}

/** Trailing data after the end-of-archive marker is stored in segments of at most this size. */
export const MAX_TRAILING_SEGMENT = 1 << 20;

const GO_HTML_ESCAPES: Record<string, string> = {
  '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029',
};

/**
 * A JSON string literal as Go's encoding/json writes it (HTML-safe escapes for `<>&` and
 * U+2028/2029; control characters as JSON.stringify does, which matches Go ≥ 1.22).
 */
export function goJsonString(s: string): string {
  const json = JSON.stringify(s);
  return /[<>&\u2028\u2029]/.test(json) ? json.replace(/[<>&\u2028\u2029]/g, (c) => GO_HTML_ESCAPES[c]!) : json;
}

/**
 * Builds the JSON lines while a tar stream is parsed. Feed it the TarParser events: `raw`
 * bytes accumulate into the next segment, `file` starts a file entry (flushing the segment),
 * `fileData` feeds the CRC, `fileEnd` writes the entry; `end` flushes the final segment and
 * `trailing` records bytes after the end-of-archive marker.
 */
export class TarSplitRecorder {
  readonly #out: (text: string) => void;
  #segParts: Buffer[] = [];
  #segLen = 0;
  #position = 0;
  readonly #seen = new Set<string>();
  #fileLine: string | undefined;
  #fileSize = 0;
  #crc: Crc64 | undefined;
  #lines = '';

  /** `out` receives text in batches (whole lines). */
  constructor(out: (text: string) => void) {
    this.#out = out;
  }

  raw(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#segParts.push(chunk);
    this.#segLen += chunk.length;
  }

  file(header: TarHeader): void {
    this.#flushSegment();
    const raw = header.nameRaw;
    const binName = raw ? raw.toString('latin1') : header.name;
    // tar-split compares cleaned names (filepath.Clean), so "a/" and "./a" collide.
    const key = cleanPath(raw ? binName : Buffer.from(header.name, 'utf8').toString('latin1'));
    if (this.#seen.has(key)) {
      throw new InvalidArchiveError(`duplicates of file paths not supported ("${header.name}")`, { entry: header.name });
    }
    this.#seen.add(key);
    let line = `{"type":1,`;
    if (raw) line += `"name_raw":"${raw.toString('base64')}",`;
    else if (header.name !== '') line += `"name":${goJsonString(header.name)},`;
    if (header.size !== 0) line += `"size":${header.size},`;
    this.#fileLine = line;
    this.#fileSize = header.size;
    this.#crc = header.size > 0 ? new Crc64() : undefined;
  }

  fileData(chunk: Buffer): void {
    this.#crc?.update(chunk);
  }

  fileEnd(): void {
    const payload = this.#crc ? `"${this.#crc.digest().toString('base64')}"` : 'null';
    this.#push(`${this.#fileLine}"payload":${payload},"position":${this.#position++}}\n`);
    this.#fileLine = undefined;
    this.#crc = undefined;
    this.#fileSize = 0;
  }

  /** End of the archive proper: the padding and end-of-archive blocks become a segment. */
  end(): void {
    this.#flushSegment();
  }

  trailing(chunk: Buffer): void {
    for (let off = 0; off < chunk.length; off += MAX_TRAILING_SEGMENT) {
      this.#segment(chunk.subarray(off, Math.min(chunk.length, off + MAX_TRAILING_SEGMENT)));
    }
  }

  /** Flushes buffered lines to `out`. Call once at the very end. */
  close(): void {
    this.#flushSegment();
    if (this.#lines.length > 0) {
      this.#out(this.#lines);
      this.#lines = '';
    }
  }

  get pendingFileSize(): number {
    return this.#fileSize;
  }

  #flushSegment(): void {
    if (this.#segLen === 0) return;
    const bytes = this.#segParts.length === 1 ? this.#segParts[0]! : Buffer.concat(this.#segParts, this.#segLen);
    this.#segParts = [];
    this.#segLen = 0;
    this.#segment(bytes);
  }

  #segment(bytes: Buffer): void {
    this.#push(`{"type":2,"payload":"${bytes.toString('base64')}","position":${this.#position++}}\n`);
  }

  #push(line: string): void {
    this.#lines += line;
    if (this.#lines.length >= 1 << 16) {
      this.#out(this.#lines);
      this.#lines = '';
    }
  }
}

// ---------------------------------------------------------------------------------------------
// reading

function parseEntry(line: string): TarSplitEntry {
  let obj: { type?: unknown; name?: unknown; name_raw?: unknown; size?: unknown; payload?: unknown; position?: unknown };
  try {
    obj = JSON.parse(line);
  } catch (err) {
    throw new InvalidArchiveError('invalid tar-split record: bad JSON line', { cause: err });
  }
  const type = obj.type;
  if (type !== ENTRY_FILE && type !== ENTRY_SEGMENT) throw new InvalidArchiveError(`invalid tar-split record: unknown entry type ${String(type)}`);
  const size = obj.size === undefined ? 0 : obj.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new InvalidArchiveError('invalid tar-split record: bad size');
  let payload: Buffer | null = null;
  if (typeof obj.payload === 'string') payload = Buffer.from(obj.payload, 'base64');
  else if (obj.payload !== null && obj.payload !== undefined) throw new InvalidArchiveError('invalid tar-split record: bad payload');
  const entry: TarSplitEntry = { type, size, payload, position: typeof obj.position === 'number' ? obj.position : -1 };
  if (type === ENTRY_FILE) {
    if (typeof obj.name_raw === 'string' && obj.name_raw !== '') entry.name = Buffer.from(obj.name_raw, 'base64');
    else if (typeof obj.name === 'string') entry.name = Buffer.from(obj.name, 'utf8');
    else entry.name = Buffer.alloc(0);
    if (size > 0 && (payload === null || payload.length !== 8)) throw new InvalidArchiveError('invalid tar-split record: file entry without checksum');
  }
  return entry;
}

/** Iterates the entries of a gzip-compressed tar-split record. */
/**
 * A whole tar-split record, inflated. It holds every tar header base64-encoded (~1.4 KB per
 * file), so the 1 GiB cap is still far above any real layer's record.
 */
function inflateRecord(gz: Buffer): string {
  try {
    return zlib().gunzipSync(gz, { maxOutputLength: 1 << 30 }).toString('utf8');
  } catch (err) {
    throw new InvalidArchiveError('invalid tar-split record: cannot decompress', { cause: err });
  }
}

/**
 * Whether a file entry's payload was in the archive. A zero checksum with a size marks bytes
 * a header announced but never carried (header-only types such as a hard link with a size).
 */
export function carriesPayload(e: TarSplitEntry): boolean {
  return e.type === ENTRY_FILE && e.size > 0 && e.payload !== null && e.payload.readBigUInt64BE(0) !== 0n;
}

/**
 * The entries of a whole tar-split record (gzip of JSON lines) held in memory; for callers
 * that work synchronously (a worker rebuilding a layer).
 */
export function* tarSplitEntries(gz: Buffer): Generator<TarSplitEntry> {
  const text = inflateRecord(gz);
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    const line = nl < 0 ? text.slice(start) : text.slice(start, nl);
    if (line.trim() !== '') yield parseEntry(line);
    if (nl < 0) return;
    start = nl + 1;
  }
}

const ZERO_CRC = Buffer.alloc(8).toString('base64');

/**
 * Bytes one tar-split line adds to the tar. Lines are read by position rather than parsed:
 * a record is tens of thousands of lines, and `save` sizes every layer before writing. The
 * writer (Go's encoder, or ours) puts "type" first; inside a JSON string a quote is always
 * escaped, so `,"size":` and `,"payload":` can only be keys. Anything else is parsed.
 */
function entryTarBytes(text: string, start: number, end: number): number {
  const line = text.slice(start, end);
  if (line.trim() === '') return 0;
  const payloadAt = line.indexOf(',"payload":');
  if (line.startsWith('{"type":2,') && payloadAt >= 0) {
    if (line.startsWith('null', payloadAt + 11)) return 0;
    const from = payloadAt + 12;
    return Buffer.byteLength(line.slice(from, line.indexOf('"', from)), 'base64');
  }
  if (line.startsWith('{"type":1,') && payloadAt >= 0) {
    const sizeAt = line.indexOf(',"size":');
    if (sizeAt < 0 || sizeAt > payloadAt) return 0;
    const size = Number(line.slice(sizeAt + 8, payloadAt));
    if (!Number.isSafeInteger(size) || size < 0) parseEntry(line); // throws its error
    // A zero checksum: bytes announced but never carried (see carriesPayload).
    return line.startsWith(`"${ZERO_CRC}"`, payloadAt + 11) ? 0 : size;
  }
  const e = parseEntry(line);
  if (e.type === ENTRY_SEGMENT) return e.payload?.length ?? 0;
  return carriesPayload(e) ? e.size : 0;
}

/**
 * Length of the tar a tar-split record rebuilds: its segments plus its file payloads. Sizes
 * only, so segment payloads are measured, not decoded.
 */
export function tarSplitTarSize(gz: Buffer): number {
  const text = inflateRecord(gz);
  let total = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    total += entryTarBytes(text, start, end);
    start = end + 1;
  }
  return total;
}

export async function* readTarSplit(input: Readable | AsyncIterable<Buffer>): AsyncGenerator<TarSplitEntry> {
  const gunzip = zlib().createGunzip();
  const src = input as AsyncIterable<Buffer>;
  // Feed gunzip in the background with backpressure; errors surface through the iteration.
  const feed = (async () => {
    try {
      for await (const chunk of src) {
        if (!gunzip.write(chunk)) await new Promise<void>((r) => gunzip.once('drain', r));
      }
      gunzip.end();
    } catch (err) {
      gunzip.destroy(err as Error);
    }
  })();
  let rest = '';
  const decoder = new StringDecoder('utf8');
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      const text = rest + decoder.write(chunk);
      let start = 0;
      for (;;) {
        const nl = text.indexOf('\n', start);
        if (nl < 0) break;
        if (nl > start) yield parseEntry(text.slice(start, nl));
        start = nl + 1;
      }
      rest = text.slice(start);
    }
    rest += decoder.end();
    if (rest.trim() !== '') yield parseEntry(rest);
  } catch (err) {
    if (err instanceof InvalidArchiveError) throw err;
    throw new InvalidArchiveError('invalid tar-split record: cannot decompress', { cause: err });
  } finally {
    gunzip.destroy();
    await feed;
  }
}
