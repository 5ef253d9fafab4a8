/**
 * What the container e2e suites share: why they cannot run here, a temp data root holding the
 * busybox base image, and removal of every container a suite left (processes, mounts,
 * network namespaces) before its root is deleted.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { buildBusybox, buildBusyboxSkipReason } from './fixtures.js';
import { makeTempRoot, releaseTempRoot, rootSkipReason, strata, strataOk, strataSkipReason } from './strata-cli.js';

export function runcSkipReason(): string | undefined {
  return existsSync('/usr/sbin/runc') || existsSync('/usr/bin/runc') ? undefined : 'runc is not installed; run scripts/setup.sh';
}

/** Why containers cannot run here (not root, strata not built, no busybox or runc), or undefined. */
export function containerSkipReason(): string | undefined {
  return strataSkipReason() ?? rootSkipReason() ?? buildBusyboxSkipReason() ?? runcSkipReason();
}

export interface BusyboxRoot {
  /** The temp dir holding everything of the suite. */
  dir: string;
  /** The strata data root, with busybox:latest loaded. */
  root: string;
  /** The busybox docker-archive. */
  archive: string;
}

export async function busyboxRoot(prefix: string, env?: NodeJS.ProcessEnv): Promise<BusyboxRoot> {
  const dir = makeTempRoot(prefix);
  const root = join(dir, 'root');
  const archive = join(dir, 'busybox.tar');
  buildBusybox(archive);
  await strataOk(['load', '-i', archive], { root, ...(env ? { env } : {}) });
  return { dir, root, archive };
}

/** Force-removes every container of `root` (and their anonymous volumes). */
export async function removeAllContainers(root: string, env?: NodeJS.ProcessEnv): Promise<void> {
  const o = { root, ...(env ? { env } : {}) };
  const ids = (await strata(['ps', '-aq'], o)).stdout.split('\n').filter(Boolean);
  if (ids.length > 0) await strata(['rm', '-f', '-v', ...ids], o);
}

/** removeAllContainers, then the suite's temp dir. */
export async function releaseBusyboxRoot(r: BusyboxRoot | undefined, env?: NodeJS.ProcessEnv): Promise<void> {
  if (!r) return;
  await removeAllContainers(r.root, env);
  releaseTempRoot(r.dir);
}
