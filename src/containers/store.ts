/**
 * The container store: `<data-root>/containers/<id>/{config.v2.json,hostconfig.json,...}` in
 * Docker's layout, plus a name index Docker keeps in daemon memory and strata, having no
 * daemon, keeps on disk: `containers/.names/<name>` holding the owner's ID, created with
 * O_EXCL so two processes can never give out one name.
 *
 * The store persists what it is given (Docker's JSON shapes are the engine's business) and
 * answers lookups the way Docker does: full ID, then exact name, then unique ID prefix.
 *
 * Crash safety: a container exists once its config.v2.json does (written atomically, last in
 * `create`). A directory without it, or a name entry whose container has none, is a leftover
 * of a crashed create and is ignored, then reaped by `recover()`.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';

import { mkdir, readFile, readdir, rename, rm, unlink } from '../sys/meta-fs.js';
import { ConflictError, InvalidArgumentError, NotFoundError, isErrno } from '../errors.js';
import { atomicWriteFile } from '../sys/atomic.js';
import { ensureDir, readOptional } from '../sys/fs.js';
import { isLockHeld, withLock } from '../sys/lock.js';

export const CONFIG_FILE = 'config.v2.json';
export const HOST_CONFIG_FILE = 'hostconfig.json';
const NAMES_DIR = '.names';
const LOCK_FILE = '.lock';
const ID_RE = /^[0-9a-f]{64}$/;

/** The fields the store itself relies on; the rest of Docker's JSON passes through. */
export interface StoredContainer {
  ID: string;
  /** `/name`, as Docker stores it. */
  Name: string;
  [key: string]: unknown;
}

export class ContainerStore {
  /** `<data-root>/containers`. */
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  static async open(dataRoot: string): Promise<ContainerStore> {
    const root = path.join(dataRoot, 'containers');
    await ensureDir(root, 0o710);
    await ensureDir(path.join(root, NAMES_DIR), 0o700);
    return new ContainerStore(root);
  }

  dir(id: string): string {
    if (!ID_RE.test(id)) throw new InvalidArgumentError(`invalid container ID ${JSON.stringify(id)}`);
    return path.join(this.root, id);
  }

  #nameFile(name: string): string {
    return path.join(this.root, NAMES_DIR, name);
  }

  /** Runs `fn` holding the store lock (name changes, removal). */
  locked<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(path.join(this.root, LOCK_FILE), 'exclusive', fn);
  }

  async #nameOwner(name: string): Promise<string | undefined> {
    const id = (await readOptional(this.#nameFile(name)))?.toString('utf8').trim();
    if (id === undefined || !ID_RE.test(id)) return undefined;
    return id;
  }

  /**
   * Claims `name` for `id`. A name held by a container whose create never finished (no
   * config, no live creator) is taken over.
   */
  async reserveName(name: string, id: string): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(this.#nameFile(name), 'wx', 0o600);
        try {
          await handle.writeFile(id);
          await handle.sync();
        } finally {
          await handle.close();
        }
        return;
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
      const owner = await this.#nameOwner(name);
      if (owner !== undefined && (await this.exists(owner) || (await this.#creating(owner)))) {
        throw new ConflictError(
          `Conflict. The container name "/${name}" is already in use by container "${owner}". You have to remove (or rename) that container to be able to reuse that name.`,
        );
      }
      await unlink(this.#nameFile(name)).catch(() => undefined);
    }
    throw new ConflictError(`The container name "/${name}" is being claimed by another process`);
  }

  /** Whether a create of `id` is in progress (its directory exists and its creator holds it). */
  async #creating(id: string): Promise<boolean> {
    return isLockHeld(path.join(this.dir(id), '.creating')).catch(() => false);
  }

  async releaseName(name: string, id: string): Promise<void> {
    if ((await this.#nameOwner(name)) === id) await unlink(this.#nameFile(name)).catch(() => undefined);
  }

  async exists(id: string): Promise<boolean> {
    try {
      await readFile(path.join(this.dir(id), CONFIG_FILE), { flag: 'r' }).then(() => undefined);
      return true;
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
      throw err;
    }
  }

  /** Makes `containers/<id>/` (0710) for a container being created. */
  async makeDir(id: string): Promise<string> {
    const dir = this.dir(id);
    await mkdir(dir, { mode: 0o710 });
    return dir;
  }

  /** Writes hostconfig.json: JSON + "\n", 0600, atomic. */
  async writeHostConfig(id: string, hostConfig: object): Promise<void> {
    await atomicWriteFile(path.join(this.dir(id), HOST_CONFIG_FILE), `${JSON.stringify(hostConfig)}\n`, { mode: 0o600 });
  }

  /** Writes config.v2.json (and hostconfig.json when given): JSON + "\n", 0600, atomic. */
  async write(container: StoredContainer, hostConfig?: object): Promise<void> {
    const dir = this.dir(container.ID);
    if (hostConfig !== undefined) {
      await atomicWriteFile(path.join(dir, HOST_CONFIG_FILE), `${JSON.stringify(hostConfig)}\n`, { mode: 0o600 });
    }
    await atomicWriteFile(path.join(dir, CONFIG_FILE), `${JSON.stringify(container)}\n`, { mode: 0o600 });
  }

  async read<T extends StoredContainer, H = Record<string, unknown>>(id: string): Promise<{ container: T; hostConfig: H }> {
    const dir = this.dir(id);
    let text: string;
    try {
      text = await readFile(path.join(dir, CONFIG_FILE), 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new NotFoundError(`No such container: ${id}`);
      throw err;
    }
    const container = JSON.parse(text) as T;
    const host = await readOptional(path.join(dir, HOST_CONFIG_FILE));
    return { container, hostConfig: (host ? JSON.parse(host.toString('utf8')) : {}) as H };
  }

  /** IDs of every container (complete ones: config.v2.json present). */
  async ids(): Promise<string[]> {
    const out: string[] = [];
    for (const name of await readdir(this.root)) {
      if (ID_RE.test(name) && (await this.exists(name))) out.push(name);
    }
    return out;
  }

  /**
   * Docker's lookup: a full ID, then an exact name (with or without `/`), then a unique ID
   * prefix. NotFoundError `No such container: <ref>` otherwise.
   */
  async resolve(ref: string): Promise<string> {
    if (ref === '') throw new NotFoundError('No such container: ');
    if (ID_RE.test(ref) && (await this.exists(ref))) return ref;
    const name = ref.startsWith('/') ? ref.slice(1) : ref;
    if (/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) {
      const owner = await this.#nameOwner(name);
      if (owner !== undefined && (await this.exists(owner))) return owner;
    }
    if (/^[0-9a-f]{1,63}$/.test(ref)) {
      const matches = (await this.ids()).filter((id) => id.startsWith(ref));
      if (matches.length === 1) return matches[0]!;
      if (matches.length > 1) throw new InvalidArgumentError(`multiple IDs found with provided prefix: ${ref}`);
    }
    throw new NotFoundError(`No such container: ${ref}`);
  }

  /** Moves a name from one owner to a new name, under the store lock. */
  async rename(id: string, oldName: string, newName: string, update: () => Promise<void>): Promise<void> {
    await this.locked(async () => {
      await this.reserveName(newName, id);
      try {
        await update();
      } catch (err) {
        await this.releaseName(newName, id);
        throw err;
      }
      await this.releaseName(oldName, id);
    });
  }

  /**
   * Deletes a container's directory and name. The directory is renamed out of the way first,
   * so a crash mid-way leaves no half container that lookups would find.
   */
  async remove(id: string, name: string): Promise<void> {
    const dir = this.dir(id);
    const doomed = path.join(this.root, `.removing-${id}`);
    try {
      await rename(dir, doomed);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    await this.releaseName(name, id);
    await rm(doomed, { recursive: true, force: true });
  }

  /** Reaps leftovers of crashed creates and removals. */
  async recover(): Promise<void> {
    for (const name of await readdir(this.root)) {
      if (name.startsWith('.removing-')) await rm(path.join(this.root, name), { recursive: true, force: true });
    }
    for (const name of await readdir(path.join(this.root, NAMES_DIR))) {
      const owner = await this.#nameOwner(name);
      if (owner === undefined || (!(await this.exists(owner)) && !(await this.#creating(owner)))) {
        await unlink(this.#nameFile(name)).catch(() => undefined);
      }
    }
  }

  /** Where a container's create-in-progress marker lives (locked by its creator). */
  creatingMarker(id: string): string {
    return path.join(this.dir(id), '.creating');
  }
}
