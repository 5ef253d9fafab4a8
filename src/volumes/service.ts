/**
 * Managed volumes (the `local` driver) under `<data-root>/volumes/`, shared by every strata
 * process using that root, with Docker's semantics, messages and JSON, and a safety net
 * Docker does not have.
 *
 * ## On disk
 * ```
 * volumes/                 0701
 *   .lock                  flock: every mutation holds it exclusively
 *   .staging/              0700  volumes being created or deleted (crash leftovers reaped)
 *   .trash/<name>-<ms>/    0700  removed volumes, whole, kept for the grace period
 *   <name>/                0701  (Docker's layout)
 *     _data/               0755  the data; the container mounts this
 *     opts.json            0600  driver options, Docker's exact bytes (only with options)
 *     strata.json          0600  {Name, Driver, Labels, Options, CreatedAt}
 *     refs/<containerId>         empty files: containers using the volume
 *     mounts/<refId>             empty files: users of a mounted (`-o type=...`) volume
 * ```
 * Docker keeps names, labels, options and nothing else in a bbolt `metadata.db`, and
 * references and mount counts in daemon memory. A daemonless engine has no memory that
 * outlives a command, so all of it is on disk, one small file per fact: a new volume is built
 * in `.staging/` (data dir, metadata fsynced, references) and renamed into place, so it
 * appears whole or not at all; references and mount users are single file creations and
 * unlinks (the directory fsynced). Reads take no lock: every change they can observe is one
 * rename or one link. strata neither reads nor writes `metadata.db`; a volume directory
 * without `strata.json` (made by Docker, or with lost metadata) is still listed, with null
 * labels and options rebuilt from `opts.json`, so data is never hidden.
 *
 * `CreatedAt` is the ctime of `volumes/<name>` as in Docker. Nothing touches that directory
 * after creation (references and mounts live in subdirectories), so it stays put; a restore
 * from the trash renames it, so a restored volume shows its restore time.
 *
 * ## References and removal
 * Containers reference volumes by id (`create({reference})`, `addReference`,
 * `releaseReference`). A referenced volume is never removed, by `remove` (even forced, as in
 * Docker) or `prune`, whether the container runs or not.
 *
 * ## The trash (beyond Docker)
 * `remove` and `prune` move the volume directory to `.trash/<name>-<ms>/` by default instead
 * of deleting it; `restore(name)` moves the newest one back. Entries older than the grace
 * period (default 24 h) are purged by later mutations (each service instance looks at most
 * once a minute). `listTrash`/`purgeTrash` expose it. `{ trash: false }` deletes at once
 * (still renamed out of sight first, so a crash never leaves half a volume listed). Space
 * reported by prune (`SpaceReclaimed`) is Docker's figure, freed when the trash is purged.
 *
 * ## Locks
 * `volumes/.lock` (exclusive) serialises mutations across processes. `prepopulate`, which
 * may copy gigabytes, holds only a lock on its volume's directory, plus the global lock for
 * the moments it mounts; removal refuses a volume being populated instead of waiting.
 */
import { constants as fsConstants } from 'node:fs';
import { chmodSync, closeSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, openSync, readdirSync } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, realpath, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

import { ConflictError, InvalidArgumentError, NotFoundError, StrataError, isErrno } from '../errors.js';
import { native } from '../native/addon.js';
import { atomicWriteFile, syncDirectory } from '../sys/atomic.js';
import { copyAttributes, copyTree, utimeSeconds } from '../sys/copy-tree.js';
import { removeAll } from '../sys/fs.js';
import { randomId } from '../sys/ids.js';
import { withLock } from '../sys/lock.js';
import { mountsUnder } from '../sys/mount.js';
import { compileFilters, LIST_FILTERS, pruneAll, PRUNE_FILTERS, validateFilterKeys, type VolumeFilters } from './filters.js';
import { formatRFC3339, goJSON, naturalCompare, sortedMap } from './go-compat.js';
import {
  ANONYMOUS_LABEL,
  LOCAL_DRIVER,
  mountLocalVolume,
  needsMount,
  optionsFromOptsConfig,
  optsConfig,
  unmountLocalVolume,
  validateCreate,
  VOLUME_NAME_RE,
  type OptsConfig,
} from './local-driver.js';

/** Default time a removed volume stays restorable. */
export const DEFAULT_TRASH_GRACE_MS = 24 * 60 * 60 * 1000;
const TRASH_CHECK_INTERVAL_MS = 60 * 1000;

const LOCK_FILE = '.lock';
const STAGING_DIR = '.staging';
const TRASH_DIR = '.trash';
const DATA_DIR = '_data';
const META_FILE = 'strata.json';
const OPTS_FILE = 'opts.json';
const REFS_DIR = 'refs';
const MOUNTS_DIR = 'mounts';
/**
 * Prepopulation stages its copy in `_data/.strata-populate-<16 hex>/` (inside `_data`, so on
 * the same filesystem even when something is mounted there). The random part keeps it clear
 * of any name in the copied content; the magic file, written first, is what lets recovery
 * tell its own leftovers from user data that merely looks alike.
 */
const POPULATE_PREFIX = '.strata-populate-';
const POPULATE_RE = /^\.strata-populate-[0-9a-f]{16}$/;
const POPULATE_MAGIC_FILE = 'strata-populate';
const POPULATE_MAGIC = 'strata-populate v1\n';
const POPULATE_DONE = 'complete';

/** Container ids and mount reference ids become file names, so they must be safe ones. */
const REF_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

/** `volume inspect` / `volume ls` output, keys in Docker's order. */
export interface VolumeJSON {
  CreatedAt: string;
  Driver: string;
  Labels: Record<string, string> | null;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string> | null;
  Scope: 'local';
}

/** A volume as the service knows it. */
export interface Volume {
  name: string;
  driver: string;
  /** null when created without labels (e.g. implicitly by `run -v name:/x`). */
  labels: Record<string, string> | null;
  /** Driver options as given at creation; null when none were given. */
  options: Record<string, string> | null;
  /** The `_data` directory. */
  mountpoint: string;
  /** ctime of the volume directory (Docker's CreatedAt). */
  createdAt: Date;
  /** Carries Docker's anonymous label. */
  anonymous: boolean;
  /** Ids of the containers referencing it, sorted. */
  references: string[];
  /** Whether `_data` gets a device mounted on it (options `type`/`device`). */
  needsMount: boolean;
}

export interface CreateVolumeRequest {
  /** Omitted or '': an anonymous volume with a 64-hex name and the anonymous label. */
  name?: string;
  driver?: string;
  /** null (the default) and {} are kept apart: inspect shows them as `null` and `{}`. */
  labels?: Record<string, string> | null;
  options?: Record<string, string> | null;
  /** A container id recorded as a reference in the same step, so no prune can slip between. */
  reference?: string;
}

export interface RemoveOptions {
  /** A volume that does not exist is not an error. A referenced one still is (as in Docker). */
  force?: boolean;
  /** Keep the volume in the trash (default true). */
  trash?: boolean;
}

export interface PruneOptions {
  /** Also named volumes (Docker 23+'s `--all`); by default only anonymous ones. */
  all?: boolean;
  /** `label`, `label!`, `all`. */
  filters?: VolumeFilters;
  trash?: boolean;
}

export interface PruneReport {
  VolumesDeleted: string[];
  SpaceReclaimed: number;
}

export interface TrashEntry {
  name: string;
  removedAt: Date;
  /** The entry's directory under `volumes/.trash/`. */
  path: string;
}

export interface VolumeServiceOptions {
  /** The strata data root; volumes live in `<dataRoot>/volumes`. */
  dataRoot: string;
  /** How long removed volumes stay restorable (default 24 h). */
  trashGraceMs?: number;
  /** Milliseconds since the epoch; injectable so tests can age the trash. */
  now?: () => number;
}

/** Content of `_data/.strata-populate/complete`: the source root's times (ns, as decimal strings). */
interface PopulateMarker {
  atimeNs: string;
  mtimeNs: string;
}

interface StoredMeta {
  Name: string;
  Driver: string;
  Labels: Record<string, string> | null;
  Options: Record<string, string> | null;
  CreatedAt: string;
}

/**
 * Docker's calcSize for volumes: bytes of every non-directory (lstat size, so a symlink
 * counts its target's length), each inode once. Missing entries (removed while walking)
 * count as nothing.
 */
export function volumeDataSize(dir: string): number {
  let size = 0;
  const seen = new Set<string>();
  const walk = (d: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch (err) {
      if (isErrno(err, 'ENOENT') && d !== dir) return;
      throw err;
    }
    for (const name of entries) {
      const full = path.join(d, name);
      const st = lstatSync(full, { bigint: true, throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) {
        walk(full);
        continue;
      }
      if (st.size === 0n) continue;
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
      size += Number(st.size);
    }
  };
  walk(dir);
  return size;
}

async function ensureDir(dir: string, mode: number): Promise<void> {
  try {
    await mkdir(dir, { mode });
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return;
    throw err;
  }
  // mkdir's mode passes through the umask.
  const handle = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await handle.chmod(mode);
  } finally {
    await handle.close();
  }
}

async function mkdirExact(dir: string, mode: number): Promise<void> {
  await mkdir(dir, { mode });
  const handle = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await handle.chmod(mode);
  } finally {
    await handle.close();
  }
}

/**
 * Creates (or keeps) an empty file and fsyncs its directory, making the fact durable. The
 * directory is created if missing (volumes adopted from a Docker root have no refs/).
 */
async function touchDurably(dir: string, name: string): Promise<void> {
  await ensureDir(dir, 0o700);
  const handle = await open(path.join(dir, name), fsConstants.O_WRONLY | fsConstants.O_CREAT, 0o600);
  await handle.close();
  await syncDirectory(dir);
}

async function unlinkDurably(dir: string, name: string): Promise<boolean> {
  try {
    await unlink(path.join(dir, name));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
  await syncDirectory(dir);
  return true;
}

async function listNames(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return [];
    throw err;
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}

/**
 * Parsed metadata, or undefined when missing or unreadable. Both files are written whole
 * before the volume appears, so damage means outside interference; one damaged volume must
 * not make every listing fail, and its data stays listed (as an adopted volume).
 */
function parseJSON<T>(text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

function checkRefId(id: string): void {
  if (!REF_ID_RE.test(id)) throw new InvalidArgumentError(`invalid reference id ${JSON.stringify(id)}`);
}

function noSuchVolume(name: string): NotFoundError {
  return new NotFoundError(`get ${name}: no such volume`);
}

/** Whether something is mounted exactly at `dir` (in this mount namespace). */
async function isMountPoint(dir: string): Promise<boolean> {
  return (await mountsUnder(dir)).includes(dir);
}

/**
 * An exclusive flock on a volume directory (the per-volume lock of prepopulation). Not
 * FileLock: that creates a missing path as a file, and a volume removed meanwhile must give
 * ENOENT, not a stray file. Returns undefined when `wait` is false and the lock is taken.
 * Closing the handle releases the lock.
 */
async function lockVolumeDir(dir: string, wait: boolean): Promise<FileHandle | undefined> {
  const handle = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  const addon = native();
  const c = addon.constants;
  try {
    if (wait) await addon.flockAsync(handle.fd, c.LOCK_EX);
    else addon.flock(handle.fd, c.LOCK_EX | c.LOCK_NB);
    return handle;
  } catch (err) {
    await handle.close();
    if (!wait && (isErrno(err, 'EAGAIN') || isErrno(err, 'EWOULDBLOCK'))) return undefined;
    throw err;
  }
}

/** `<name>-<ms>` of a trash entry; the name part is confirmed from the entry's strata.json. */
const TRASH_ENTRY_RE = /^(.+)-(\d+)$/;

export class VolumeService {
  /** `<dataRoot>/volumes`, symlinks resolved (mount points are compared against it). */
  readonly root: string;
  readonly #graceMs: number;
  readonly #now: () => number;
  /** When this instance last looked for expired trash (see #housekeeping). */
  #trashCheckedAt = Number.NEGATIVE_INFINITY;

  private constructor(root: string, options: VolumeServiceOptions) {
    this.root = root;
    this.#graceMs = options.trashGraceMs ?? DEFAULT_TRASH_GRACE_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Opens (creating if needed) the volume store of `dataRoot`. */
  static async open(options: VolumeServiceOptions): Promise<VolumeService> {
    await mkdir(options.dataRoot, { recursive: true, mode: 0o711 });
    const dir = path.join(await realpath(options.dataRoot), 'volumes');
    await ensureDir(dir, 0o701);
    await ensureDir(path.join(dir, STAGING_DIR), 0o700);
    await ensureDir(path.join(dir, TRASH_DIR), 0o700);
    return new VolumeService(dir, options);
  }

  #dir(name: string): string {
    return path.join(this.root, name);
  }

  /** The `_data` path a volume of this name has (whether or not it exists). */
  mountpointOf(name: string): string {
    return path.join(this.root, name, DATA_DIR);
  }

  /** Runs `fn` holding the store lock, after reaping crash leftovers and expired trash. */
  async #locked<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(path.join(this.root, LOCK_FILE), 'exclusive', async () => {
      await this.#housekeeping();
      return fn();
    });
  }

  async #housekeeping(): Promise<void> {
    // Only lock holders stage, and we hold the lock: whatever is staged is a leftover.
    const staging = path.join(this.root, STAGING_DIR);
    for (const name of await listNames(staging)) await removeAll(path.join(staging, name));
    // Expiry is coarse (hours), so one scan a minute per instance is plenty; a CLI command
    // is one instance and scans once, a long-lived caller is not charged per operation.
    const now = this.#now();
    if (now - this.#trashCheckedAt < TRASH_CHECK_INTERVAL_MS) return;
    this.#trashCheckedAt = now;
    await this.#purgeTrash((entry) => now - entry.removedAt.getTime() > this.#graceMs, await this.#trashDirEntries());
  }

  // ---- reading ------------------------------------------------------------------------

  async #read(name: string): Promise<Volume | undefined> {
    if (!VOLUME_NAME_RE.test(name)) return undefined;
    const dir = this.#dir(name);
    let st;
    try {
      // lstat: like Docker's directory scan, a symlink in volumes/ is not a volume.
      st = await lstat(dir);
    } catch (err) {
      // ENAMETOOLONG: a name the filesystem cannot hold cannot name an existing volume.
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'ENAMETOOLONG')) return undefined;
      throw err;
    }
    if (!st.isDirectory()) return undefined;
    const [metaText, optsText, refs] = await Promise.all([
      readIfExists(path.join(dir, META_FILE)),
      readIfExists(path.join(dir, OPTS_FILE)),
      listNames(path.join(dir, REFS_DIR)),
    ]);
    const opts = parseJSON<OptsConfig>(optsText);
    let meta = parseJSON<StoredMeta>(metaText);
    if (meta === undefined) {
      // Docker's rule for what is a volume: a directory holding `_data` or `opts.json`.
      if (opts === undefined && !(await readdir(dir)).includes(DATA_DIR)) return undefined;
      const options = opts ? optionsFromOptsConfig(opts) : {};
      meta = { Name: name, Driver: LOCAL_DRIVER, Labels: null, Options: Object.keys(options).length > 0 ? options : null, CreatedAt: '' };
    }
    return {
      name,
      driver: meta.Driver,
      labels: meta.Labels,
      options: meta.Options,
      mountpoint: path.join(dir, DATA_DIR),
      createdAt: st.ctime,
      anonymous: meta.Labels !== null && Object.hasOwn(meta.Labels, ANONYMOUS_LABEL),
      references: refs.filter((r) => !r.startsWith('.')).sort(),
      needsMount: needsMount(opts),
    };
  }

  async #readOpts(name: string): Promise<OptsConfig | undefined> {
    return parseJSON<OptsConfig>(await readIfExists(path.join(this.#dir(name), OPTS_FILE)));
  }

  async #require(name: string): Promise<Volume> {
    const v = await this.#read(name);
    if (!v) throw noSuchVolume(name);
    return v;
  }

  /** Docker's JSON for a volume (`volume inspect`, `volume ls`, `volume create`). */
  static toJSON(v: Volume): VolumeJSON {
    return {
      CreatedAt: formatRFC3339(v.createdAt),
      Driver: v.driver,
      Labels: sortedMap(v.labels),
      Mountpoint: v.mountpoint,
      Name: v.name,
      Options: sortedMap(v.options),
      Scope: 'local',
    };
  }

  /** The volume, or NotFoundError `get <name>: no such volume`. */
  async get(name: string): Promise<Volume> {
    return this.#require(name);
  }

  /** Whether a volume of that name exists. */
  async exists(name: string): Promise<boolean> {
    return (await this.#read(name)) !== undefined;
  }

  async inspect(name: string): Promise<VolumeJSON> {
    return VolumeService.toJSON(await this.#require(name));
  }

  async #all(): Promise<Volume[]> {
    const names = (await listNames(this.root)).filter((n) => VOLUME_NAME_RE.test(n));
    const out: Volume[] = [];
    // Bounded parallelism: thousands of volumes must not mean thousands of open files.
    for (let i = 0; i < names.length; i += 64) {
      const batch = await Promise.all(names.slice(i, i + 64).map((n) => this.#read(n)));
      for (const v of batch) if (v) out.push(v);
    }
    return out;
  }

  /** Volumes matching `filters` (`dangling`, `name`, `driver`, `label`), in the docker CLI's order. */
  async list(options: { filters?: VolumeFilters } = {}): Promise<VolumeJSON[]> {
    const filters = options.filters ?? {};
    validateFilterKeys(filters, LIST_FILTERS);
    const match = compileFilters(filters);
    return (await this.#all())
      .filter((v) => match({ name: v.name, driver: v.driver, labels: v.labels, referenced: v.references.length > 0 }))
      .sort((a, b) => naturalCompare(a.name, b.name))
      .map((v) => VolumeService.toJSON(v));
  }

  /** Container ids referencing the volume. */
  async references(name: string): Promise<string[]> {
    return (await this.#require(name)).references;
  }

  // ---- creating -----------------------------------------------------------------------

  /**
   * Creates a volume, or returns the existing one of that name unchanged (labels and
   * options of the request are then ignored, as by Docker). With `reference`, the container
   * id is recorded in the same locked step.
   */
  async create(request: CreateVolumeRequest = {}): Promise<VolumeJSON> {
    const anonymous = !request.name;
    const name = request.name || randomId();
    const driver = request.driver || LOCAL_DRIVER;
    let labels = request.labels ?? null;
    if (anonymous) labels = { ...(labels ?? {}), [ANONYMOUS_LABEL]: '' };
    const options = request.options ?? null;
    if (request.reference !== undefined) checkRefId(request.reference);
    if (driver !== LOCAL_DRIVER) {
      throw new NotFoundError(`create ${name}: error looking up volume plugin ${driver}: plugin ${JSON.stringify(driver)} not found`);
    }
    return this.#locked(async () => {
      const existing = await this.#read(name);
      if (existing) {
        if (request.reference !== undefined) {
          await touchDurably(path.join(this.#dir(name), REFS_DIR), request.reference);
        }
        return VolumeService.toJSON((await this.#read(name))!);
      }
      validateCreate(name, options);
      await this.#createLocked(name, driver, labels, options, request.reference);
      return VolumeService.toJSON(await this.#require(name));
    });
  }

  async #createLocked(
    name: string,
    driver: string,
    labels: Record<string, string> | null,
    options: Record<string, string> | null,
    reference: string | undefined,
  ): Promise<void> {
    // The small steps are synchronous: each is a few microseconds of syscall, while a trip
    // through the thread pool costs more than that, and creation time is mostly these steps
    // plus the three fsyncs that make the volume durable before and after it appears.
    const stage = mkdtempSync(path.join(this.root, STAGING_DIR, 'create-'));
    try {
      for (const [sub, mode] of [[DATA_DIR, 0o755], [REFS_DIR, 0o700], [MOUNTS_DIR, 0o700]] as const) {
        mkdirSync(path.join(stage, sub), { mode });
        chmodSync(path.join(stage, sub), mode); // mkdir's mode passes through the umask
      }
      chmodSync(stage, 0o701);
      const meta: StoredMeta = { Name: name, Driver: driver, Labels: labels, Options: options, CreatedAt: new Date(this.#now()).toISOString() };
      const opts = optsConfig(options);
      const files: Array<[string, string]> = [[META_FILE, JSON.stringify(meta)]];
      if (opts !== undefined) files.push([OPTS_FILE, goJSON(opts)]);
      for (const [file, text] of files) {
        // No temp file and rename needed: nobody can see the staging directory.
        const handle = await open(path.join(stage, file), fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
        try {
          await handle.writeFile(text);
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      if (reference !== undefined) {
        closeSync(openSync(path.join(stage, REFS_DIR, reference), 'w', 0o600));
        await syncDirectory(path.join(stage, REFS_DIR));
      }
      await syncDirectory(stage);
      const target = this.#dir(name);
      try {
        const addon = native();
        addon.renameat2(stage, target, addon.constants.RENAME_NOREPLACE);
      } catch (err) {
        if (isErrno(err, 'ENAMETOOLONG')) {
          throw new InvalidArgumentError(`create ${name}: error while creating volume root path '${target}': file name too long`, { cause: err });
        }
        throw err;
      }
      await syncDirectory(this.root);
    } catch (err) {
      await removeAll(stage).catch(() => undefined);
      throw err;
    }
  }

  // ---- references ---------------------------------------------------------------------

  /** Records that container `containerId` uses the volume (idempotent). */
  async addReference(name: string, containerId: string): Promise<void> {
    checkRefId(containerId);
    await this.#locked(async () => {
      await this.#require(name);
      await touchDurably(path.join(this.#dir(name), REFS_DIR), containerId);
    });
  }

  /** Drops a container's reference (idempotent; a missing volume is not an error, as in Docker). */
  async releaseReference(name: string, containerId: string): Promise<void> {
    checkRefId(containerId);
    if (!VOLUME_NAME_RE.test(name)) return;
    await this.#locked(async () => {
      if (!(await this.#read(name))) return;
      await unlinkDurably(path.join(this.#dir(name), REFS_DIR), containerId);
    });
  }

  // ---- mounting -----------------------------------------------------------------------

  /**
   * Makes the volume usable by `refId` (a container id, or any unique id per use) and returns
   * its `_data` path. For volumes created with `type`/`device` options, the first user
   * mounts the device on `_data`; users are recorded on disk, so another process's `unmount`
   * of the last one unmounts. A `_data` found mounted without users (left by a crash) is
   * adopted, as Docker does at start-up. Plain volumes need nothing and record nothing.
   */
  async mount(name: string, refId: string): Promise<string> {
    checkRefId(refId);
    return this.#locked(async () => {
      const v = await this.#require(name);
      if (!v.needsMount) return v.mountpoint;
      if (!(await isMountPoint(v.mountpoint))) {
        const opts = (await this.#readOpts(name))!;
        await mountLocalVolume(opts, v.mountpoint);
      }
      await touchDurably(path.join(this.#dir(name), MOUNTS_DIR), refId);
      return v.mountpoint;
    });
  }

  /**
   * Ends `refId`'s use; the last user unmounts `_data`. The user is forgotten even if the
   * unmount fails (as in Docker), so a stuck mount cannot pin the volume forever: removal
   * later detaches it.
   */
  async unmount(name: string, refId: string): Promise<void> {
    checkRefId(refId);
    await this.#locked(async () => {
      const v = await this.#require(name);
      if (!v.needsMount) return;
      const mounts = path.join(this.#dir(name), MOUNTS_DIR);
      await unlinkDurably(mounts, refId);
      if ((await listNames(mounts)).length > 0) return;
      if (await isMountPoint(v.mountpoint)) await unmountLocalVolume(v.mountpoint);
    });
  }

  /** Recorded users of a mounted volume. */
  async mountUsers(name: string): Promise<string[]> {
    await this.#require(name);
    return (await listNames(path.join(this.#dir(name), MOUNTS_DIR))).sort();
  }

  // ---- removing -----------------------------------------------------------------------

  /**
   * Removes a volume. Refused while any container references it (`remove <name>: volume is
   * in use - [<ids>]`, force or not) or while it is mounted for someone (`volume has active
   * mounts`). Unknown: `get <name>: no such volume`, unless `force`. Goes to the trash unless
   * `trash: false`.
   */
  async remove(name: string, options: RemoveOptions = {}): Promise<void> {
    await this.#locked(async () => {
      const v = await this.#read(name);
      if (!v) {
        if (options.force) return;
        throw noSuchVolume(name);
      }
      if (v.references.length > 0) {
        throw new ConflictError(`remove ${name}: volume is in use - [${v.references.join(', ')}]`);
      }
      await this.#removeLocked(v, options.trash ?? true);
    });
  }

  /** Removes an unreferenced volume; the caller holds the store lock. */
  async #removeLocked(v: Volume, toTrash: boolean): Promise<void> {
    const dir = this.#dir(v.name);
    // A prepopulation in progress holds the volume directory's lock; do not pull the
    // directory from under it.
    const populateLock = await lockVolumeDir(dir, false);
    if (!populateLock) throw new ConflictError(`remove ${v.name}: volume is being populated`);
    try {
      if (await isMountPoint(v.mountpoint)) {
        if (v.needsMount && (await listNames(path.join(dir, MOUNTS_DIR))).length > 0) {
          throw new ConflictError(`remove ${v.name}: volume has active mounts`);
        }
        // Mounted without users: a crash leftover. Detach it so nothing below is touched.
        await unmountLocalVolume(v.mountpoint, { detach: true });
      }
      // Mount-user records without a mount (a reboot) are stale; they go with the directory
      // and restore() clears them.
      if (toTrash) {
        const trash = path.join(this.root, TRASH_DIR);
        let stamp = this.#now();
        // `<name>-<ms>`, shortened if needed to stay a valid file name; restore() reads the
        // real name from strata.json.
        const entryName = (ms: number): string => `${v.name.slice(0, 255 - String(ms).length - 1)}-${ms}`;
        const addon = native();
        for (;;) {
          try {
            addon.renameat2(dir, path.join(trash, entryName(stamp)), addon.constants.RENAME_NOREPLACE);
            break;
          } catch (err) {
            if (!isErrno(err, 'EEXIST')) throw err;
            stamp++;
          }
        }
        await syncDirectory(this.root);
        await syncDirectory(trash);
      } else {
        const doomed = path.join(this.root, STAGING_DIR, `remove-${randomId().slice(0, 16)}`);
        await rename(dir, doomed);
        await syncDirectory(this.root);
        await removeAll(doomed);
      }
    } finally {
      await populateLock.close();
    }
  }

  /**
   * Removes unreferenced local volumes without driver options: only anonymous ones unless
   * `all` (Docker 23+), narrowed by `label`/`label!` filters. Volumes that cannot be removed
   * right now (being populated, mounted) are skipped, as Docker skips them.
   */
  async prune(options: PruneOptions = {}): Promise<PruneReport> {
    const filters = options.filters ?? {};
    validateFilterKeys(filters, PRUNE_FILTERS);
    const all = pruneAll(filters, options.all);
    const labelFilter = [...(filters['label'] ?? [])];
    if (!all) labelFilter.push(ANONYMOUS_LABEL);
    const match = compileFilters({ label: labelFilter, ...(filters['label!'] ? { 'label!': filters['label!'] } : {}) });
    return this.#locked(async () => {
      const report: PruneReport = { VolumesDeleted: [], SpaceReclaimed: 0 };
      const candidates = (await this.#all())
        .filter((v) => v.driver === LOCAL_DRIVER && v.references.length === 0)
        .filter((v) => v.options === null || Object.keys(v.options).length === 0)
        .filter((v) => match({ name: v.name, driver: v.driver, labels: v.labels, referenced: false }))
        .sort((a, b) => naturalCompare(a.name, b.name));
      for (const v of candidates) {
        let size = 0;
        try {
          size = volumeDataSize(v.mountpoint);
        } catch {
          // Docker logs and goes on with 0 when the size cannot be determined.
        }
        try {
          await this.#removeLocked(v, options.trash ?? true);
        } catch (err) {
          if (err instanceof ConflictError) continue;
          throw err;
        }
        report.VolumesDeleted.push(v.name);
        report.SpaceReclaimed += size;
      }
      return report;
    });
  }

  /**
   * What `rm -v` and `run --rm` do with a container's volumes (Docker's removeMountPoints):
   * drop the container's reference on each, then remove those the container created
   * anonymously (`anonymous`: the mount had no name, per the container's mount spec, not
   * per label). A volume still used by another container stays, silently, as in Docker;
   * other failures are collected into Docker's `Error removing volumes:` message.
   */
  async releaseContainerVolumes(
    containerId: string,
    volumes: ReadonlyArray<{ name: string; anonymous: boolean }>,
    options: { removeAnonymous: boolean; trash?: boolean },
  ): Promise<void> {
    const problems: string[] = [];
    for (const { name } of volumes) await this.releaseReference(name, containerId);
    if (!options.removeAnonymous) return;
    for (const { name, anonymous } of volumes) {
      if (!anonymous) continue;
      try {
        await this.remove(name, { trash: options.trash });
      } catch (err) {
        if (err instanceof ConflictError || err instanceof NotFoundError) continue;
        problems.push((err as Error).message);
      }
    }
    if (problems.length > 0) throw new StrataError('ERR_SYSTEM', `Error removing volumes:\n${problems.join('\n')}`);
  }

  // ---- trash --------------------------------------------------------------------------

  /**
   * Trash entries from their directory names alone. Cheap enough for every mutation's
   * housekeeping; the name may be shortened (see #removeLocked), `#trashEntries` has the
   * real one.
   */
  async #trashDirEntries(): Promise<TrashEntry[]> {
    const trash = path.join(this.root, TRASH_DIR);
    const out: TrashEntry[] = [];
    for (const entry of await listNames(trash)) {
      const m = TRASH_ENTRY_RE.exec(entry);
      if (m) out.push({ name: m[1]!, removedAt: new Date(Number(m[2])), path: path.join(trash, entry) });
    }
    return out;
  }

  /** Trash entries with the volume names read from their metadata, sorted. */
  async #trashEntries(): Promise<TrashEntry[]> {
    const out = await this.#trashDirEntries();
    for (const entry of out) {
      const metaText = await readIfExists(path.join(entry.path, META_FILE));
      if (metaText === undefined) continue;
      try {
        entry.name = (JSON.parse(metaText) as StoredMeta).Name || entry.name;
      } catch {
        // A damaged strata.json still leaves the name in the entry's directory name.
      }
    }
    return out.sort((a, b) => naturalCompare(a.name, b.name) || a.removedAt.getTime() - b.removedAt.getTime());
  }

  /** Removed volumes still restorable, by name then removal time. */
  async listTrash(): Promise<TrashEntry[]> {
    return this.#trashEntries();
  }

  async #purgeTrash(which: (entry: TrashEntry) => boolean, entries?: TrashEntry[]): Promise<TrashEntry[]> {
    const purged: TrashEntry[] = [];
    for (const entry of entries ?? (await this.#trashEntries())) {
      if (!which(entry)) continue;
      await removeAll(entry.path);
      purged.push(entry);
    }
    return purged;
  }

  /** Deletes trash entries now: all of them, or those of `name`. Returns what went. */
  async purgeTrash(options: { name?: string } = {}): Promise<TrashEntry[]> {
    return this.#locked(() => this.#purgeTrash((e) => options.name === undefined || e.name === options.name));
  }

  /**
   * Brings back the most recently removed volume called `name` from the trash, data,
   * labels and options intact. Refused if a volume of that name exists now.
   */
  async restore(name: string): Promise<VolumeJSON> {
    return this.#locked(async () => {
      if (await this.#read(name)) throw new ConflictError(`restore ${name}: a volume with this name already exists`);
      const entries = (await this.#trashEntries()).filter((e) => e.name === name);
      const newest = entries[entries.length - 1];
      if (!newest || !VOLUME_NAME_RE.test(name)) throw new NotFoundError(`restore ${name}: no such volume in trash`);
      // Users recorded before the removal are gone with whatever mounted it.
      const mounts = path.join(newest.path, MOUNTS_DIR);
      for (const user of await listNames(mounts)) await unlink(path.join(mounts, user));
      const addon = native();
      addon.renameat2(newest.path, this.#dir(name), addon.constants.RENAME_NOREPLACE);
      await syncDirectory(path.join(this.root, TRASH_DIR));
      await syncDirectory(this.root);
      return VolumeService.toJSON(await this.#require(name));
    });
  }

  // ---- prepopulation ------------------------------------------------------------------

  /**
   * Docker's copy-up: copies the content of `sourceDir` (the image content at the mount
   * destination) into the volume, only if the volume is completely empty. Keeps modes,
   * owners, times, xattrs (those the volume's filesystem supports), hard links, symlinks
   * and device nodes; the volume root takes `sourceDir`'s mode, owner and xattrs. Returns
   * whether anything was copied: false for a non-empty volume or a missing/non-directory
   * source. `nocopy` is the caller's decision. `sourceDir` must be resolved inside the
   * container rootfs already (Docker's FollowSymlinkInScope); a symlink there is not followed.
   *
   * Crash-safe unlike Docker's: the copy is staged in `_data/.strata-populate-<id>/` and marked
   * complete before its entries are moved into place, so an interrupted copy is discarded
   * (and redone next time) and an interrupted move is finished, never left half-populated.
   * A volume with driver options is mounted for the copy, as Docker does.
   */
  async prepopulate(name: string, sourceDir: string): Promise<boolean> {
    const dir = this.#dir(name);
    if (!VOLUME_NAME_RE.test(name)) throw noSuchVolume(name);
    let volumeLock: FileHandle;
    try {
      volumeLock = (await lockVolumeDir(dir, true))!;
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) throw noSuchVolume(name);
      throw err;
    }
    try {
      const v = await this.#require(name);
      let src;
      try {
        // lstat: a symlink here would be resolved on the host, outside the container's
        // rootfs; the caller resolves the destination within the rootfs first.
        src = await lstat(sourceDir);
      } catch (err) {
        if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
        throw err;
      }
      if (!src.isDirectory()) return false;
      const mountRef = v.needsMount ? `populate-${randomId().slice(0, 24)}` : undefined;
      if (mountRef) await this.mount(name, mountRef);
      try {
        return await this.#populate(v.mountpoint, sourceDir);
      } finally {
        if (mountRef) await this.unmount(name, mountRef);
      }
    } finally {
      await volumeLock.close();
    }
  }

  async #populate(data: string, sourceDir: string): Promise<boolean> {
    let entries = await readdir(data);
    for (const entry of entries.filter((e) => POPULATE_RE.test(e))) {
      const leftover = path.join(data, entry);
      if ((await readIfExists(path.join(leftover, POPULATE_MAGIC_FILE))) !== POPULATE_MAGIC) continue;
      const marker = parseJSON<PopulateMarker>(await readIfExists(path.join(leftover, POPULATE_DONE)));
      if (marker !== undefined) {
        // A crash hit after the copy was whole: finish the move.
        await this.#finishPopulate(data, leftover, marker);
        return true;
      }
      // A crash hit during the copy, before anything was moved out, so the stage is all
      // `_data` holds. Anything else next to it means it is not ours to discard.
      if (entries.length !== 1) continue;
      await removeAll(leftover);
      entries = entries.filter((e) => e !== entry);
    }
    if (entries.length > 0) return false;

    const sourceNames = new Set(await readdir(sourceDir));
    let stage: string;
    do stage = path.join(data, `${POPULATE_PREFIX}${randomId().slice(0, 16)}`);
    while (sourceNames.has(path.basename(stage)));
    const tree = path.join(stage, 'tree');
    await mkdirExact(stage, 0o700);
    let marker: PopulateMarker;
    try {
      await atomicWriteFile(path.join(stage, POPULATE_MAGIC_FILE), POPULATE_MAGIC, { mode: 0o600, fsync: false });
      copyTree(sourceDir, tree, { ignoreUnsupportedXattrs: true });
      // The copy's root carries the source root's times; moving entries out will change
      // them, so the marker keeps them for _data.
      const st = await lstat(tree, { bigint: true });
      marker = { atimeNs: String(st.atimeNs), mtimeNs: String(st.mtimeNs) };
      // One syncfs makes every copied file durable before the marker says the copy is whole.
      const handle = await open(stage, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
      try {
        native().syncfs(handle.fd);
      } finally {
        await handle.close();
      }
      await atomicWriteFile(path.join(stage, POPULATE_DONE), JSON.stringify(marker), { mode: 0o600 });
      await syncDirectory(stage);
    } catch (err) {
      await removeAll(stage).catch(() => undefined);
      throw err;
    }
    await this.#finishPopulate(data, stage, marker);
    return true;
  }

  /** Moves a complete staged copy into `_data` and gives `_data` the source root's metadata. */
  async #finishPopulate(data: string, stage: string, marker: PopulateMarker): Promise<void> {
    const tree = path.join(stage, 'tree');
    for (const entry of await listNames(tree)) await rename(path.join(tree, entry), path.join(data, entry));
    if ((await lstat(tree).catch(() => undefined)) !== undefined) {
      copyAttributes(tree, data, { ignoreUnsupportedXattrs: true });
    }
    await rm(stage, { recursive: true, force: true });
    // Moving entries and removing the stage touched `_data`'s times; put the source's back.
    lutimesSync(data, utimeSeconds(BigInt(marker.atimeNs)), utimeSeconds(BigInt(marker.mtimeNs)));
    await syncDirectory(data);
  }
}
