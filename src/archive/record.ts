/**
 * The "recording" half of a layer apply: sha256 over the uncompressed tar (the diffID) and the
 * tar-split record (CRC-64 per payload, JSON lines, gzip). Together that is about 40% of the
 * CPU an apply needs, and none of it depends on the filesystem work, so for big layers it runs
 * on a worker thread (record-worker.ts) while the main thread writes files.
 *
 * Small layers stay on the calling thread: the first `offThreadAfter` bytes are processed
 * inline (and kept); when a layer grows past that, the kept chunks are replayed to the worker
 * and the inline state is dropped. A layer of a few files never waits for a worker, and the
 * worker (one per thread that uses it, started on first need) is shared by all jobs.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import type { Digest } from '../digest.js';
import { InvalidArchiveError, StrataError } from '../errors.js';
import { packageFile } from '../package-files.js';
import { workerThreads, zlib } from '../sys/builtins.js';
import type { FromRecordWorker, ToRecordWorker } from './record-worker.js';
import { TarParser } from './tar-reader.js';
import { TarSplitRecorder } from './tar-split.js';

/** Tunables; tests lower `offThreadAfter` to exercise the worker with small archives. */
export const recordingOptions = {
  /** Bytes processed inline before the job moves to the worker (Infinity = never). */
  offThreadAfter: 4 << 20,
};

/** Unacknowledged bytes in flight to the worker before the producer is asked to wait. */
const HIGH_WATER = 32 << 20;
const LOW_WATER = 8 << 20;

interface JobHandlers {
  onMessage(msg: FromRecordWorker): void;
  onCrash(err: Error): void;
}

interface Shared {
  worker: Worker;
  jobs: Map<number, JobHandlers>;
  nextId: number;
}

let shared: Shared | undefined;

function getWorker(): Shared {
  if (shared) return shared;
  const worker = new (workerThreads().Worker)(packageFile('dist/src/archive/record-worker.js'));
  const s: Shared = { worker, jobs: new Map(), nextId: 1 };
  const crash = (err: Error) => {
    if (shared === s) shared = undefined;
    for (const j of s.jobs.values()) j.onCrash(err);
    s.jobs.clear();
  };
  worker.on('message', (msg: FromRecordWorker) => s.jobs.get(msg.id)?.onMessage(msg));
  worker.on('error', crash);
  worker.on('exit', (code) => crash(new Error(`tar-split worker exited with code ${code}`)));
  worker.unref();
  shared = s;
  return s;
}

function addJob(s: Shared, id: number, h: JobHandlers): void {
  s.jobs.set(id, h);
  if (s.jobs.size === 1) s.worker.ref();
}

function removeJob(s: Shared, id: number): void {
  if (s.jobs.delete(id) && s.jobs.size === 0) s.worker.unref();
}

function reviveError(e: { name: string; message: string; code?: string; entry?: string }): Error {
  if (e.code === 'ERR_INVALID_ARCHIVE') return new InvalidArchiveError(e.message, { entry: e.entry });
  if (e.code) return new StrataError(e.code as never, e.message);
  return new Error(e.message);
}

/** Streams bytes into the recorder; `finish` ends the tar-split sink and returns the diffID. */
export class Recording {
  readonly #sink: Writable | undefined;
  readonly #maxMeta: number;
  // inline state
  #hash: Hash | undefined = createHash('sha256');
  #parser: TarParser | undefined;
  #recorder: TarSplitRecorder | undefined;
  #text: string[] = [];
  #kept: Buffer[] = [];
  #bytes = 0;
  // worker state
  #shared: Shared | undefined;
  #id = 0;
  #inFlight = 0;
  #drained: (() => void) | undefined;
  #failure: Error | undefined;
  #done: { resolve: (d: Digest) => void; reject: (e: Error) => void } | undefined;

  constructor(sink: Writable | undefined, maxMetaSize: number) {
    this.#sink = sink;
    this.#maxMeta = maxMetaSize;
    sink?.on('error', (err: Error) => this.#fail(err));
    const recorder = new TarSplitRecorder((text) => this.#text.push(text));
    this.#recorder = recorder;
    this.#parser = new TarParser({
      header: (h) => recorder.file(h),
      data: (c) => recorder.fileData(c),
      entryEnd: () => recorder.fileEnd(),
      raw: (c) => recorder.raw(c),
      end: () => recorder.end(),
      trailing: (c) => recorder.trailing(c),
    }, { maxMetaSize });
  }

  /** Feeds a chunk; returns a promise when the caller should wait before the next one. */
  push(chunk: Buffer): Promise<void> | undefined {
    if (this.#failure) throw this.#failure;
    if (this.#shared === undefined) {
      this.#bytes += chunk.length;
      this.#hash!.update(chunk);
      this.#parser!.write(chunk);
      this.#kept.push(chunk);
      if (this.#bytes > recordingOptions.offThreadAfter) this.#moveOffThread();
      return undefined;
    }
    this.#post(chunk);
    if (this.#inFlight > HIGH_WATER) return new Promise<void>((resolve) => { this.#drained = resolve; }).then(() => this.#check());
    return undefined;
  }

  async finish(): Promise<Digest> {
    if (this.#failure) throw this.#failure;
    let diffId: Digest;
    if (this.#shared === undefined) {
      this.#parser!.finish();
      this.#recorder!.close();
      diffId = `sha256:${this.#hash!.digest('hex')}`;
      if (this.#sink) this.#write(zlib().gzipSync(this.#text.join('')));
      this.#text = [];
    } else {
      const done = new Promise<Digest>((resolve, reject) => { this.#done = { resolve, reject }; });
      this.#shared.worker.postMessage({ t: 'end', id: this.#id } satisfies ToRecordWorker);
      diffId = await done;
    }
    if (this.#sink) {
      const sink = this.#sink;
      await new Promise<void>((resolve, reject) => {
        sink.once('error', reject);
        sink.end(() => resolve());
      });
    }
    return diffId;
  }

  abort(err: Error): void {
    this.#failure ??= err;
    if (this.#shared) {
      this.#shared.worker.postMessage({ t: 'abort', id: this.#id } satisfies ToRecordWorker);
      removeJob(this.#shared, this.#id);
    }
    this.#sink?.destroy(err);
  }

  #check(): void {
    if (this.#failure) throw this.#failure;
  }

  #moveOffThread(): void {
    let s: Shared;
    try {
      s = getWorker();
    } catch {
      // No worker available (restricted environment): keep recording inline.
      recordingOptions.offThreadAfter = Infinity;
      return;
    }
    this.#shared = s;
    this.#id = s.nextId++;
    addJob(s, this.#id, {
      onMessage: (msg) => this.#onMessage(msg),
      onCrash: (err) => this.#fail(err),
    });
    s.worker.postMessage({ t: 'start', id: this.#id, record: this.#sink !== undefined, maxMetaSize: this.#maxMeta } satisfies ToRecordWorker);
    const kept = this.#kept;
    this.#kept = [];
    this.#hash = undefined;
    this.#parser = undefined;
    this.#recorder = undefined;
    this.#text = [];
    for (const c of kept) this.#post(c);
  }

  #post(chunk: Buffer): void {
    this.#inFlight += chunk.length;
    // Structured clone copies the bytes: the caller's buffer stays usable (no transfer).
    this.#shared!.worker.postMessage({ t: 'chunk', id: this.#id, buf: chunk } satisfies ToRecordWorker);
  }

  #onMessage(msg: FromRecordWorker): void {
    switch (msg.t) {
      case 'ack':
        this.#inFlight -= msg.n;
        if (this.#drained && this.#inFlight < LOW_WATER) {
          const d = this.#drained;
          this.#drained = undefined;
          d();
        }
        return;
      case 'out':
        this.#write(Buffer.from(msg.buf.buffer, msg.buf.byteOffset, msg.buf.byteLength));
        return;
      case 'done':
        removeJob(this.#shared!, this.#id);
        this.#done?.resolve(msg.diffId as Digest);
        return;
      case 'error':
        removeJob(this.#shared!, this.#id);
        this.#fail(reviveError(msg.error));
        return;
    }
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    this.#done?.reject(this.#failure);
    if (this.#drained) {
      const d = this.#drained;
      this.#drained = undefined;
      d();
    }
  }

  #write(buf: Buffer): void {
    // The record is ~1% of the layer: written without waiting for the sink to drain.
    if (this.#sink && !this.#sink.destroyed) this.#sink.write(buf);
  }
}
