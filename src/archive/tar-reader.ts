/**
 * Tar parsing: a synchronous push parser for the hot paths (layer unpack, tar-split capture),
 * a pull-style `readTarEntries` for everyone else, and `indexTarFile` for seekable files.
 *
 * The push parser reports "raw" bytes the way tar-split's patched Go reader accounts them:
 * header blocks, meta payloads (PAX, GNU long names), padding and the end-of-archive blocks.
 * Only file payloads are not raw. Everything after the end-of-archive marker is "trailing".
 *
 * End-of-input handling follows Go's reader, which Docker uses: input that stops cleanly on a
 * header boundary (or inside the padding after a payload) ends the archive without the two
 * zero blocks; input that stops inside a header, a meta payload or a file payload is an error.
 */
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { InvalidArchiveError } from '../errors.js';
import {
  BLOCK_SIZE, PendingMeta, TYPE_GNU_SPARSE, TYPE_PAX_GLOBAL, blockPadding, decodeHeaderBlock,
  globalHeaderEntry, isMetaType, nameBytes, parsePaxRecords, payloadSize, type TarHeader,
} from './tar-header.js';

export interface TarParserLimits {
  /** Largest PAX / GNU long-name payload accepted (default 1 MiB, as Go). */
  maxMetaSize?: number;
  /** Longest entry name in bytes (default unlimited). */
  maxPathLength?: number;
}

export interface TarParserEvents {
  /** A real entry (meta headers already applied); `size` payload bytes follow. */
  header(header: TarHeader, size: number): void;
  data(chunk: Buffer): void;
  entryEnd(): void;
  raw?(chunk: Buffer): void;
  /** The end of the archive (end-of-archive blocks, or a clean end of input). */
  end?(): void;
  /** Bytes after the end-of-archive marker, as they arrive. */
  trailing?(chunk: Buffer): void;
}

const S_HEADER = 0;
const S_META = 1;
const S_BODY = 2;
const S_PAD = 3;
const S_EOF2 = 4;
const S_DONE = 5;

const DEFAULT_MAX_META = 1 << 20;

const unexpectedEof = () => new InvalidArchiveError('invalid tar archive: unexpected end of input (truncated archive)');

/** Synchronous push parser: `write` chunks, then `finish`. Throws InvalidArchiveError. */
export class TarParser {
  readonly #ev: TarParserEvents;
  readonly #maxMeta: number;
  readonly #maxPath: number;
  #state = S_HEADER;
  readonly #block = Buffer.alloc(BLOCK_SIZE);
  #fill = 0;
  #remaining = 0;
  #pad = 0;
  #meta: Buffer | undefined;
  #metaFill = 0;
  #metaHeader: TarHeader | undefined;
  readonly #pending = new PendingMeta();
  #ended = false;

  constructor(events: TarParserEvents, limits: TarParserLimits = {}) {
    this.#ev = events;
    this.#maxMeta = limits.maxMetaSize ?? DEFAULT_MAX_META;
    this.#maxPath = limits.maxPathLength ?? Infinity;
  }

  /** True once the end-of-archive marker was seen. */
  get done(): boolean {
    return this.#state === S_DONE;
  }

  write(chunk: Buffer): void {
    const n = chunk.length;
    let off = 0;
    const ev = this.#ev;
    while (off < n) {
      switch (this.#state) {
        case S_BODY: {
          const take = Math.min(this.#remaining, n - off);
          ev.data(off === 0 && take === n ? chunk : chunk.subarray(off, off + take));
          off += take;
          this.#remaining -= take;
          if (this.#remaining === 0) {
            ev.entryEnd();
            this.#startPad();
          }
          break;
        }
        case S_HEADER:
        case S_EOF2: {
          let block: Buffer;
          if (this.#fill === 0 && n - off >= BLOCK_SIZE) {
            block = chunk.subarray(off, off + BLOCK_SIZE);
            off += BLOCK_SIZE;
          } else {
            const take = Math.min(BLOCK_SIZE - this.#fill, n - off);
            chunk.copy(this.#block, this.#fill, off, off + take);
            this.#fill += take;
            off += take;
            if (this.#fill < BLOCK_SIZE) break;
            this.#fill = 0;
            block = this.#block;
          }
          ev.raw?.(block === this.#block ? Buffer.from(block) : block);
          this.#onBlock(block);
          break;
        }
        case S_META: {
          const meta = this.#meta!;
          const take = Math.min(meta.length - this.#metaFill, n - off);
          chunk.copy(meta, this.#metaFill, off, off + take);
          ev.raw?.(chunk.subarray(off, off + take));
          this.#metaFill += take;
          off += take;
          if (this.#metaFill === meta.length) this.#onMetaDone();
          break;
        }
        case S_PAD: {
          const take = Math.min(this.#pad, n - off);
          ev.raw?.(chunk.subarray(off, off + take));
          off += take;
          this.#pad -= take;
          if (this.#pad === 0) this.#state = S_HEADER;
          break;
        }
        case S_DONE: {
          ev.trailing?.(off === 0 ? chunk : chunk.subarray(off));
          off = n;
          break;
        }
      }
    }
  }

  /** Declares the end of input; throws when it cuts an entry short. */
  finish(): void {
    if (this.#ended) return;
    switch (this.#state) {
      case S_HEADER:
      case S_EOF2:
        if (this.#fill !== 0) throw unexpectedEof();
        break;
      case S_PAD:
      case S_DONE:
        break;
      default:
        throw unexpectedEof();
    }
    this.#ended = true;
    if (this.#state !== S_DONE) this.#ev.end?.();
    this.#state = S_DONE;
  }

  #startPad(): void {
    this.#pad = blockPadding(this.#padBase);
    this.#state = this.#pad > 0 ? S_PAD : S_HEADER;
  }

  #padBase = 0;

  #onBlock(block: Buffer): void {
    if (this.#state === S_EOF2) {
      if (!isZero(block)) throw new InvalidArchiveError('invalid tar archive: data after a zero block');
      this.#state = S_DONE;
      this.#ended = true;
      this.#ev.end?.();
      return;
    }
    const header = decodeHeaderBlock(block);
    if (header === null) {
      this.#state = S_EOF2;
      return;
    }
    if (header.typeflag === TYPE_GNU_SPARSE) {
      throw new InvalidArchiveError(`sparse files are not supported ("${header.name}")`, { entry: header.name });
    }
    if (isMetaType(header.typeflag) || header.typeflag === TYPE_PAX_GLOBAL) {
      if (header.size > this.#maxMeta) {
        throw new InvalidArchiveError(`invalid tar archive: ${header.typeflag} header of ${header.size} bytes exceeds the limit`);
      }
      this.#metaHeader = header;
      this.#meta = Buffer.allocUnsafe(header.size);
      this.#metaFill = 0;
      this.#padBase = header.size;
      if (header.size === 0) this.#onMetaDone();
      else this.#state = S_META;
      return;
    }
    this.#pending.apply(header);
    const size = payloadSize(header);
    if (nameBytes(header).length > this.#maxPath) {
      throw new InvalidArchiveError(`invalid entry name "${header.name}": longer than ${this.#maxPath} bytes`, { entry: header.name });
    }
    this.#padBase = size;
    this.#ev.header(header, size);
    if (size > 0) {
      this.#remaining = size;
      this.#state = S_BODY;
    } else {
      this.#ev.entryEnd();
      this.#state = S_HEADER;
    }
  }

  #onMetaDone(): void {
    const header = this.#metaHeader!;
    const payload = this.#meta!;
    this.#meta = undefined;
    this.#metaHeader = undefined;
    if (header.typeflag === TYPE_PAX_GLOBAL) {
      // Go's reader returns a global header as an entry of its own and forgets pending
      // local meta; tar-split records it as a file entry without payload.
      this.#pending.clear();
      this.#ev.header(globalHeaderEntry(header, parsePaxRecords(payload)), 0);
      this.#ev.entryEnd();
    } else {
      this.#pending.add(header.typeflag, payload);
    }
    this.#startPad();
  }
}

function isZero(block: Buffer): boolean {
  for (let i = 0; i < BLOCK_SIZE; i++) if (block[i] !== 0) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// pull adapter

export interface TarEntry {
  header: TarHeader;
  /** Payload bytes; consume it before asking for the next entry (or it is skipped). */
  body: AsyncIterable<Buffer>;
}

type Ev = { k: 0; h: TarHeader } | { k: 1; c: Buffer } | { k: 2 };

/**
 * Iterates the entries of a tar stream. Global PAX headers are returned as entries with
 * typeflag 'g' (no payload). Input after the end-of-archive marker is not read.
 *
 * @example
 * for await (const { header, body } of readTarEntries(createReadStream(path))) {
 *   if (header.name === 'manifest.json') manifest = Buffer.concat(await Array.fromAsync(body));
 * }
 */
export async function* readTarEntries(
  input: Readable | AsyncIterable<Buffer> | Iterable<Buffer>,
  limits: TarParserLimits = {},
): AsyncGenerator<TarEntry> {
  const queue: Ev[] = [];
  let head = 0;
  const parser = new TarParser({
    header: (h) => queue.push({ k: 0, h }),
    data: (c) => queue.push({ k: 1, c }),
    entryEnd: () => queue.push({ k: 2 }),
  }, limits);
  const it: AsyncIterator<Buffer> | Iterator<Buffer> = Symbol.asyncIterator in input
    ? (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
    : (input as Iterable<Buffer>)[Symbol.iterator]();
  let inputDone = false;

  const pump = async (): Promise<boolean> => {
    if (queue.length > 0 && head >= queue.length) {
      queue.length = 0;
      head = 0;
    }
    while (head >= queue.length) {
      if (inputDone || parser.done) return false;
      const r = await it.next();
      if (r.done) {
        inputDone = true;
        parser.finish();
      } else {
        parser.write(typeof r.value === 'string' ? Buffer.from(r.value) : r.value);
      }
    }
    return true;
  };

  let inBody = false;
  try {
    for (;;) {
      // Skip whatever the consumer left of the previous body.
      while (inBody) {
        if (!(await pump())) throw new InvalidArchiveError('invalid tar archive: unexpected end of input (truncated archive)');
        const ev = queue[head++]!;
        if (ev.k === 2) inBody = false;
      }
      if (!(await pump())) return;
      const ev = queue[head++]!;
      if (ev.k !== 0) throw new Error('tar reader: out of order event');
      inBody = true;
      const body = (async function* () {
        while (inBody) {
          if (!(await pump())) throw new InvalidArchiveError('invalid tar archive: unexpected end of input (truncated archive)');
          const e = queue[head++]!;
          if (e.k === 2) {
            inBody = false;
            return;
          }
          if (e.k === 1) yield e.c;
        }
      })();
      yield { header: ev.h, body };
    }
  } finally {
    if (!inputDone) await it.return?.();
  }
}

// ---------------------------------------------------------------------------------------------
// seekable index

export interface TarIndexEntry {
  header: TarHeader;
  /** Byte offset of the payload in the file. */
  offset: number;
  /** Payload length (0 for header-only types). */
  size: number;
}

/**
 * Lists a tar file's entries by reading only headers (positional reads, payloads skipped),
 * so one member of a large archive can be picked without extracting it. Global PAX headers
 * are listed with typeflag 'g'.
 */
export async function indexTarFile(path: string, limits: TarParserLimits = {}): Promise<TarIndexEntry[]> {
  const maxMeta = limits.maxMetaSize ?? DEFAULT_MAX_META;
  const fh = await open(path, 'r');
  try {
    const fileSize = (await fh.stat()).size;
    const out: TarIndexEntry[] = [];
    const block = Buffer.alloc(BLOCK_SIZE);
    const pending = new PendingMeta();
    let pos = 0;
    const readExact = async (buf: Buffer, at: number): Promise<void> => {
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, at + got);
        if (bytesRead === 0) throw unexpectedEof();
        got += bytesRead;
      }
    };
    for (;;) {
      if (pos >= fileSize) return out;
      if (fileSize - pos < BLOCK_SIZE) throw unexpectedEof();
      await readExact(block, pos);
      pos += BLOCK_SIZE;
      const header = decodeHeaderBlock(block);
      if (header === null) return out;
      if (header.typeflag === TYPE_GNU_SPARSE) {
        throw new InvalidArchiveError(`sparse files are not supported ("${header.name}")`, { entry: header.name });
      }
      if (isMetaType(header.typeflag) || header.typeflag === TYPE_PAX_GLOBAL) {
        if (header.size > maxMeta) throw new InvalidArchiveError(`invalid tar archive: ${header.typeflag} header too large`);
        const payload = Buffer.alloc(header.size);
        await readExact(payload, pos);
        pos += header.size + blockPadding(header.size);
        if (header.typeflag === TYPE_PAX_GLOBAL) {
          pending.clear();
          out.push({ header: globalHeaderEntry(header, parsePaxRecords(payload)), offset: pos, size: 0 });
        } else {
          pending.add(header.typeflag, payload);
        }
        continue;
      }
      pending.apply(header);
      const size = payloadSize(header);
      if (pos + size > fileSize) throw unexpectedEof();
      out.push({ header, offset: pos, size });
      pos += size + blockPadding(size);
    }
  } finally {
    await fh.close();
  }
}
