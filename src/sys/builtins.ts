/**
 * Node built-ins that only some commands need, loaded on first use. A static import of
 * node:zlib or node:worker_threads costs every command ~1 ms of start-up on our VM to
 * compile Node's own JavaScript for them, though `run`, `ps` or `rm` never compress or
 * start a worker.
 */
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

export function zlib(): typeof import('node:zlib') {
  return load('node:zlib') as typeof import('node:zlib');
}

export function workerThreads(): typeof import('node:worker_threads') {
  return load('node:worker_threads') as typeof import('node:worker_threads');
}
