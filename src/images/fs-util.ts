/** Small filesystem helpers for the image-side stores. */
import { chmod, mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';

import { isErrno } from '../errors.js';

/**
 * mkdir -p that gives the dirs it creates exactly `mode` (not `mode` minus the umask) and
 * leaves existing ones as they are.
 */
export async function ensureDir(dir: string, mode: number): Promise<void> {
  try {
    await mkdir(dir, { mode });
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return;
    if (!isErrno(err, 'ENOENT')) throw err;
    await ensureDir(path.dirname(dir), mode);
    return ensureDir(dir, mode);
  }
  await chmod(dir, mode);
}

/** A file's bytes, or undefined when it (or a directory above it) does not exist. */
export async function readOptional(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}

/** A directory's entry names, or none when it does not exist. */
export async function readdirOptional(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
}
