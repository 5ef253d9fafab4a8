/**
 * Write serialisation for the image-side stores (imagedb, repositories.json): an exclusive
 * flock on a lock file, shared with other strata processes, taken through an in-process
 * queue.
 *
 * Why the queue: a waiting flock occupies a libuv thread-pool thread until granted, and the
 * holder releases by closing its descriptor, itself a thread-pool job; many waiters in one
 * process could fill the pool and starve the holder. So a store instance never has more
 * than one flock request outstanding.
 */
import { withLock } from '../sys/lock.js';

export class WriteLock {
  readonly path: string;
  #tail: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let done!: () => void;
    this.#tail = new Promise<void>((resolve) => (done = resolve));
    await previous;
    try {
      return await withLock(this.path, 'exclusive', fn);
    } finally {
      done();
    }
  }
}
