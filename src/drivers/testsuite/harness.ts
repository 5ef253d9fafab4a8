/**
 * Per-case environment of the driver conformance suite: a fresh temp dir holding the data
 * root, mount targets and reference trees; real mounts through sys/mount; cleanup that
 * runs even when the case fails.
 *
 * The oracle is replay: the suite records the fixture operations applied to each snapshot,
 * and the expected tree of a snapshot is those of its ancestors and its own, replayed in
 * order into a plain directory. What a driver's merged view shows must equal that tree.
 */
import { chmod, lchown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { mountAll, mountsUnder, unmount } from '../../sys/mount.js';
import type { Driver, Mount } from '../driver.js';
import { applyFs, assertSameTree, formatTree, snapshotTree, type FsOp, type SnapshotOptions } from './fs-dsl.js';

/** xattrs a host may add on its own (LSM labels) are not part of what a layer carries. */
const TREE_OPTIONS: SnapshotOptions = { xattrs: (name) => !name.startsWith('security.selinux') };

export interface CaseContext {
  readonly driver: Driver;
  /** The data root the driver was opened on (`driver.home` is inside it). */
  readonly root: string;
  /** Scratch space of this case, deleted afterwards. */
  readonly tmp: string;
  /** Mounts `mounts` at `target` (default: a fresh dir), returns the target. */
  mount(mounts: Mount[], target?: string): Promise<string>;
  unmount(target: string): Promise<void>;
  /** Records `ops` as applied to snapshot `id` on top of `parent`, for `expected`. */
  record(id: string, parent: string | undefined, ...ops: FsOp[]): void;
  /**
   * The kernel path of a layer: prepare(id, parent), mount mounts(id), apply `ops` through
   * the mount, unmount, commit(id). Records the ops.
   */
  layer(id: string, parent: string | undefined, ...ops: FsOp[]): Promise<void>;
  /** A fresh directory holding the replayed tree of `id` (see module comment). */
  expected(id: string): Promise<string>;
  /** Mounts `view(id)` (or `mounts(id)` with `rw`), compares it with `expected(id)`, unmounts. */
  assertTree(id: string, options?: { rw?: boolean }): Promise<void>;
  /** A second driver instance opened on the same data root. */
  reopen(): Promise<Driver>;
}

interface Recorded {
  parent: string | undefined;
  ops: FsOp[];
}

export async function createCase(open: (root: string) => Promise<Driver>): Promise<{ ctx: CaseContext; cleanup(): Promise<void>; dump(): Promise<string> }> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'strata-driver-suite-'));
  const root = path.join(tmp, 'root');
  await mkdir(root);
  const mounted: string[] = [];
  const recorded = new Map<string, Recorded>();
  let counter = 0;
  const fresh = async (prefix: string): Promise<string> => {
    const dir = path.join(tmp, `${prefix}-${++counter}`);
    await mkdir(dir);
    return dir;
  };

  const cleanup = async (): Promise<void> => {
    for (const target of mounted.reverse()) await unmount(target, { detach: true });
    // Anything the case mounted without telling us (or left stacked) goes too, before rm
    // could walk through a mount.
    for (const m of await mountsUnder(tmp)) await unmount(m, { detach: true });
    await rm(tmp, { recursive: true, force: true });
  };

  let driver: Driver;
  try {
    driver = await open(root);
  } catch (err) {
    await cleanup();
    throw err;
  }

  const ctx: CaseContext = {
    driver,
    root,
    tmp,
    async mount(mounts, target) {
      const where = target ?? (await fresh('mnt'));
      await mkdir(where, { recursive: true });
      await mountAll(mounts, where);
      mounted.push(where);
      return where;
    },
    async unmount(target) {
      await unmount(target);
      const i = mounted.lastIndexOf(target);
      if (i >= 0) mounted.splice(i, 1);
    },
    record(id, parent, ...ops) {
      const entry = recorded.get(id);
      if (entry) entry.ops.push(...ops);
      else recorded.set(id, { parent, ops: [...ops] });
    },
    async layer(id, parent, ...ops) {
      await driver.prepare(id, parent);
      const target = await ctx.mount(await driver.mounts(id));
      try {
        await applyFs(target, ...ops);
      } finally {
        await ctx.unmount(target);
      }
      await driver.commit(id);
      ctx.record(id, parent, ...ops);
    },
    async expected(id) {
      const chain: FsOp[][] = [];
      for (let at: string | undefined = id; at !== undefined; ) {
        const entry = recorded.get(at);
        if (!entry) throw new Error(`suite bug: nothing recorded for snapshot ${at}`);
        chain.unshift(entry.ops);
        at = entry.parent;
      }
      const dir = await fresh('expected');
      // A snapshot's root is a 0755 root-owned dir in every driver's layout.
      await chmod(dir, 0o755);
      await lchown(dir, 0, 0);
      for (const ops of chain) await applyFs(dir, ...ops);
      return dir;
    },
    reopen: () => open(root),
    async assertTree(id, options = {}) {
      const want = await ctx.expected(id);
      const target = await ctx.mount(options.rw ? await driver.mounts(id) : await driver.view(id));
      try {
        await assertSameTree(target, want, TREE_OPTIONS);
      } finally {
        await ctx.unmount(target);
      }
    },
  };

  const dump = async (): Promise<string> => {
    const lines = formatTree(await snapshotTree(tmp)).split('\n');
    return lines.length > 400 ? [...lines.slice(0, 400), `... ${lines.length - 400} more`].join('\n') : lines.join('\n');
  };

  return { ctx, cleanup, dump };
}
