/**
 * Messages between `UnpackPool` (parent) and `unpack-worker` (worker thread), and the
 * flattening of errors across the thread boundary.
 *
 * One task at a time per worker: parent sends `start`, then — unless `start` names a file
 * range the worker reads itself — `chunk`* (each chunk's buffer transferred, not copied),
 * then `end`; `abort` may come at any point. The worker sends `ack` per chunk taken by the
 * tar reader (the parent's flow control), `progress`, then exactly one `done` or `error`.
 */
import type { UnpackResult, WhiteoutFormat } from '../archive/layer.js';
import {
  AlreadyExistsError,
  ConflictError,
  DigestMismatchError,
  InvalidArchiveError,
  InvalidArgumentError,
  NotFoundError,
  NotSupportedError,
  StrataError,
  type StrataErrorCode,
} from '../errors.js';

export interface StartMessage {
  type: 'start';
  task: number;
  target: string;
  whiteouts: WhiteoutFormat;
  tarSplitPath: string;
  /** Read the tar from this byte range (end exclusive) instead of waiting for chunks. */
  file?: { path: string; start?: number; end?: number };
}

export type ToWorker =
  | StartMessage
  | { type: 'chunk'; task: number; data: ArrayBuffer }
  | { type: 'end'; task: number }
  | { type: 'abort'; task: number; message: string };

/** An error flattened for postMessage; `UnpackPool` turns it back into the same class. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
  entry?: string;
  expected?: string;
  actual?: string;
}

export type FromWorker =
  | { type: 'ack'; task: number; bytes: number }
  | { type: 'progress'; task: number; bytes: number }
  | { type: 'done'; task: number; result: UnpackResult }
  | { type: 'error'; task: number; error: SerializedError };

/** The worker reports progress at most once per this many bytes. */
export const PROGRESS_STEP = 1 << 20;

export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const e = err as Error & Record<string, unknown>;
  const out: SerializedError = { name: e.name, message: e.message };
  if (typeof e.stack === 'string') out.stack = e.stack;
  for (const key of ['code', 'syscall', 'path', 'entry', 'expected', 'actual'] as const) {
    if (typeof e[key] === 'string') out[key] = e[key] as string;
  }
  if (typeof e.errno === 'number') out.errno = e.errno;
  return out;
}

const BY_CODE: Partial<Record<StrataErrorCode, new (message: string) => StrataError>> = {
  ERR_NOT_FOUND: NotFoundError,
  ERR_CONFLICT: ConflictError,
  ERR_INVALID_ARGUMENT: InvalidArgumentError,
  ERR_ALREADY_EXISTS: AlreadyExistsError,
  ERR_NOT_SUPPORTED: NotSupportedError,
};

const OTHER_CODES: ReadonlySet<string> = new Set<StrataErrorCode>(['ERR_LOCKED', 'ERR_SYSTEM']);

/** Rebuilds an error of the class (or errno shape) the worker threw. */
export function deserializeError(s: SerializedError): Error {
  let err: Error;
  if (s.name === 'DigestMismatchError') {
    err = new DigestMismatchError(s.message, s.expected ?? '', s.actual ?? '');
  } else if (s.name === 'InvalidArchiveError') {
    err = new InvalidArchiveError(s.message, { entry: s.entry });
  } else if (s.code !== undefined && s.code in BY_CODE) {
    err = new BY_CODE[s.code as StrataErrorCode]!(s.message);
  } else if (s.code !== undefined && s.errno === undefined && OTHER_CODES.has(s.code)) {
    err = new StrataError(s.code as StrataErrorCode, s.message);
  } else {
    err = Object.assign(new Error(s.message), {
      code: s.code,
      errno: s.errno,
      syscall: s.syscall,
      path: s.path,
    });
  }
  // The worker's stack is the useful one; ours only says "message received".
  if (s.stack !== undefined) err.stack = s.stack;
  return err;
}
