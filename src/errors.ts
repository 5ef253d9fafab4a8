/**
 * Error categories shared by every module. Callers branch on `code` (stable) or on the
 * class; the message is the Docker-style text a user sees. Domain detail goes into the
 * message and optional fields, not into new classes, unless a caller needs the fields.
 */
export type StrataErrorCode =
  | 'ERR_NOT_FOUND'
  | 'ERR_CONFLICT'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_ALREADY_EXISTS'
  | 'ERR_INVALID_ARCHIVE'
  | 'ERR_DIGEST_MISMATCH'
  | 'ERR_NOT_SUPPORTED'
  | 'ERR_LOCKED'
  | 'ERR_SYSTEM';

export class StrataError extends Error {
  readonly code: StrataErrorCode;
  constructor(code: StrataErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A named object (image, layer, reference, volume...) does not exist. */
export class NotFoundError extends StrataError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NOT_FOUND', message, options);
  }
}

/** The operation conflicts with the current state (image in use, tag taken...). */
export class ConflictError extends StrataError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CONFLICT', message, options);
  }
}

/** Bad user input: flags, names, references, option values. */
export class InvalidArgumentError extends StrataError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_ARGUMENT', message, options);
  }
}

export class AlreadyExistsError extends StrataError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_ALREADY_EXISTS', message, options);
  }
}

/**
 * An archive (layer tar, docker-archive, OCI layout) is malformed or hostile. `entry` names
 * the offending member when there is one.
 */
export class InvalidArchiveError extends StrataError {
  readonly entry?: string;
  constructor(message: string, options?: { cause?: unknown; entry?: string }) {
    super('ERR_INVALID_ARCHIVE', message, options);
    this.entry = options?.entry;
  }
}

/** Content did not hash to the digest it claims. */
export class DigestMismatchError extends StrataError {
  readonly expected: string;
  readonly actual: string;
  constructor(message: string, expected: string, actual: string) {
    super('ERR_DIGEST_MISMATCH', message);
    this.expected = expected;
    this.actual = actual;
  }
}

/** The environment (kernel, filesystem, privileges) cannot do what was asked. */
export class NotSupportedError extends StrataError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NOT_SUPPORTED', message, options);
  }
}

export function isErrno(err: unknown, code: string): err is NodeJS.ErrnoException {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}
