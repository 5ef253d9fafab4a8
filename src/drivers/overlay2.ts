/**
 * overlay2: Docker's overlay2 graph driver layout, byte for byte, under `<data-root>/overlay2`.
 *
 * ```
 * overlay2/                  0710
 *   l/                       0700  <LID> -> ../<id>/diff  (26-char base32 short links)
 *   <id>/                    0710
 *     diff/                  0755  the snapshot's own changes (the overlay upper dir)
 *     link                   0644  the LID, no newline
 *     lower                  0644  "l/<parent LID>:l/<grandparent LID>:...", absent for a base
 *     work/                  0700  overlay workdir, only when there is a parent
 *     merged/                0700  mount point, created by mounts()/view()
 *     committed              0600  empty; present once the snapshot is committed
 * ```
 *
 * Short links keep 128 lowers within one page of mount options. Mount options name the
 * `l/` symlinks (not their targets) exactly as Docker does, so a mount made by strata and
 * one made by dockerd on the same tree are the same mount.
 *
 * Differences from Docker, all compatible with a tree either of them wrote:
 *  - `committed` is written by `commit(id)`. Docker writes it into a parent when the first
 *    child is created; `prepare` does that too when the parent lacks it, so layers Docker
 *    committed implicitly work as parents.
 *  - `merged/` is created when mounts are asked for, also for base layers (which Docker
 *    returns unmounted), since the caller performs a bind mount there. It is not removed
 *    after unmounting: the driver does not see the unmount; an empty `merged/` is harmless
 *    and Docker leaves one behind too whenever its rmdir fails.
 */
import { constants as fsConstants } from 'node:fs';
import path from 'node:path';

import { access, chmod, lstat, mkdir, readFile, readdir, readlink, symlink, unlink, writeFile } from '../sys/meta-fs.js';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, NotSupportedError, isErrno } from '../errors.js';
import { atomicWriteFile } from '../sys/atomic.js';
import { removeAll } from '../sys/fs.js';
import { shortLinkId } from '../sys/ids.js';
import type { Driver, DriverCapabilities, DriverFactory, Mount, Usage } from './driver.js';
import { overlayNeedsIndexOff, probeOverlay, treeUsage } from './probe.js';

/** Lowers a snapshot may have; 26-char links make 128 of them fit one page (facts §2.6). */
export const OVERLAY_MAX_DEPTH = 128;

const LINK_DIR = 'l';
const LID_RE = /^[A-Z2-7]{26}$/;
/**
 * Ids become path components and mount option values, so `/`, `,` and `:` are out, and
 * the first character may not be a dot (scratch dirs) — which also excludes `.` and `..`.
 */
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

function checkId(id: string): void {
  if (!ID_RE.test(id) || id === LINK_DIR) throw new InvalidArgumentError(`invalid snapshot id: ${JSON.stringify(id)}`);
}

async function pathExists(p: string): Promise<boolean> {
  try {
    await access(p, fsConstants.F_OK);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

async function mkdirMode(dir: string, mode: number): Promise<void> {
  await mkdir(dir, { mode });
  // mkdir's mode passes through the umask; the layout needs the exact bits.
  await chmod(dir, mode);
}

async function ensureDirMode(dir: string, mode: number): Promise<void> {
  try {
    await mkdirMode(dir, mode);
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
  }
}

interface OverlayOptions {
  nativeDiff: boolean;
  backingFs: string;
  indexOff: boolean;
}

class OverlayDriver implements Driver {
  readonly name = 'overlay2';
  readonly home: string;
  readonly capabilities: DriverCapabilities;
  #options: OverlayOptions;

  constructor(home: string, options: OverlayOptions) {
    this.home = home;
    this.#options = options;
    this.capabilities = {
      whiteouts: 'overlay',
      layerDirIsDiff: true,
      maxDepth: OVERLAY_MAX_DEPTH,
      nativeDiff: options.nativeDiff,
    };
  }

  #dir(id: string): string {
    checkId(id);
    return path.join(this.home, id);
  }

  async status(): Promise<Array<[string, string]>> {
    return [
      ['Backing Filesystem', this.#options.backingFs],
      ['Supports d_type', 'true'],
      ['Native Overlay Diff', String(this.#options.nativeDiff)],
      ['userxattr', 'false'],
    ];
  }

  async prepare(id: string, parent?: string): Promise<void> {
    const dir = this.#dir(id);
    let lowers: string[] | undefined;
    if (parent !== undefined) {
      const parentDir = this.#dir(parent);
      lowers = await this.#lowersFor(parent, parentDir);
    }

    try {
      await mkdirMode(dir, 0o710);
    } catch (err) {
      if (isErrno(err, 'EEXIST')) throw new AlreadyExistsError(`snapshot ${id} already exists`, { cause: err });
      throw err;
    }
    try {
      // Independent entries of the new dir, made side by side. No fsync per file: the layer
      // store ends a registration with one syncfs.
      const made = await Promise.allSettled([
        mkdirMode(path.join(dir, 'diff'), 0o755),
        this.#createShortLink(id).then((lid) => atomicWriteFile(path.join(dir, 'link'), lid, { mode: 0o644, fsync: false })),
        lowers ? atomicWriteFile(path.join(dir, 'lower'), lowers.join(':'), { mode: 0o644, fsync: false }) : undefined,
        lowers ? mkdirMode(path.join(dir, 'work'), 0o700) : undefined,
        lowers ? this.#markCommitted(path.join(this.home, parent!)) : undefined,
      ]);
      // Every step settled before the clean-up below, so none can outlive it.
      const failed = made.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (err) {
      await this.remove(id).catch(() => undefined);
      throw err;
    }
  }

  /** The `lower` entries of a child of `parent`: its link first, then its own lowers. */
  async #lowersFor(parent: string, parentDir: string): Promise<string[]> {
    let parentLink: string;
    try {
      parentLink = (await readFile(path.join(parentDir, 'link'), 'utf8')).trim();
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new NotFoundError(`parent snapshot ${parent} does not exist`, { cause: err });
      throw err;
    }
    const lowers = [`${LINK_DIR}/${parentLink}`];
    const parentLower = await readFile(path.join(parentDir, 'lower'), 'utf8').catch((err: unknown) => {
      if (isErrno(err, 'ENOENT')) return '';
      throw err;
    });
    if (parentLower !== '') lowers.push(...parentLower.split(':'));
    if (lowers.length > OVERLAY_MAX_DEPTH) throw new InvalidArgumentError('max depth exceeded');
    return lowers;
  }

  /** Creates `l/<LID> -> ../<id>/diff` under a fresh LID and returns the LID. */
  async #createShortLink(id: string): Promise<string> {
    for (;;) {
      const lid = shortLinkId();
      try {
        await symlink(`../${id}/diff`, path.join(this.home, LINK_DIR, lid));
        return lid;
      } catch (err) {
        // 130 random bits make a collision a curiosity, but a retry costs nothing.
        if (!isErrno(err, 'EEXIST')) throw err;
      }
    }
  }

  async #markCommitted(dir: string): Promise<void> {
    const marker = path.join(dir, 'committed');
    if (await pathExists(marker)) return;
    await writeFile(marker, '', { mode: 0o600 });
  }

  async commit(id: string): Promise<void> {
    const dir = this.#dir(id);
    await this.#requireExists(id, dir);
    await this.#markCommitted(dir);
  }

  layerDir(id: string): string {
    return path.join(this.#dir(id), 'diff');
  }

  mountpoint(id: string): string {
    return path.join(this.#dir(id), 'merged');
  }

  /**
   * The read-write view of an active snapshot: a bind of `diff/` for a base layer, else an
   * overlay of its lowers under `diff/`. Like Docker's Get, a committed snapshot is only
   * ever mounted read-only, so for one this returns what `view` returns.
   */
  async mounts(id: string): Promise<Mount[]> {
    const dir = this.#dir(id);
    await this.#requireExists(id, dir);
    if (await pathExists(path.join(dir, 'committed'))) return this.view(id);
    await ensureDirMode(path.join(dir, 'merged'), 0o700);
    const lowers = await this.#readLower(dir);
    if (!lowers) return [{ type: 'bind', source: path.join(dir, 'diff'), options: ['bind'] }];
    return [
      {
        type: 'overlay',
        source: 'overlay',
        options: [
          ...this.#prefix(),
          `lowerdir=${lowers.map((l) => path.join(this.home, l)).join(':')}`,
          `upperdir=${path.join(dir, 'diff')}`,
          `workdir=${path.join(dir, 'work')}`,
        ],
      },
    ];
  }

  /**
   * A read-only view: the snapshot's `diff/` on top of its lowers, no upper (a read-only
   * bind of `diff/` for a base layer). Meant for committed snapshots; for an active one it
   * shows a moment's state of a directory that may still change underneath.
   */
  async view(id: string): Promise<Mount[]> {
    const dir = this.#dir(id);
    await this.#requireExists(id, dir);
    await ensureDirMode(path.join(dir, 'merged'), 0o700);
    const lowers = await this.#readLower(dir);
    if (!lowers) return [{ type: 'bind', source: path.join(dir, 'diff'), options: ['bind', 'ro'] }];
    return [
      {
        type: 'overlay',
        source: 'overlay',
        options: [
          ...this.#prefix(),
          `lowerdir=${[path.join(dir, 'diff'), ...lowers.map((l) => path.join(this.home, l))].join(':')}`,
        ],
      },
    ];
  }

  #prefix(): string[] {
    return this.#options.indexOff ? ['index=off'] : [];
  }

  /** The `lower` file's entries, or undefined for a base layer. */
  async #readLower(dir: string): Promise<string[] | undefined> {
    try {
      const lower = await readFile(path.join(dir, 'lower'), 'utf8');
      return lower === '' ? undefined : lower.split(':');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  async #requireExists(id: string, dir: string): Promise<void> {
    try {
      if ((await lstat(dir)).isDirectory()) return;
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    throw new NotFoundError(`snapshot ${id} does not exist`);
  }

  /**
   * Detaches anything still mounted under the snapshot, drops its short link and deletes
   * it. Removing a missing snapshot succeeds, so an interrupted removal can be repeated.
   */
  async remove(id: string): Promise<void> {
    const dir = this.#dir(id);
    await this.#removeShortLink(id, dir);
    // removeAll detaches whatever is still mounted below the snapshot before deleting.
    await removeAll(dir);
  }

  async #removeShortLink(id: string, dir: string): Promise<void> {
    const linkDir = path.join(this.home, LINK_DIR);
    const expected = `../${id}/diff`;
    // Only a link that really points at this snapshot is ours to delete: a damaged `link`
    // file must not take another layer's short link with it.
    const unlinkIfOurs = async (name: string): Promise<boolean> => {
      const full = path.join(linkDir, name);
      try {
        if ((await readlink(full)) !== expected) return false;
        await unlink(full);
        return true;
      } catch (err) {
        if (isErrno(err, 'ENOENT') || isErrno(err, 'EINVAL')) return false;
        throw err;
      }
    };
    const lid = await readFile(path.join(dir, 'link'), 'utf8').then(
      (s) => s.trim(),
      (err: unknown) => {
        if (isErrno(err, 'ENOENT')) return undefined;
        throw err;
      },
    );
    if (lid !== undefined && LID_RE.test(lid) && (await unlinkIfOurs(lid))) return;
    // No usable `link` file (a crash during prepare, or damage): find the link by target.
    for (const name of await readdir(linkDir).catch(() => [] as string[])) await unlinkIfOurs(name);
  }

  async exists(id: string): Promise<boolean> {
    if (!ID_RE.test(id) || id === LINK_DIR) return false;
    try {
      return (await lstat(path.join(this.home, id))).isDirectory();
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  async usage(id: string): Promise<Usage> {
    const dir = this.#dir(id);
    await this.#requireExists(id, dir);
    return treeUsage(path.join(dir, 'diff'));
  }

  async list(): Promise<string[]> {
    const entries = await readdir(this.home, { withFileTypes: true });
    return entries
      .filter((e) => e.isDirectory() && e.name !== LINK_DIR && ID_RE.test(e.name))
      .map((e) => e.name)
      .sort();
  }

  /**
   * Docker's GraphDriver.Data: `LowerDir` holds the resolved `<home>/<id>/diff` of every
   * lower (nearest first) and is present only when the snapshot has lowers. Keys are in
   * the sorted order Go's JSON encoding of a map produces.
   */
  async metadata(id: string): Promise<Record<string, string>> {
    const dir = this.#dir(id);
    await this.#requireExists(id, dir);
    const data: Record<string, string> = {};
    const lowers = await this.#readLower(dir);
    if (lowers) {
      const resolved: string[] = [];
      for (const l of lowers) resolved.push(path.resolve(path.join(this.home, LINK_DIR), await readlink(path.join(this.home, l))));
      data.LowerDir = resolved.join(':');
    }
    data.MergedDir = path.join(dir, 'merged');
    data.UpperDir = path.join(dir, 'diff');
    data.WorkDir = path.join(dir, 'work');
    return data;
  }
}

/** Where the overlay probes run: the home once it exists, else the data root (as Docker). */
async function probeDir(dataRoot: string): Promise<string> {
  const home = path.join(dataRoot, 'overlay2');
  if (await pathExists(home)) return home;
  await mkdir(dataRoot, { recursive: true, mode: 0o711 });
  return dataRoot;
}

export const overlay2: DriverFactory = {
  name: 'overlay2',

  async probe(dataRoot) {
    const result = await probeOverlay(await probeDir(dataRoot), dataRoot);
    return result.ok ? { ok: true } : result;
  },

  async open(dataRoot) {
    const result = await probeOverlay(await probeDir(dataRoot), dataRoot);
    if (!result.ok) throw new NotSupportedError(`driver not supported: overlay2: ${result.reason}`);
    const home = path.join(dataRoot, 'overlay2');
    await ensureDirMode(home, 0o710);
    await ensureDirMode(path.join(home, LINK_DIR), 0o700);
    return new OverlayDriver(home, {
      nativeDiff: result.nativeDiff,
      backingFs: result.backingFs,
      indexOff: overlayNeedsIndexOff(),
    });
  },
};
