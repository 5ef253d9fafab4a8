/**
 * vfs: every snapshot is a full copy of its parent, `<data-root>/vfs/dir/<id>/` (home and
 * `dir/` 0710), in Docker's layout. Works on any filesystem and needs no mounts, at the cost
 * of one copy per layer; on btrfs and xfs the copy shares extents (reflink) and costs
 * little disk.
 *
 * The copy (sys/copy-tree.ts, shared with volume prepopulation) keeps everything a layer can carry: type, permission and special bits,
 * ownership, atime/mtime, xattrs (all namespaces: trusted.*, security.* included), hard
 * links within the tree (never across snapshots: layers must not share inodes), symlinks
 * verbatim, device nodes, fifos and sockets.
 *
 * vfs keeps no per-snapshot metadata (Docker's vfs has none either), so `commit` is a no-op
 * and a snapshot's parent is not recorded.
 */
import { chmod, lstat, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';

import { AlreadyExistsError, InvalidArgumentError, NotFoundError, isErrno } from '../errors.js';
import { copyTree } from '../sys/copy-tree.js';
import { removeAll } from '../sys/fs.js';
import { mountsUnder, unmount } from '../sys/mount.js';
import type { Driver, DriverCapabilities, DriverFactory, Mount, Usage } from './driver.js';
import { treeUsage } from './probe.js';

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

function checkId(id: string): void {
  if (!ID_RE.test(id)) throw new InvalidArgumentError(`invalid snapshot id: ${JSON.stringify(id)}`);
}


class VfsDriver implements Driver {
  readonly name = 'vfs';
  readonly home: string;
  readonly capabilities: DriverCapabilities = {
    whiteouts: 'delete',
    layerDirIsDiff: false,
    maxDepth: Number.POSITIVE_INFINITY,
  };

  constructor(home: string) {
    this.home = home;
  }

  #dir(id: string): string {
    checkId(id);
    return path.join(this.home, 'dir', id);
  }

  async status(): Promise<Array<[string, string]>> {
    return [];
  }

  async prepare(id: string, parent?: string): Promise<void> {
    const dir = this.#dir(id);
    const parentDir = parent === undefined ? undefined : this.#dir(parent);
    if (parentDir !== undefined) await this.#requireExists(parent!, parentDir);
    if (await this.exists(id)) throw new AlreadyExistsError(`snapshot ${id} already exists`);
    try {
      if (parentDir === undefined) {
        await mkdir(dir, { mode: 0o755 });
        await chmod(dir, 0o755);
      } else {
        copyTree(parentDir, dir);
      }
    } catch (err) {
      if (isErrno(err, 'EEXIST') && (err as NodeJS.ErrnoException).path === dir) {
        throw new AlreadyExistsError(`snapshot ${id} already exists`, { cause: err });
      }
      await removeAll(dir).catch(() => undefined);
      throw err;
    }
  }

  async commit(id: string): Promise<void> {
    await this.#requireExists(id, this.#dir(id));
  }

  layerDir(id: string): string {
    return this.#dir(id);
  }

  /** The snapshot dir itself: a vfs snapshot is usable in place, as Docker's vfs Get returns it. */
  mountpoint(id: string): string {
    return this.#dir(id);
  }

  /**
   * A bind of the snapshot dir. At `mountpoint(id)` that is a bind onto itself, which the
   * mount module skips: nothing is mounted and the dir is used in place. Elsewhere it is a
   * real bind mount.
   */
  async mounts(id: string): Promise<Mount[]> {
    const dir = this.#dir(id);
    await this.#requireExists(id, dir);
    return [{ type: 'bind', source: dir, options: ['bind'] }];
  }

  /**
   * A read-only bind of the snapshot dir. Mounted at `mountpoint(id)` the bind is skipped
   * like in `mounts`, so read-only is only enforced when mounted elsewhere.
   */
  async view(id: string): Promise<Mount[]> {
    const dir = this.#dir(id);
    await this.#requireExists(id, dir);
    return [{ type: 'bind', source: dir, options: ['bind', 'ro'] }];
  }

  async remove(id: string): Promise<void> {
    const dir = this.#dir(id);
    for (const m of await mountsUnder(dir)) await unmount(m, { detach: true });
    await removeAll(dir);
  }

  async exists(id: string): Promise<boolean> {
    if (!ID_RE.test(id)) return false;
    try {
      return (await lstat(path.join(this.home, 'dir', id))).isDirectory();
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  /** Docker's calcSize over the whole copy (a vfs snapshot holds its full tree). */
  async usage(id: string): Promise<Usage> {
    const dir = this.#dir(id);
    await this.#requireExists(id, dir);
    return treeUsage(dir);
  }

  async list(): Promise<string[]> {
    const entries = await readdir(path.join(this.home, 'dir'), { withFileTypes: true });
    return entries
      .filter((e) => e.isDirectory() && ID_RE.test(e.name))
      .map((e) => e.name)
      .sort();
  }

  async metadata(id: string): Promise<Record<string, string>> {
    await this.#requireExists(id, this.#dir(id));
    return {};
  }

  async #requireExists(id: string, dir: string): Promise<void> {
    try {
      if ((await lstat(dir)).isDirectory()) return;
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    throw new NotFoundError(`snapshot ${id} does not exist`);
  }
}

async function ensureDirMode(dir: string, mode: number): Promise<void> {
  try {
    await mkdir(dir, { mode });
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
    return;
  }
  await chmod(dir, mode);
}

export const vfs: DriverFactory = {
  name: 'vfs',

  async probe() {
    return { ok: true };
  },

  async open(dataRoot) {
    await mkdir(dataRoot, { recursive: true, mode: 0o711 });
    const home = path.join(dataRoot, 'vfs');
    await ensureDirMode(home, 0o710);
    await ensureDirMode(path.join(home, 'dir'), 0o710);
    return new VfsDriver(home);
  },
};
