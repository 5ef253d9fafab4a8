/**
 * The composition root: `Engine.open()` wires a data root's driver and stores once, and the
 * engine hands out the image service. Nothing happens at import time and nothing is global;
 * two engines on two roots in one process are independent.
 *
 * Opening a root (Docker's daemon start, per command):
 *  1. creates `<root>` (0710) and `<root>/tmp` (0700), and removes from `tmp/` whatever no
 *     live process holds (each operation's temp dir is flock'ed by its owner, so concurrent
 *     strata processes never lose their spool files);
 *  2. picks the storage driver: the one asked for, else the one whose `image/<driver>` holds
 *     state (a root keeps its driver, vfs included), else Docker's rules (`selectDriver`);
 *  3. opens the layer store, image store and reference store under `image/<driver>/`;
 *  4. runs the layer store's crash recovery.
 */
import { chmodSync, mkdirSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';

import type { Digest } from '../digest.js';
import type { Driver } from '../drivers/driver.js';
import { drivers, selectDriver } from '../drivers/registry.js';
import { isErrno } from '../errors.js';
import { packageFile } from '../package-files.js';
import { ImageStore } from '../images/image-store.js';
import { ReferenceStore } from '../images/reference-store.js';
import { LayerStore } from '../layers/layer-store.js';
import { FileLock, isLockHeld } from '../sys/lock.js';
import type { DeleteRecord, HistoryItem, ImageInspect, ImageSummary, PruneReport } from './api-types.js';
import {
  ImageService, type ImageUser, type ImportOptions, type ListOptions, type LoadOptions, type LoadedImage,
  type PruneOptions, type RemoveOptions, type SaveOptions, type TempDir,
} from './images.js';
import { hostInfo, type DiskUsage, type SystemInfo } from './system.js';
import type { VolumeService } from '../volumes/service.js';
import type { ContainerService } from './containers.js';
import type { ContainerNetworks } from './container-network.js';

export const DEFAULT_DATA_ROOT = '/var/lib/strata';

/** The CLI entry point (the monitor runs it for a container's exit clean-up). */
const STRATA_BIN = packageFile('bin/strata');

export interface EngineOptions {
  /** Default: `$STRATA_ROOT`, else `/var/lib/strata`. */
  dataRoot?: string;
  /** `overlay2` or `vfs`; default: `$STRATA_DRIVER`, else the root's driver, else auto. */
  storageDriver?: string;
  /** Who uses an image (containers), consulted by remove/prune/df. Default: nobody. */
  imageUsers?: (id: Digest) => Promise<ImageUser[]>;
}

/** strata's version, from package.json. */
export async function version(): Promise<string> {
  const pkg = JSON.parse(await readFile(packageFile('package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

// Opening a root is a dozen metadata syscalls; they are made synchronously (see sys/fs.ts).

function ensureDir(dir: string, mode: number): void {
  try {
    mkdirSync(dir, { mode });
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return;
    if (!isErrno(err, 'ENOENT')) throw err;
    mkdirSync(path.dirname(dir), { recursive: true, mode: 0o711 });
    mkdirSync(dir, { mode });
  }
  // The umask must not narrow Docker's modes on the dirs we create.
  chmodSync(dir, mode);
}

function nonEmptyDir(dir: string): boolean {
  try {
    return readdirSync(dir).length > 0;
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** Removes what crashed processes left in `<root>/tmp` (entries nobody holds a lock on). */
async function sweepTmp(tmp: string): Promise<void> {
  for (const name of readdirSync(tmp)) {
    const p = path.join(tmp, name);
    if (await isLockHeld(p).catch(() => false)) continue;
    await rm(p, { recursive: true, force: true });
  }
}

/** The driver a root already uses: the one `image/<name>` of which holds state. */
async function rootDriver(dataRoot: string): Promise<string | undefined> {
  const found: string[] = [];
  for (const name of Object.keys(drivers)) {
    if (nonEmptyDir(path.join(dataRoot, 'image', name))) found.push(name);
  }
  return found.length === 1 ? found[0] : undefined;
}

export class Engine {
  readonly dataRoot: string;
  readonly driver: Driver;
  /** Why this driver was chosen (one line). */
  readonly driverReason: string;
  /** `<data-root>/image/<driver>`. */
  readonly imageRoot: string;
  readonly layerStore: LayerStore;
  readonly imageStore: ImageStore;
  readonly referenceStore: ReferenceStore;
  readonly imageService: ImageService;

  private constructor(o: {
    dataRoot: string; driver: Driver; driverReason: string; imageRoot: string;
    layerStore: LayerStore; imageStore: ImageStore; referenceStore: ReferenceStore;
    imageUsers?: (id: Digest) => Promise<ImageUser[]>;
  }) {
    this.dataRoot = o.dataRoot;
    this.driver = o.driver;
    this.driverReason = o.driverReason;
    this.imageRoot = o.imageRoot;
    this.layerStore = o.layerStore;
    this.imageStore = o.imageStore;
    this.referenceStore = o.referenceStore;
    this.imageService = new ImageService({
      driver: o.driver, layers: o.layerStore, store: o.imageStore, refs: o.referenceStore,
      imageRoot: o.imageRoot, tempDir: () => this.tempDir(),
      imageUsers: o.imageUsers ?? (async (id) => (await this.containers()).imageUsers(id)),
    });
  }

  /**
   * Opens (creating if needed) the data root. See the module comment for what it does.
   *
   * @example
   *   const engine = await Engine.open({ dataRoot: '/tmp/s' });
   *   const [img] = await engine.load('busybox.tar');   // { id: 'sha256:…', tags: ['busybox:latest'], … }
   */
  static async open(options: EngineOptions = {}): Promise<Engine> {
    const dataRoot = path.resolve(options.dataRoot ?? process.env.STRATA_ROOT ?? DEFAULT_DATA_ROOT);
    ensureDir(dataRoot, 0o710);
    const tmp = path.join(dataRoot, 'tmp');
    ensureDir(tmp, 0o700);
    await sweepTmp(tmp);

    const requested = options.storageDriver || process.env.STRATA_DRIVER || (await rootDriver(dataRoot));
    const { driver, reason } = await selectDriver(dataRoot, requested);
    const imageRoot = path.join(dataRoot, 'image', driver.name);
    ensureDir(path.join(dataRoot, 'image'), 0o700);
    ensureDir(imageRoot, 0o700);
    const layerStore = await LayerStore.open({ imageRoot, driver });
    const imageStore = await ImageStore.open({ imageRoot, hasLayer: (id) => layerStore.has(id) });
    const referenceStore = await ReferenceStore.open({ imageRoot });
    await layerStore.recover({ ifCrashed: true });
    return new Engine({
      dataRoot, driver, driverReason: reason, imageRoot, layerStore, imageStore, referenceStore,
      imageUsers: options.imageUsers,
    });
  }

  #volumes: Promise<VolumeService> | undefined;
  #containers: Promise<ContainerService> | undefined;
  #networks: Promise<ContainerNetworks> | undefined;

  /** Container networking (bridge, host, none), loaded on first use. */
  networks(): Promise<ContainerNetworks> {
    this.#networks ??= import('../network/service.js').then(({ NetworkService }) => NetworkService.open(this.execRoot));
    return this.#networks;
  }

  /**
   * `/run/strata/<hash of the data root>`: runc's state, bundles, network namespaces. On
   * tmpfs, so a reboot clears them together with the processes they describe.
   */
  get execRoot(): string {
    return path.join('/run/strata', createHash('sha256').update(this.dataRoot).digest('hex').slice(0, 16));
  }

  /** The container service (`<root>/containers`), opened on first use. */
  containers(): Promise<ContainerService> {
    this.#containers ??= import('./containers.js').then(({ ContainerService: C }) =>
      C.open({
        dataRoot: this.dataRoot,
        execRoot: this.execRoot,
        driver: this.driver,
        layers: this.layerStore,
        images: this.imageService,
        volumes: () => this.volumes(),
        networks: () => this.networks(),
        cliArgv: [STRATA_BIN, '--data-root', this.dataRoot, '--storage-driver', this.driver.name],
      }),
    );
    return this.#containers;
  }

  /**
   * The volume store (`<root>/volumes`), opened on first use: commands that never touch
   * volumes do not load or open it.
   */
  volumes(): Promise<VolumeService> {
    this.#volumes ??= import('../volumes/service.js').then(({ VolumeService: V }) => V.open({ dataRoot: this.dataRoot }));
    return this.#volumes;
  }

  /** A private directory under `<root>/tmp`, locked until `remove()` (swept if we crash). */
  async tempDir(): Promise<TempDir> {
    const dir = await mkdtemp(path.join(this.dataRoot, 'tmp', 'strata-'));
    const lock = await FileLock.acquire(dir, { mode: 'exclusive', wait: false });
    return {
      path: dir,
      async remove() {
        await rm(dir, { recursive: true, force: true });
        await lock.release();
      },
    };
  }

  // Delegates, so library users can call the common operations on the engine itself.

  load(input: string | Readable, options?: LoadOptions): Promise<LoadedImage[]> {
    return this.imageService.load(input, options);
  }

  save(names: readonly string[], output: Writable | { fd: number }, options?: SaveOptions): Promise<void> {
    return this.imageService.save(names, output, options);
  }

  saveOciLayout(names: readonly string[], dir: string, options?: SaveOptions): Promise<void> {
    return this.imageService.saveOciLayout(names, dir, options);
  }

  import(input: string | Readable, options?: ImportOptions): Promise<{ id: Digest }> {
    return this.imageService.import(input, options);
  }

  images(options?: ListOptions): Promise<ImageSummary[]> {
    return this.imageService.list(options);
  }

  inspect(name: string): Promise<ImageInspect> {
    return this.imageService.inspect(name);
  }

  history(name: string): Promise<HistoryItem[]> {
    return this.imageService.history(name);
  }

  tag(source: string, target: string): Promise<void> {
    return this.imageService.tag(source, target);
  }

  remove(name: string, options?: RemoveOptions): Promise<DeleteRecord[]> {
    return this.imageService.remove(name, options);
  }

  prune(options?: PruneOptions): Promise<PruneReport> {
    return this.imageService.prune(options);
  }

  /**
   * `docker build` (the classic builder): see engine/build.ts. Progress goes to
   * `request.hooks.stdout`, lines as Docker prints them.
   */
  async build(request: Omit<import('./build.js').BuildRequest, 'tmpDir'>): Promise<import('../build/builder.js').BuildResult & { contextBytes: number }> {
    const { EngineBuildExecutor, runBuild } = await import('./build.js');
    const executor = new EngineBuildExecutor({ images: this.imageService, imageStore: this.imageStore, layers: this.layerStore, execRoot: this.execRoot });
    const tmp = await this.tempDir();
    try {
      return await runBuild(executor, { ...request, tmpDir: tmp.path });
    } finally {
      await tmp.remove();
    }
  }

  #distribution: Promise<import('./distribution.js').DistributionService> | undefined;

  /** pull/push/login/logout (see engine/distribution.ts), loaded on first use. */
  distribution(): Promise<import('./distribution.js').DistributionService> {
    this.#distribution ??= import('./distribution.js').then(({ DistributionService }) => new DistributionService({
      images: this.imageService, imageStore: this.imageStore, refs: this.referenceStore, layers: this.layerStore, imageRoot: this.imageRoot,
    }));
    return this.#distribution;
  }

  /** `docker info` data. */
  async info(): Promise<SystemInfo> {
    const host = await hostInfo();
    const counts = await (await this.containers()).counts();
    return {
      Containers: counts.total, ContainersRunning: counts.running, ContainersPaused: counts.paused, ContainersStopped: counts.stopped,
      Images: await this.imageService.count(),
      Driver: this.driver.name,
      DriverStatus: await this.driver.status(),
      KernelVersion: host.KernelVersion,
      OperatingSystem: host.OperatingSystem,
      OSType: host.OSType,
      Architecture: host.Architecture,
      NCPU: host.NCPU,
      MemTotal: host.MemTotal,
      DockerRootDir: this.dataRoot,
      Name: host.Name,
      ServerVersion: await version(),
    };
  }

  /** `docker system df` data. */
  async systemDf(): Promise<DiskUsage> {
    const { layersSize, images } = await this.imageService.diskUsage();
    const containers = await (await this.containers()).list({ all: true, size: true });
    const volumeService = await this.volumes();
    const { volumeDataSize } = await import('../volumes/service.js');
    const volumes = [];
    for (const v of await volumeService.list()) {
      let size = -1;
      try {
        size = volumeDataSize(v.Mountpoint);
      } catch {
        // Docker reports -1 when the size cannot be determined.
      }
      volumes.push({ ...v, UsageData: { Size: size, RefCount: (await volumeService.references(v.Name)).length } });
    }
    return { LayersSize: layersSize, Images: images, Containers: containers, Volumes: volumes, BuildCache: [] };
  }
}

/** `Engine.open` as a function. */
export function openEngine(options?: EngineOptions): Promise<Engine> {
  return Engine.open(options);
}
