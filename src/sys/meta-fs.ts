/**
 * `node:fs/promises` look-alikes for the small metadata files and directory entries the
 * stores keep (config.v2.json, layerdb records, lock files, short links...). They make the
 * syscall synchronously and return a settled promise, with the same errors and the same
 * types as `node:fs/promises`, so a module switches by changing its import.
 *
 * Why: a thread-pool round trip costs 50-200 µs on our 2-core VM while the syscall itself
 * costs 5-15 µs, and a command such as `run --rm` makes a few hundred of them before and
 * after the container's own work. Never use these for file contents of unbounded size or
 * for removing whole trees that can be large: those stay on `node:fs/promises`.
 */
import * as fs from 'node:fs';
import type * as promises from 'node:fs/promises';

type AnyFn = (...args: never[]) => unknown;

function settled<P extends AnyFn>(sync: AnyFn): P {
  const call = sync as (...args: unknown[]) => unknown;
  return (async (...args: unknown[]) => call(...args)) as unknown as P;
}

export const access = settled<typeof promises.access>(fs.accessSync);
export const chmod = settled<typeof promises.chmod>(fs.chmodSync);
export const chown = settled<typeof promises.chown>(fs.chownSync);
export const lstat = settled<typeof promises.lstat>(fs.lstatSync);
export const mkdir = settled<typeof promises.mkdir>(fs.mkdirSync);
export const readdir = settled<typeof promises.readdir>(fs.readdirSync);
export const readFile = settled<typeof promises.readFile>(fs.readFileSync);
export const readlink = settled<typeof promises.readlink>(fs.readlinkSync);
export const rename = settled<typeof promises.rename>(fs.renameSync);
export const rmdir = settled<typeof promises.rmdir>(fs.rmdirSync);
export const stat = settled<typeof promises.stat>(fs.statSync);
export const symlink = settled<typeof promises.symlink>(fs.symlinkSync);
export const unlink = settled<typeof promises.unlink>(fs.unlinkSync);
export const writeFile = settled<typeof promises.writeFile>(fs.writeFileSync);
/** For files and small directories only (a container's dir, a bundle): see above. */
export const rm = settled<typeof promises.rm>(fs.rmSync);
