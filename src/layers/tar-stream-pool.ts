/**
 * Rebuilds layer tars on worker threads (`tar-stream-worker.ts`) and presents each as a
 * Readable on the main thread. Flow control is credit-based: a worker may be at most `WINDOW`
 * bytes ahead of what the consumer has taken, so a slow output never piles a layer up in
 * memory, while a layer the consumer will read next can be rebuilt ahead of time.
 */
import { Readable } from 'node:stream';
import type { Worker } from 'node:worker_threads';

import { DigestMismatchError, StrataError } from '../errors.js';
import { packageFile } from '../package-files.js';
import { workerThreads } from '../sys/builtins.js';

const WINDOW = 64 << 20;

export interface TarStreamRequest {
  id: number;
  tarSplitPath: string;
  dir: string;
  window: number;
}

/** Rebuild a layer tar straight into `fd` at `position`; `size` bytes exactly. */
export interface TarWriteRequest {
  id: number;
  tarSplitPath: string;
  dir: string;
  fd: number;
  position: number;
  size: number;
}

export type TarStreamToMain =
  | { type: 'data'; id: number; data: ArrayBuffer }
  | { type: 'progress'; id: number; bytes: number }
  | { type: 'size'; id: number; bytes: number }
  | { type: 'end'; id: number; digest: string }
  | { type: 'error'; id: number; message: string; name: string };

interface CallResult {
  digest?: string;
  bytes?: number;
  error?: Error;
}

/** A one-shot job (size, write): a request and its single result message. */
interface Call {
  worker: Worker;
  onBytes: ((bytes: number) => void) | undefined;
  settle: (result: CallResult) => void;
}

interface Job {
  stream: Readable;
  /** Bytes pushed but not yet given back to the worker as credit. */
  owed: number;
  worker: Worker;
  onEnd: (digest: string) => Error | undefined;
}

function workerError(m: { message: string; name: string }): Error {
  return m.name === 'DigestMismatchError' ? new DigestMismatchError(m.message, '', '') : new StrataError('ERR_SYSTEM', m.message);
}

export class TarStreamPool {
  readonly #size: number;
  readonly #workers: Worker[] = [];
  readonly #load = new Map<Worker, number>();
  readonly #jobs = new Map<number, Job>();
  readonly #calls = new Map<number, Call>();
  #nextId = 1;

  constructor(size: number) {
    this.#size = Math.max(1, size);
  }

  /** Starts every worker now (they take ~20 ms to boot), for a caller about to need them. */
  warm(): void {
    while (this.#workers.length < this.#size) this.#spawn();
  }

  #worker(): Worker {
    const idle = this.#workers.find((w) => (this.#load.get(w) ?? 0) === 0);
    if (idle) return idle;
    if (this.#workers.length < this.#size) return this.#spawn();
    return this.#workers.reduce((a, b) => ((this.#load.get(a) ?? 0) <= (this.#load.get(b) ?? 0) ? a : b));
  }

  #spawn(): Worker {
    const w = new (workerThreads().Worker)(packageFile('dist/src/layers/tar-stream-worker.js'));
    // An idle pool must not keep the process alive. An unref() made before the worker is
    // online does not hold for a worker that never gets a job (a warm() spare), so it is
    // repeated once the worker is up.
    w.unref();
    w.once('online', () => {
      if ((this.#load.get(w) ?? 0) === 0) w.unref();
    });
    w.on('message', (m: TarStreamToMain) => this.#onMessage(m));
    w.on('error', (err) => this.#failWorker(w, err));
    w.on('exit', (code) => this.#failWorker(w, new StrataError('ERR_SYSTEM', `layer tar worker exited with code ${code}`)));
    this.#workers.push(w);
    this.#load.set(w, 0);
    return w;
  }

  /**
   * The tar of a layer, rebuilt from `tarSplitPath` and `dir`; `verify(digest)` is called with
   * the stream's sha256 at the end and may return an error to fail the stream with.
   */
  open(tarSplitPath: string, dir: string, verify: (digest: string) => Error | undefined): Readable {
    const id = this.#nextId++;
    const worker = this.#acquire();
    const job: Job = {
      worker,
      owed: 0,
      onEnd: verify,
      stream: new Readable({
        highWaterMark: 4 << 20,
        read: () => this.#credit(id),
        destroy: (err, cb) => {
          // Stopped early by the consumer: let the worker drop the layer and move on.
          if (this.#jobs.has(id)) worker.postMessage({ type: 'cancel', id });
          this.#finish(id);
          cb(err);
        },
      }),
    };
    this.#jobs.set(id, job);
    worker.postMessage({ type: 'start', req: { id, tarSplitPath, dir, window: WINDOW } satisfies TarStreamRequest });
    return job.stream;
  }

  /** The byte length of the tar a tar-split record rebuilds, worked out on a worker. */
  async tarSize(tarSplitPath: string): Promise<number> {
    return (await this.#call((id) => ({ type: 'size', id, tarSplitPath }))).bytes!;
  }

  /**
   * Rebuilds a layer's tar into the file `fd` at `position` (exactly `size` bytes) on a worker,
   * and resolves with the bytes' sha256. The worker runs the job to its end without yielding,
   * so the promise settles only after its last write: the caller may close `fd` right after.
   */
  async writeAt(
    job: { tarSplitPath: string; dir: string; fd: number; position: number; size: number },
    onBytes?: (bytes: number) => void,
  ): Promise<string> {
    return (await this.#call((id) => ({ type: 'write', req: { id, ...job } satisfies TarWriteRequest }), onBytes)).digest!;
  }

  /** Posts a one-shot job to a worker; settles with its result message. */
  #call(message: (id: number) => object, onBytes?: (bytes: number) => void): Promise<CallResult> {
    const id = this.#nextId++;
    const worker = this.#acquire();
    return new Promise<CallResult>((resolve, reject) => {
      this.#calls.set(id, {
        worker,
        onBytes,
        settle: (result) => {
          this.#calls.delete(id);
          this.#release(worker);
          if (result.error) reject(result.error);
          else resolve(result);
        },
      });
      worker.postMessage(message(id));
    });
  }

  /** A worker for one more job, kept referenced (the process waits for it) until released. */
  #acquire(): Worker {
    const worker = this.#worker();
    this.#load.set(worker, (this.#load.get(worker) ?? 0) + 1);
    worker.ref();
    return worker;
  }

  #release(worker: Worker): void {
    const load = (this.#load.get(worker) ?? 1) - 1;
    this.#load.set(worker, load);
    if (load === 0) worker.unref();
  }

  #credit(id: number): void {
    const job = this.#jobs.get(id);
    if (!job || job.owed === 0) return;
    job.worker.postMessage({ type: 'credit', id, bytes: job.owed });
    job.owed = 0;
  }

  #onMessage(m: TarStreamToMain): void {
    const call = this.#calls.get(m.id);
    if (call) {
      if (m.type === 'progress') call.onBytes?.(m.bytes);
      else if (m.type === 'size') call.settle({ bytes: m.bytes });
      else if (m.type === 'end') call.settle({ digest: m.digest });
      else if (m.type === 'error') call.settle({ error: workerError(m) });
      return;
    }
    const job = this.#jobs.get(m.id);
    if (!job) return;
    if (m.type === 'data') {
      const buf = Buffer.from(m.data);
      job.owed += buf.length;
      if (job.stream.push(buf)) this.#credit(m.id);
    } else if (m.type === 'end') {
      const err = job.onEnd(m.digest);
      this.#finish(m.id);
      if (err) job.stream.destroy(err);
      else job.stream.push(null);
    } else if (m.type === 'error') {
      this.#finish(m.id);
      job.stream.destroy(workerError(m));
    }
  }

  #finish(id: number): void {
    const job = this.#jobs.get(id);
    if (!job) return;
    this.#jobs.delete(id);
    this.#release(job.worker);
  }

  #failWorker(w: Worker, err: Error): void {
    const i = this.#workers.indexOf(w);
    if (i >= 0) this.#workers.splice(i, 1);
    this.#load.delete(w);
    for (const [id, job] of this.#jobs) {
      if (job.worker !== w) continue;
      this.#jobs.delete(id);
      job.stream.destroy(err);
    }
    // A dead worker writes nothing more.
    for (const call of [...this.#calls.values()]) if (call.worker === w) call.settle({ error: err });
  }
}
