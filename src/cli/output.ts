/**
 * How the CLI reports failures, in one place (docker's conventions):
 *  - flag errors: `<message>\nSee '<cmd> --help'.`, exit 125;
 *  - wrong argument counts: the usage text, exit 1;
 *  - errors the engine reports (docker's daemon errors): `Error response from daemon: <msg>`;
 *  - errors of the CLI's own (files it opens, checks docker's client makes): the message as
 *    docker prints it, exit 1.
 * Stack traces are printed only with STRATA_DEBUG=1.
 */
import { StrataError } from '../errors.js';
import { ArgCountError, FlagError } from './args.js';
import { FormatError } from './format.js';
import { TemplateError } from './template.js';

/** An error message the CLI prints as it is (docker's client-side errors). */
export class ClientError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'ClientError';
    this.exitCode = exitCode;
  }
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  EEXIST: 'file exists',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  EBUSY: 'device or resource busy',
  EPIPE: 'broken pipe',
};

/** Go's *PathError text for a Node errno error: `open /x: no such file or directory`. */
export function errnoMessage(err: NodeJS.ErrnoException): string | undefined {
  if (typeof err.code !== 'string' || !err.syscall) return undefined;
  const text = ERRNO_TEXT[err.code] ?? err.message.replace(/^[A-Z]+: /, '').replace(/, .*$/, '');
  return err.path ? `${err.syscall} ${err.path}: ${text}` : `${err.syscall}: ${text}`;
}

/** The text and exit status for an error that ends a command. */
export function describeError(err: unknown, command: string): { text: string; code: number } {
  if (err instanceof FlagError) return { text: `${err.message}\nSee '${command} --help'.`, code: 125 };
  if (err instanceof ArgCountError) return { text: err.message, code: 1 };
  if (err instanceof ClientError) return { text: err.message, code: err.exitCode };
  if (err instanceof FormatError || err instanceof TemplateError) return { text: err.message, code: 1 };
  if (err instanceof StrataError) return { text: `Error response from daemon: ${err.message}`, code: 1 };
  const errno = err instanceof Error ? errnoMessage(err as NodeJS.ErrnoException) : undefined;
  if (errno) return { text: errno, code: 1 };
  return { text: `Error: ${err instanceof Error ? err.message : String(err)}`, code: 1 };
}
