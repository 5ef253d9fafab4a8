/**
 * A few worker threads that apply layer tars (`unpack-worker.ts`), so N layers applied at
 * once use N cores.
 *
 * Two kinds of input:
 *  - a byte range of a file, which the worker reads itself: no copy, no messages (the
 *    docker-archive loader's case);
 *  - any Readable, read here and handed over in copied 1 MiB batches by transfer. At most
 *    `WINDOW` bytes of a task are in flight (sent, not yet taken by the worker's tar reader),
 *    so a fast source never piles up in memory behind a slow disk.
 */
import type { Readable } from 'node:stream';
import type { Worker } from 'node:worker_threads';

import type { UnpackResult } from '../archive/layer.js';
import { packageFile } from '../package-files.js';
import { workerThreads } from '../sys/builtins.js';
import type { ApplyTarget, FileRange } from './apply-layer.js';
import { deserializeError, type FromWorker, type ToWorker } from './unpack-protocol.js';

const WINDOW = 8 << 20;
/** Chunks are coalesced into messages of this size: one message per 64 KiB read costs more. */
const BATCH = 1 << 20;

export interface UnpackTask extends ApplyTarget {
  /** Opens the layer tar (plain or compressed); called when a worker is free for it. */
  open?: () => Promise<Readable>;
  /** Alternatively, where the worker reads the layer tar from by itself. */
  file?: FileRange;
  /** Aborting stops reading the input; the task then rejects with the abort reason. */
  signal?: AbortSignal;
}

interface Slot {
  worker: Worker;
  busy: boolean;
  /** Settles the task running on this worker when the worker itself dies. */
  onExit?: (err: Error) => void;
}

export class UnpackPool {
  readonly size: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Array<() => void> = [];
  readonly #handlers = new Map<number, (message: FromWorker) => void>();
  #nextTask = 1;
  #closed = false;

  constructor(size: number) {
    this.size = Math.max(1, Math.floor(size));
  }

  /** Applies one layer in a worker, queueing until one is free. */
  async run(task: UnpackTask): Promise<UnpackResult> {
    if (this.#closed) throw new Error('unpack pool is closed');
    const slot = await this.#acquire();
    try {
      return await this.#runOn(slot, task);
    } finally {
      slot.busy = false;
      slot.onExit = undefined;
      this.#queue.shift()?.();
    }
  }

  /** Stops the workers. Tasks still running reject. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
    this.#slots.length = 0;
    for (const wake of this.#queue.splice(0)) wake();
  }

  async #acquire(): Promise<Slot> {
    for (;;) {
      const free = this.#slots.find((s) => !s.busy);
      if (free) {
        free.busy = true;
        return free;
      }
      if (this.#slots.length < this.size) {
        const slot = this.#spawn();
        slot.busy = true;
        return slot;
      }
      await new Promise<void>((resolve) => this.#queue.push(resolve));
      if (this.#closed) throw new Error('unpack pool is closed');
    }
  }

  #spawn(): Slot {
    const worker = new (workerThreads().Worker)(packageFile('dist/src/layers/unpack-worker.js'));
    // The pool must not keep the process alive on its own when a caller forgets close().
    worker.unref();
    const slot: Slot = { worker, busy: false };
    worker.on('message', (message: FromWorker) => this.#handlers.get(message.task)?.(message));
    const die = (err: Error): void => {
      const i = this.#slots.indexOf(slot);
      if (i >= 0) this.#slots.splice(i, 1);
      slot.onExit?.(err);
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new Error(`unpack worker exited with code ${code}`)));
    this.#slots.push(slot);
    return slot;
  }

  async #runOn(slot: Slot, task: UnpackTask): Promise<UnpackResult> {
    if (!task.open === !task.file) throw new Error('an unpack task needs exactly one of open and file');
    const id = this.#nextTask++;
    const send = (message: ToWorker, transfer?: ArrayBuffer[]): void => slot.worker.postMessage(message, transfer);

    let settle!: { resolve: (r: UnpackResult) => void; reject: (e: Error) => void };
    const result = new Promise<UnpackResult>((resolve, reject) => (settle = { resolve, reject }));
    // Rejections are observed below; this keeps an early one from being reported unhandled.
    result.catch(() => undefined);
    let settled = false;
    let inFlight = 0;
    let wakePump: (() => void) | undefined;
    const wake = (): void => {
      wakePump?.();
      wakePump = undefined;
    };

    this.#handlers.set(id, (message) => {
      switch (message.type) {
        case 'ack':
          inFlight -= message.bytes;
          if (inFlight <= WINDOW) wake();
          break;
        case 'progress':
          task.onProgress?.(message.bytes);
          break;
        case 'done':
          settled = true;
          settle.resolve(message.result);
          wake();
          break;
        case 'error':
          settled = true;
          settle.reject(deserializeError(message.error));
          wake();
          break;
      }
    });
    slot.onExit = (err) => {
      settled = true;
      settle.reject(err);
      wake();
    };

    let input: Readable | undefined;
    let sourceError: unknown;
    const onAbort = (): void => {
      const reason = task.signal?.reason instanceof Error ? task.signal.reason : new Error('aborted');
      if (input) input.destroy(reason);
      else if (!settled) send({ type: 'abort', task: id, message: reason.message });
      sourceError ??= reason;
    };
    const start = {
      type: 'start' as const,
      task: id,
      target: task.target,
      whiteouts: task.whiteouts,
      tarSplitPath: task.tarSplitPath,
    };
    try {
      task.signal?.throwIfAborted();
      if (task.file) {
        task.signal?.addEventListener('abort', onAbort, { once: true });
        send({ ...start, file: task.file });
      } else {
        input = await task.open!();
        task.signal?.addEventListener('abort', onAbort, { once: true });
        send(start);
        await this.#pump(input, id, send, {
          settled: () => settled,
          sent: (n) => (inFlight += n),
          full: () => inFlight > WINDOW,
          waitForRoom: () => new Promise<void>((resolve) => (wakePump = resolve)),
        }).catch((err: unknown) => {
          sourceError = err;
          if (!settled) send({ type: 'abort', task: id, message: err instanceof Error ? err.message : String(err) });
        });
      }
      try {
        return await result;
      } catch (err) {
        // The worker only reports "aborted"; the source's own error says what went wrong.
        throw sourceError ?? err;
      }
    } finally {
      task.signal?.removeEventListener('abort', onAbort);
      input?.destroy();
      this.#handlers.delete(id);
    }
  }

  /**
   * Copies `input` into BATCH-sized ArrayBuffers and transfers them to the worker, pausing
   * while the window is full. Stops early once the task has settled (the worker failed).
   */
  async #pump(
    input: Readable,
    id: number,
    send: (message: ToWorker, transfer?: ArrayBuffer[]) => void,
    flow: { settled: () => boolean; sent: (n: number) => void; full: () => boolean; waitForRoom: () => Promise<void> },
  ): Promise<void> {
    // Copying is required anyway: transferring the chunk's own memory would detach every
    // other view of it (a pooled slab, or a caller's Buffer given to Readable.from).
    let batch = new Uint8Array(BATCH);
    let used = 0;
    const flush = async (): Promise<void> => {
      if (used === 0) return;
      const data = used === batch.length ? batch.buffer : batch.slice(0, used).buffer;
      send({ type: 'chunk', task: id, data }, [data]);
      flow.sent(used);
      batch = new Uint8Array(BATCH);
      used = 0;
      if (flow.full() && !flow.settled()) await flow.waitForRoom();
    };
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      if (flow.settled()) return;
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      let offset = 0;
      while (offset < bytes.length) {
        const n = Math.min(bytes.length - offset, BATCH - used);
        batch.set(bytes.subarray(offset, offset + n), used);
        used += n;
        offset += n;
        if (used === BATCH) await flush();
      }
    }
    await flush();
    if (!flow.settled()) send({ type: 'end', task: id });
  }
}
