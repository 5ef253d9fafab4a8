/**
 * The layer store's lock on `layerdb/.lock`: an flock shared with other strata processes,
 * taken through an in-process queue.
 *
 * Why the queue: a waiting flock occupies a libuv thread-pool thread until it is granted,
 * and the holder releases by closing its descriptor, which is itself a thread-pool job. With
 * enough concurrent waiters in one process the pool fills with waiters and the holder can
 * never close, so one store instance never has more than one flock request outstanding.
 */
import { StrataError } from '../errors.js';
import { FileLock, type LockMode } from '../sys/lock.js';

export class StoreLock {
  readonly path: string;
  #tail: Promise<void> = Promise.resolve();
  #busy = false;

  constructor(path: string) {
    this.path = path;
  }

  /** Runs `fn` holding the lock in `mode`, waiting for it (in process and across processes). */
  async run<T>(mode: LockMode, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let done!: () => void;
    this.#tail = new Promise<void>((resolve) => (done = resolve));
    await previous;
    this.#busy = true;
    try {
      const lock = await FileLock.acquire(this.path, { mode, wait: true });
      try {
        return await fn();
      } finally {
        await lock.release();
      }
    } finally {
      this.#busy = false;
      done();
    }
  }

  /**
   * Runs `fn` holding the lock in `mode` only if it is free right now, in this process and
   * in every other; resolves `{ ran: false }` without running it otherwise.
   */
  async tryRun<T>(mode: LockMode, fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }> {
    if (this.#busy) return { ran: false };
    const previous = this.#tail;
    let done!: () => void;
    this.#tail = new Promise<void>((resolve) => (done = resolve));
    await previous;
    this.#busy = true;
    try {
      let lock: FileLock;
      try {
        lock = await FileLock.acquire(this.path, { mode, wait: false });
      } catch (err) {
        if (err instanceof StrataError && err.code === 'ERR_LOCKED') return { ran: false };
        throw err;
      }
      try {
        return { ran: true, value: await fn() };
      } finally {
        await lock.release();
      }
    } finally {
      this.#busy = false;
      done();
    }
  }
}
