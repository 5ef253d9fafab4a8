/**
 * A real pipe, made from a FIFO that is unlinked at once (Node has no pipe(2); its own stdio
 * pipes are socketpairs, and a program cannot reopen /dev/stdout when that is a socket).
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, openSync, unlinkSync } from 'node:fs';
import path from 'node:path';

import { native } from '../native/addon.js';

export interface Pipe {
  read: number;
  write: number;
}

/** A pipe whose FIFO briefly lives in `dir`. */
export function makePipe(dir: string): Pipe {
  const c = native().constants;
  const p = path.join(dir, `.fifo-${randomBytes(6).toString('hex')}`);
  native().mknod(p, c.S_IFIFO | 0o600, 0, 0);
  try {
    // Opening the read end non-blocking first is what lets the write end open without a
    // reader-side wait; libuv wants a non-blocking fd for the read end anyway.
    const read = openSync(p, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    const write = openSync(p, fsConstants.O_WRONLY);
    return { read, write };
  } finally {
    unlinkSync(p);
  }
}
