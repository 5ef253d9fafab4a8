/**
 * Writes a tar stream the way Go's archive/tar does for the headers Docker's `archive.Tar`
 * produces (facts §3.6): plain USTAR (PAX only when a name needs it), owner 0:0 with empty
 * user/group names, whole-second mtimes, and exactly two zero blocks at the end. Payloads
 * may be streamed; their size must be known up front because it is in the header.
 *
 * Written to a file descriptor instead of a stream, the writer knows every member's offset,
 * so a member's payload can be left to someone else (`reserve`): `save -o` has worker
 * threads write layers in place, side by side, while headers and small files go here.
 */
import { once } from 'node:events';
import { writeSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';

import { BLOCK_SIZE, blockPadding, encodeHeader, TYPE_DIR, TYPE_REG } from '../archive/tar-header.js';
import { InvalidArgumentError } from '../errors.js';

export interface EntryOptions {
  /** Seconds since the epoch. */
  mtime: number;
  mode?: number;
}

const ZEROS = Buffer.alloc(BLOCK_SIZE * 2);

/** A stream, or a file written at explicit offsets from its start. */
export type TarOutput = Writable | { fd: number };

export class TarWriter {
  readonly #out: Writable | undefined;
  readonly #fd: number | undefined;
  #written = 0;
  #failed: Error | undefined;

  constructor(out: TarOutput) {
    if ('fd' in out && typeof out.fd === 'number' && !('write' in out)) {
      this.#fd = out.fd;
      return;
    }
    const stream = out as Writable;
    this.#out = stream;
    stream.on('error', (err: Error) => {
      this.#failed ??= err;
    });
  }

  /** Whether payloads can be reserved (a file output). */
  get positional(): boolean {
    return this.#fd !== undefined;
  }

  /** Bytes handed to the output so far. */
  get written(): number {
    return this.#written;
  }

  async #write(chunk: Buffer): Promise<void> {
    if (this.#failed) throw this.#failed;
    if (this.#fd !== undefined) {
      // Headers and small files: a few hundred bytes each, written in place.
      for (let done = 0; done < chunk.length; ) done += writeSync(this.#fd, chunk, done, chunk.length - done, this.#written + done);
      this.#written += chunk.length;
      return;
    }
    this.#written += chunk.length;
    if (this.#out!.write(chunk)) return;
    // Wait for room, or for the output to fail or go away (a closed pipe never drains).
    const ac = new AbortController();
    try {
      await Promise.race([
        once(this.#out!, 'drain', { signal: ac.signal }),
        once(this.#out!, 'close', { signal: ac.signal }).then(() => {
          throw this.#failed ?? new Error('output closed while writing the archive');
        }),
        once(this.#out!, 'error', { signal: ac.signal }).then(([err]) => {
          throw err as Error;
        }),
      ]);
    } finally {
      ac.abort();
    }
  }

  #header(name: string, typeflag: string, size: number, o: EntryOptions): Buffer {
    return encodeHeader({
      name, linkname: '', typeflag, mode: o.mode ?? (typeflag === TYPE_DIR ? 0o755 : 0o644),
      uid: 0, gid: 0, size, mtime: Math.max(0, Math.floor(o.mtime)), uname: '', gname: '', devmajor: 0, devminor: 0,
    });
  }

  async dir(name: string, o: EntryOptions): Promise<void> {
    await this.#write(this.#header(name.endsWith('/') ? name : `${name}/`, TYPE_DIR, 0, o));
  }

  async file(name: string, data: Buffer, o: EntryOptions): Promise<void> {
    await this.#write(this.#header(name, TYPE_REG, data.length, o));
    if (data.length > 0) await this.#write(data);
    const pad = blockPadding(data.length);
    if (pad > 0) await this.#write(ZEROS.subarray(0, pad));
  }

  /**
   * Streams `size` bytes from `input` as one member. Fails (leaving a truncated archive) when
   * the input yields more or fewer bytes than announced.
   */
  async stream(name: string, size: number, input: Readable | AsyncIterable<Buffer>, o: EntryOptions & { onBytes?: (n: number) => void }): Promise<void> {
    await this.#write(this.#header(name, TYPE_REG, size, o));
    let n = 0;
    for await (const chunk of input as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > size) throw new InvalidArgumentError(`archive member ${name}: more than the announced ${size} bytes`);
      await this.#write(chunk);
      o.onBytes?.(n);
    }
    if (n !== size) throw new InvalidArgumentError(`archive member ${name}: ${n} bytes instead of the announced ${size}`);
    const pad = blockPadding(size);
    if (pad > 0) await this.#write(ZEROS.subarray(0, pad));
  }

  /**
   * Writes a member's header and its padding, and returns the file offset where its `size`
   * payload bytes belong; filling them is the caller's job. File outputs only.
   */
  async reserve(name: string, size: number, o: EntryOptions): Promise<number> {
    if (this.#fd === undefined) throw new InvalidArgumentError('tar payloads can only be reserved in a file');
    await this.#write(this.#header(name, TYPE_REG, size, o));
    const at = this.#written;
    this.#written += size;
    const pad = blockPadding(size);
    if (pad > 0) await this.#write(ZEROS.subarray(0, pad));
    return at;
  }

  /** Writes the end-of-archive marker. The caller ends the output. */
  async finish(): Promise<void> {
    await this.#write(ZEROS);
  }
}
