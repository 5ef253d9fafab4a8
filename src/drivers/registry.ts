/**
 * The storage drivers strata has, by name, and Docker's rules for picking one (facts §7.1).
 * An explicit map, read by the engine's composition root: nothing registers itself.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';

import { ConflictError, InvalidArgumentError, NotSupportedError, isErrno } from '../errors.js';
import type { Driver, DriverFactory } from './driver.js';
import { overlay2 } from './overlay2.js';
import { vfs } from './vfs.js';

export const drivers = { overlay2, vfs } as const satisfies Record<string, DriverFactory>;

export type DriverName = keyof typeof drivers;

/** Auto-selection order, best first (Docker's list, minus the drivers strata lacks). */
export const driverPriority: readonly DriverName[] = ['overlay2', 'vfs'];

/**
 * Drivers Docker dropped. Asking for one by name gets Docker's message rather than "no
 * such driver", so a daemon.json copied from an old host explains itself.
 */
const REMOVED_DRIVERS = new Set(['aufs', 'overlay', 'devicemapper']);

/**
 * Docker drivers strata does not implement: a request names a real driver, so it reads as
 * "not supported here" rather than as a typo.
 */
const FOREIGN_DRIVERS = new Set(['btrfs', 'zfs', 'fuse-overlayfs', 'windowsfilter']);

export interface DriverSelection {
  driver: Driver;
  /** Why this driver was chosen, one line, for `strata info` and debug logs. */
  reason: string;
}

function isDriverName(name: string): name is DriverName {
  return Object.hasOwn(drivers, name);
}

/** Docker's prior-state rule: `<root>/<name>` exists and holds something. */
async function hasPriorState(dataRoot: string, name: string): Promise<boolean> {
  try {
    return (await readdir(path.join(dataRoot, name))).length > 0;
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
    throw err;
  }
}

async function openExplicit(dataRoot: string, name: string): Promise<DriverSelection> {
  if (REMOVED_DRIVERS.has(name)) {
    throw new NotSupportedError(
      `[graphdriver] ERROR: the ${name} storage-driver has been deprecated and removed; ` +
        'visit https://docs.docker.com/go/storage-driver/ for more information',
    );
  }
  if (!isDriverName(name)) {
    if (FOREIGN_DRIVERS.has(name)) {
      throw new NotSupportedError(`error initializing graphdriver: driver not supported: ${name}`);
    }
    throw new InvalidArgumentError(`no such storage driver: ${name}`);
  }
  const factory = drivers[name];
  const probe = await factory.probe(dataRoot);
  if (!probe.ok) {
    throw new NotSupportedError(`error initializing graphdriver: driver not supported: ${name}: ${probe.reason}`);
  }
  return { driver: await factory.open(dataRoot), reason: `requested: ${name}` };
}

/**
 * Opens the storage driver for `dataRoot`.
 *
 * With `requested` (`--storage-driver`, `STRATA_DRIVER`, config): that driver or an error —
 * no fallback. Otherwise: a driver that already holds state under the root (vfs excluded,
 * as in Docker: an empty-looking vfs home is too cheap to count as a choice), then the
 * first driver in `driverPriority` whose probe passes.
 *
 * @example
 *   const { driver, reason } = await selectDriver('/var/lib/strata');
 *   // driver.name === 'overlay2', reason === 'auto: overlay2 is supported on extfs' (say)
 */
export async function selectDriver(dataRoot: string, requested?: string): Promise<DriverSelection> {
  if (requested !== undefined && requested !== '') return openExplicit(dataRoot, requested);

  const prior: DriverName[] = [];
  for (const name of driverPriority) {
    if (name !== 'vfs' && (await hasPriorState(dataRoot, name))) prior.push(name);
  }
  if (prior.length > 1) {
    throw new ConflictError(
      `${dataRoot} contains several valid graphdrivers: ${prior.join(', ')}; ` +
        'cleanup or explicitly choose storage driver (-s <DRIVER>)',
    );
  }
  if (prior.length === 1) {
    const name = prior[0]!;
    // Prior state is a commitment: failing to open it is fatal, never a silent switch.
    const driver = await drivers[name].open(dataRoot).catch((err: unknown) => {
      throw new NotSupportedError(`error initializing graphdriver: ${(err as Error).message}`, { cause: err });
    });
    return { driver, reason: `prior state: ${path.join(dataRoot, name)} is not empty` };
  }

  const skipped: string[] = [];
  for (const name of driverPriority) {
    const probe = await drivers[name].probe(dataRoot);
    if (!probe.ok) {
      skipped.push(`${name}: ${probe.reason}`);
      continue;
    }
    const driver = await drivers[name].open(dataRoot);
    const why = skipped.length > 0 ? ` (skipped ${skipped.join('; ')})` : '';
    return { driver, reason: `auto: ${name} is the first supported driver${why}` };
  }
  throw new NotSupportedError(`no supported storage driver found (${skipped.join('; ')})`);
}
