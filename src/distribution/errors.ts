/**
 * Registry failures. A registry that answers with an error status becomes a `RegistryError`
 * carrying the status and the `errors` array of the distribution spec's error body, because
 * callers branch on them (retry a 5xx, tell the user to log in on a 401). A connection that
 * breaks is a plain `StrataError('ERR_SYSTEM')` whose `cause` is the socket error;
 * `isTransient()` tells the retry loops which failures are worth another attempt.
 */
import { StrataError, type StrataErrorCode } from '../errors.js';

/** One entry of the spec's error body: `{"errors":[{"code","message","detail"}]}`. */
export interface RegistryErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

function codeForStatus(status: number): StrataErrorCode {
  if (status === 404) return 'ERR_NOT_FOUND';
  // Bad credentials and denied access are the user's to fix, like a bad flag.
  if (status === 400 || status === 401 || status === 403 || status === 416) return 'ERR_INVALID_ARGUMENT';
  if (status === 405) return 'ERR_NOT_SUPPORTED';
  if (status === 409 || status === 412) return 'ERR_CONFLICT';
  return 'ERR_SYSTEM';
}

export class RegistryError extends StrataError {
  readonly status: number;
  readonly errors: RegistryErrorEntry[];
  /** The server may well succeed if asked again (5xx, 429). */
  readonly temporary: boolean;

  constructor(message: string, options: { status: number; errors?: RegistryErrorEntry[]; cause?: unknown }) {
    super(codeForStatus(options.status), message, { cause: options.cause });
    this.status = options.status;
    this.errors = options.errors ?? [];
    this.temporary = options.status >= 500 || options.status === 429 || this.errors.some((e) => e.code === 'TOOMANYREQUESTS');
  }

  get unauthorized(): boolean {
    return this.status === 401 || this.errors.some((e) => e.code === 'UNAUTHORIZED');
  }

  hasCode(code: string): boolean {
    return this.errors.some((e) => e.code === code);
  }
}

/** Docker's rendering of a spec error: `manifest unknown: manifest unknown`. */
export function formatRegistryErrors(errors: readonly RegistryErrorEntry[]): string {
  return errors.map((e) => `${e.code.toLowerCase().replace(/_/g, ' ')}: ${e.message}`).join('; ');
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENETDOWN', 'EAI_AGAIN', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_SOCKET_CLOSED', 'ERR_HTTP_REQUEST_TIMEOUT',
]);

/** A broken connection, a timeout or a temporary server failure: worth retrying. */
export function isTransient(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof RegistryError) return e.temporary;
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
    const message = (e as Error).message;
    if (message === 'aborted' || message === 'socket hang up') return true;
  }
  return false;
}

/** Wraps a socket-level failure of a request so the message names what was being done. */
export function transportError(what: string, cause: unknown): StrataError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new StrataError('ERR_SYSTEM', `${what}: ${detail}`, { cause });
}
