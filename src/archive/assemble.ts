/**
 * Rebuilds a layer tar from its tar-split record and the layer's files (tar-split's
 * WriteOutputTarStream, facts §4.4): segments are written verbatim, file payloads are read by
 * their tar name under `dir` and checked against the recorded CRC-64.
 *
 * Reads are synchronous and sized to what the consumer asks for: a Readable's `_read` pushes
 * until the buffer is full, so backpressure holds and small files cost one open/read/close
 * without thread-pool round trips. Names are resolved inside `dir` without following any
 * symlink (resolve.ts), so a tampered layer dir cannot make us read outside it.
 */
import { closeSync, constants as FS, fstatSync, openSync, readSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { Readable } from 'node:stream';
import { DigestMismatchError, NotFoundError } from '../errors.js';
import { Crc64 } from './crc64.js';
import { ConfinedTree, displayName, normalizeEntryName, parentOf } from './resolve.js';
import { ENTRY_SEGMENT, readTarSplit, type TarSplitEntry } from './tar-split.js';

const READ_CHUNK = 1 << 20;
const HIGH_WATER = 4 << 20;

interface OpenFile {
  fd: number;
  remaining: number;
  crc: Crc64;
  expected: Buffer;
  name: string;
}

class AssembleStream extends Readable {
  readonly #entries: AsyncGenerator<TarSplitEntry>;
  readonly #tree: ConfinedTree;
  #file: OpenFile | undefined;
  #running = false;

  constructor(tarSplit: Readable, dir: string) {
    super({ highWaterMark: HIGH_WATER });
    this.#entries = readTarSplit(tarSplit);
    this.#tree = new ConfinedTree(Buffer.from(resolvePath(dir), 'utf8').toString('latin1'), 0);
  }

  override _read(): void {
    if (!this.#running) void this.#pump();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#closeFile();
    this.#entries.return(undefined).then(() => cb(err), () => cb(err));
  }

  async #pump(): Promise<void> {
    this.#running = true;
    try {
      for (;;) {
        if (this.destroyed) return;
        if (this.#file) {
          if (!this.#readChunk()) return;
          continue;
        }
        const r = await this.#entries.next();
        if (r.done) {
          this.push(null);
          return;
        }
        const e = r.value;
        if (e.type === ENTRY_SEGMENT) {
          if (e.payload && e.payload.length > 0 && !this.push(e.payload)) return;
          continue;
        }
        // A zero checksum with a size means the header announced bytes that were never in
        // the archive (header-only types such as a hard link with a size): nothing to read.
        if (e.size === 0 || e.payload!.readBigUInt64BE(0) === 0n) continue;
        this.#openFile(e);
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.#running = false;
    }
  }

  #openFile(e: TarSplitEntry): void {
    const nameBin = e.name!.toString('latin1');
    const name = displayName(nameBin);
    let fd: number;
    try {
      const rel = normalizeEntryName(nameBin, 'entry name', { allowAbsolute: true });
      this.#tree.ensureDir(parentOf(rel), nameBin, false);
      fd = openSync(this.#tree.abs(rel), FS.O_RDONLY | FS.O_NOFOLLOW);
    } catch (err) {
      throw new NotFoundError(`cannot rebuild layer: file "${name}" is missing or unreadable: ${(err as Error).message}`, { cause: err });
    }
    const st = fstatSync(fd);
    if (!st.isFile() || st.size !== e.size) {
      closeSync(fd);
      throw new DigestMismatchError(`file integrity checksum failed for "${name}"`, e.payload!.toString('hex'), `size ${st.size} != ${e.size}`);
    }
    this.#file = { fd, remaining: e.size, crc: new Crc64(), expected: e.payload!, name };
  }

  /** Pushes one chunk of the open file; returns the push result. */
  #readChunk(): boolean {
    const f = this.#file!;
    const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, f.remaining));
    let got = 0;
    while (got < buf.length) {
      const n = readSync(f.fd, buf, got, buf.length - got, null);
      if (n === 0) break;
      got += n;
    }
    if (got < buf.length) {
      this.#closeFile();
      throw new DigestMismatchError(`file integrity checksum failed for "${f.name}"`, f.expected.toString('hex'), 'file shrank while reading');
    }
    f.crc.update(buf);
    f.remaining -= got;
    if (f.remaining === 0) {
      this.#closeFile();
      const actual = f.crc.digest();
      if (!actual.equals(f.expected)) {
        throw new DigestMismatchError(`file integrity checksum failed for "${f.name}"`, f.expected.toString('hex'), actual.toString('hex'));
      }
    }
    return this.push(buf);
  }

  #closeFile(): void {
    if (!this.#file) return;
    const fd = this.#file.fd;
    this.#file = undefined;
    closeSync(fd);
  }
}

/** Implementation of `assembleLayer` (see layer.ts for the contract). */
export function assembleLayerImpl(tarSplit: Readable, dir: string): Readable {
  return new AssembleStream(tarSplit, dir);
}
