/**
 * The container service: Docker's container lifecycle on the storage core, with no daemon.
 *
 *  - create: image config merged with the options, an RW layer (init layer first) named by
 *    the container ID in `layerdb/mounts/<id>`, volumes resolved (named created on first
 *    use, anonymous for `-v /x` and every image VOLUME, `--volumes-from` copied) and
 *    referenced, `containers/<id>/{config.v2.json,hostconfig.json}` written last.
 *  - start: rootfs mounted, volumes mounted and prepopulated, network attached, hostname/
 *    hosts/resolv.conf written, OCI spec generated, and the container handed to a detached
 *    monitor (runtime/) that runs `runc run`, keeps the json-file log and records the exit.
 *    After the exit the monitor runs `strata container cleanup <id>` (hidden), which undoes
 *    what start set up and removes `--rm` containers, as the daemon would on its exit event.
 *  - every read of a container's state reconciles it first (a dead monitor means the
 *    container is settled as exited 137 and cleaned up), so a killed CLI or monitor never
 *    leaves a container "running" forever.
 *
 * Paths: runc's state and bundles live under `/run/strata/<hash of the data root>/` (tmpfs:
 * gone after a reboot, like the containers' processes); everything durable under the root.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';

import { mkdir, readFile, rm, stat, writeFile } from '../sys/meta-fs.js';
import { changeLetter, type Change } from '../archive/changes.js';
import { tarTreeDiff } from '../archive/layer.js';
import { ContainerStore, type StoredContainer } from '../containers/store.js';
import { randomName, validateName } from '../containers/names.js';
import { chainIds, shortId, type Digest } from '../digest.js';
import type { Driver } from '../drivers/driver.js';
import { ConflictError, InvalidArgumentError, NotFoundError, StrataError } from '../errors.js';
import type { ImageRecord } from '../images/image-store.js';
import type { LayerStore, RWLayer } from '../layers/layer-store.js';
import { buildExecProcess, buildSpec, type BindMount, type NetworkMode, type OciSpec } from '../runtime/spec.js';
import { resolveInRoot } from '../runtime/user.js';
import { Runc, startFailureExitCode as runtimeExitCode } from '../runtime/runc.js';
import { readLog, type LogEntry } from '../runtime/logs.js';
import { logPath, readRecord, reconcile, waitForExit, killAndDelete, type ContainerRuntimeState } from '../runtime/state.js';
import { randomId } from '../sys/ids.js';
import { FileLock } from '../sys/lock.js';
import {
  assertNoDuplicateMounts, imageVolumeMountPoint, mountPointFor, mountPointJSON, parseMountFlag, parseVolumeFlag,
  parseVolumesFrom, tmpfsMountOptions, volumesFromMountPoint, type MountSpec,
} from '../volumes/mount-spec.js';
import type { VolumeService } from '../volumes/service.js';
import { nowRfc3339Nano, ZERO_TIME, type ContainerConfig } from './api-types.js';
import {
  hostConfigFor, mergeContainerConfig, type CreateOptions, type HostConfig, type StoredMountPoint,
} from './container-config.js';
import { INIT_LAYER_DIRS, setupInitLayer, writeNetworkFiles } from './container-files.js';
import { humanDuration } from './units.js';
import type { ContainerNetworks, NetworkSettings } from './container-network.js';
import type { NetworkModeName } from '../network/service.js';
import type { ImageService } from './images.js';

export type { CreateOptions };

/** config.v2.json as strata writes it (Docker's fields; the runtime state lives beside it). */
export interface ContainerRecord extends StoredContainer {
  Created: string;
  Path: string;
  Args: string[];
  Config: ContainerConfig;
  Image: Digest;
  LogPath: string;
  Driver: string;
  OS: string;
  MountLabel: string;
  ProcessLabel: string;
  RestartCount: number;
  HasBeenStartedBefore: boolean;
  HasBeenManuallyStopped: boolean;
  MountPoints: Record<string, StoredMountPoint>;
  AppArmorProfile: string;
  HostnamePath: string;
  HostsPath: string;
  ResolvConfPath: string;
  ShmPath: string;
  NetworkSettings?: NetworkSettings;
}

export interface ContainerServiceOptions {
  dataRoot: string;
  /** Where runc's state and the bundles live (see Engine.execRoot). */
  execRoot: string;
  driver: Driver;
  layers: LayerStore;
  images: ImageService;
  volumes: () => Promise<VolumeService>;
  networks: () => Promise<ContainerNetworks>;
  /** argv prefix that runs the strata CLI on this data root (for the monitor's exit hook). */
  cliArgv: string[];
}

export interface StartOptions {
  /** Supervise in this process and forward output (attached `start -a`/`run` without -d). */
  attach?: boolean;
  stdin?: 'ignore' | 'inherit' | 'open';
}

export interface ContainerState {
  Status: 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
}

export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Command: string;
  Created: number;
  Ports: Array<{ IP?: string; PrivatePort: number; PublicPort?: number; Type: string }>;
  SizeRw?: number;
  SizeRootFs?: number;
  Labels: Record<string, string>;
  State: string;
  Status: string;
  HostConfig: { NetworkMode: string };
  Mounts: unknown[];
}

const ZERO_STATE: ContainerState = {
  Status: 'created', Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false,
  Pid: 0, ExitCode: 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME,
};

/** The exit status `run` gives for a start failure (126 not executable, 127 not found, else 125). */
export function startFailureExitCode(message: string): number {
  return message.startsWith('OCI runtime') ? runtimeExitCode(message, 'run') : 125;
}

interface ParsedMounts {
  volumeFlags: Array<MountSpec & { raw: string }>;
  mountFlags: Array<MountSpec & { api: unknown }>;
}

function parseTime(t: string | undefined): number | undefined {
  if (!t || t === ZERO_TIME) return undefined;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

export class ContainerService {
  readonly #o: ContainerServiceOptions;
  readonly store: ContainerStore;
  /** `/run/strata/<hash>`: runc's root and the bundles. */
  readonly execRoot: string;
  readonly runc: Runc;

  private constructor(o: ContainerServiceOptions, store: ContainerStore, execRoot: string) {
    this.#o = o;
    this.store = store;
    this.execRoot = execRoot;
    this.runc = new Runc({ root: path.join(execRoot, 'runc'), tmpDir: execRoot });
  }

  static async open(o: ContainerServiceOptions): Promise<ContainerService> {
    const store = await ContainerStore.open(o.dataRoot);
    // The exec root is made by the first start (#start), not here: listing or removing
    // images opens this service too, and must not leave dirs under /run behind.
    return new ContainerService(o, store, o.execRoot);
  }

  #bundle(id: string): string {
    return path.join(this.execRoot, id);
  }

  // ---- lookups ------------------------------------------------------------------------

  async #load(ref: string): Promise<{ id: string; c: ContainerRecord; hc: HostConfig }> {
    const id = await this.store.resolve(ref);
    const { container, hostConfig } = await this.store.read<ContainerRecord, HostConfig>(id);
    return { id, c: container, hc: hostConfig };
  }

  /** The ID a reference names (full ID, name or unique prefix). */
  resolve(ref: string): Promise<string> {
    return this.store.resolve(ref);
  }

  readonly #held = new AsyncLocalStorage<ReadonlySet<string>>();

  /**
   * Runs `fn` holding the container's lifecycle lock (`containers/<id>/.lifecycle.lock`), so
   * start, clean-up and removal never interleave across processes: a monitor's exit hook
   * arriving after a restart must not tear down the new run. Re-entrant within one call chain.
   */
  async #locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const held = this.#held.getStore();
    if (held?.has(id)) return fn();
    const lock = await FileLock.acquire(path.join(this.store.dir(id), '.lifecycle.lock'), { mode: 'exclusive', wait: true });
    try {
      return await this.#held.run(new Set([...(held ?? []), id]), fn);
    } finally {
      await lock.release();
    }
  }

  /** The container's runtime state, settling it first if its monitor died. */
  async #state(id: string): Promise<ContainerRuntimeState> {
    const dir = this.store.dir(id);
    const before = await readRecord(dir);
    const state = await reconcile({ id, containerDir: dir, runc: this.runc });
    // A container the monitor lost: undo its start here (the hook never ran).
    if (before?.status === 'running' && state.status !== 'running' && state.status !== 'paused') {
      await this.cleanup(id, { fromReconcile: true }).catch(() => undefined);
    }
    return state;
  }

  static stateJSON(s: ContainerRuntimeState, hasStarted: boolean): ContainerState {
    const out: ContainerState = { ...ZERO_STATE };
    out.Status = s.status;
    out.Running = s.status === 'running' || s.status === 'paused';
    out.Paused = s.status === 'paused';
    out.Dead = s.status === 'dead';
    out.Pid = out.Running ? s.pid ?? 0 : 0;
    out.ExitCode = s.exitCode ?? 0;
    out.Error = s.error ?? '';
    out.OOMKilled = s.oomKilled ?? false;
    if (s.startedAt) out.StartedAt = s.startedAt;
    if (s.finishedAt && (hasStarted || s.status !== 'created')) out.FinishedAt = s.finishedAt;
    return out;
  }

  // ---- create -------------------------------------------------------------------------

  async create(o: CreateOptions): Promise<{ Id: string; Warnings: string[] }> {
    const image = await this.#o.images.find(o.image);
    if (!image) throw new NotFoundError(`No such image: ${o.image}`);
    const id = randomId();
    const name = o.name !== undefined && o.name !== '' ? validateName(o.name) : undefined;
    const networkMode = o.network || 'default';
    if (!['default', 'bridge', 'host', 'none'].includes(networkMode)) {
      throw new NotFoundError(`network ${networkMode} not found`);
    }
    const imgConfig = (image.config.config ?? {}) as Partial<ContainerConfig>;
    const config = mergeContainerConfig(imgConfig, o, { hostname: id.slice(0, 12), imageName: o.image });
    if ((config.Entrypoint?.length ?? 0) + (config.Cmd?.length ?? 0) === 0) {
      throw new InvalidArgumentError('No command specified');
    }
    if (networkMode === 'host' && o.publish && o.publish.length > 0) {
      // Docker accepts and ignores them with a warning; so do we.
    }
    const parsed = this.#parseMounts(o);
    const fromSources = await this.#volumesFrom(o.volumesFrom ?? []);

    const dir = await this.store.makeDir(id);
    const creating = await FileLock.acquire(this.store.creatingMarker(id), { mode: 'exclusive', wait: false });
    let finalName = name;
    const undo: Array<() => Promise<unknown>> = [];
    try {
      const binds = parsed.volumeFlags.filter((m) => !(m.type === 'volume' && m.volume?.configVolume)).map((m) => m.raw);
      const hc = hostConfigFor({ ...o, network: networkMode }, binds, parsed.mountFlags.map((m) => m.api));
      const claimName = async (): Promise<void> => {
        if (finalName !== undefined) await this.store.reserveName(finalName, id);
        else {
          for (let attempt = 0; ; attempt++) {
            const candidate = randomName(attempt);
            try {
              await this.store.reserveName(candidate, id);
              finalName = candidate;
              break;
            } catch (err) {
              if (!(err instanceof ConflictError) || attempt > 10) throw err;
            }
          }
        }
        undo.push(() => this.store.releaseName(finalName!, id));
      };
      // Independent steps side by side (each registers its own undo once it succeeded); the
      // container only exists once config.v2.json is written, last.
      const steps = await Promise.allSettled([
        this.#o.layers.createRWLayer(id, image.topLayer, { init: setupInitLayer, initDirs: INIT_LAYER_DIRS }).then((layer) => {
          undo.push(() => this.#o.layers.removeRWLayer(id));
          return layer;
        }),
        claimName(),
        this.store.writeHostConfig(id, hc),
      ]);
      const failed = steps.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      const rw = (steps[0] as PromiseFulfilledResult<RWLayer>).value;
      const mountPoints = await this.#createMountPoints(id, config, parsed, fromSources, undo);
      await this.#prepareRootfs(rw, config.WorkingDir, mountPoints);

      const argv = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
      const record: ContainerRecord = {
        ID: id,
        Created: nowRfc3339Nano(),
        Path: argv[0]!,
        Args: argv.slice(1),
        Config: config,
        Image: image.id,
        LogPath: logPath(dir, id),
        Name: `/${finalName}`,
        Driver: this.#o.driver.name,
        OS: 'linux',
        MountLabel: '',
        ProcessLabel: '',
        RestartCount: 0,
        HasBeenStartedBefore: false,
        HasBeenManuallyStopped: false,
        MountPoints: mountPoints,
        AppArmorProfile: '',
        HostnamePath: '',
        HostsPath: '',
        ResolvConfPath: path.join(dir, 'resolv.conf'),
        ShmPath: '',
      };
      await this.store.write(record);
      return { Id: id, Warnings: [] };
    } catch (err) {
      for (const fn of undo.reverse()) await fn().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      throw err;
    } finally {
      await creating.release();
      await rm(this.store.creatingMarker(id), { force: true }).catch(() => undefined);
    }
  }

  /** Parses `-v`, `--mount`, `--tmpfs` as the daemon validates them. */
  #parseMounts(o: CreateOptions): ParsedMounts {
    const cwd = o.cwd ?? process.cwd();
    const volumeFlags = (o.volumes ?? []).map((raw) => ({ ...parseVolumeFlag(raw, { cwd }), raw }));
    const mountFlags = (o.mounts ?? []).map((raw) => {
      const spec = parseMountFlag(raw, { cwd, sourceExists: (p) => existsSync(p) });
      return { ...spec, api: mountApiJSON(spec) };
    });
    assertNoDuplicateMounts({ volumeFlags, mountFlags, tmpfs: (o.tmpfs ?? []).map((t) => t.split(':')[0]!) });
    return { volumeFlags, mountFlags };
  }

  async #volumesFrom(specs: readonly string[]): Promise<StoredMountPoint[]> {
    const out: StoredMountPoint[] = [];
    for (const raw of specs) {
      const from = parseVolumesFrom(raw);
      const { c } = await this.#load(from.container);
      for (const mp of Object.values(c.MountPoints)) {
        out.push({ ...volumesFromMountPoint(mp, from), Anonymous: false, CopyData: false, CreateHostPath: mp.CreateHostPath, TmpfsOptions: mp.TmpfsOptions });
      }
    }
    return out;
  }

  /**
   * Docker's order: `--volumes-from` copies first, then `-v`/`--mount` (replacing same
   * destinations), then image VOLUMEs not otherwise mounted get anonymous volumes.
   */
  async #createMountPoints(
    id: string,
    config: ContainerConfig,
    parsed: ParsedMounts,
    fromSources: StoredMountPoint[],
    undo: Array<() => Promise<unknown>>,
  ): Promise<Record<string, StoredMountPoint>> {
    const points: Record<string, StoredMountPoint> = {};
    let volumes: VolumeService | undefined;
    const vs = async () => (volumes ??= await this.#o.volumes());
    const reference = async (name: string) => {
      await (await vs()).addReference(name, id);
      undo.push(async () => (await vs()).releaseReference(name, id));
    };
    for (const mp of fromSources) {
      if (mp.Type === 'volume' && mp.Name) await reference(mp.Name);
      points[mp.Destination] = mp;
    }
    const configVolumes: Record<string, Record<string, never>> = { ...(config.Volumes ?? {}) };
    for (const spec of [...parsed.volumeFlags, ...parsed.mountFlags]) {
      if (spec.type === 'volume') {
        const v = await vs();
        const anonymous = spec.source === '';
        let name = spec.source;
        const request = { driver: spec.volume?.driver || 'local', options: spec.volume?.options ?? null, labels: spec.volume?.labels ?? null, reference: id };
        if (anonymous) {
          name = (await v.create(request)).Name;
          undo.push(() => v.releaseReference(name, id).then(() => v.remove(name, { trash: false })));
        } else if (!(await v.exists(name))) {
          // Created with our reference in the same step, so no prune can slip in between.
          await v.create({ ...request, name }).catch(async (err: unknown) => {
            if (!(await v.exists(name))) throw err;
            await reference(name);
          });
          undo.push(() => v.releaseReference(name, id));
        } else {
          await reference(name);
        }
        const vol = await v.get(name);
        const mp = mountPointFor(spec, { name, mountpoint: vol.mountpoint, driver: vol.driver });
        points[spec.destination] = { ...mp, Anonymous: anonymous, CopyData: spec.volume?.copyData ?? true };
        if (spec.volume?.configVolume) configVolumes[spec.destination] = {};
      } else if (spec.type === 'bind') {
        points[spec.destination] = { ...mountPointFor(spec), CreateHostPath: spec.bind?.createHostPath ?? false };
      } else {
        points[spec.destination] = { ...mountPointFor(spec), TmpfsOptions: tmpfsMountOptions(spec) };
      }
    }
    for (const dest of Object.keys(config.Volumes ?? {})) {
      const cleaned = path.posix.normalize(dest);
      if (points[cleaned]) continue;
      const v = await vs();
      const created = await v.create({ reference: id });
      undo.push(() => v.releaseReference(created.Name, id).then(() => v.remove(created.Name, { trash: false })));
      const vol = await v.get(created.Name);
      points[cleaned] = { ...imageVolumeMountPoint(cleaned, { name: created.Name, mountpoint: vol.mountpoint, driver: vol.driver }), Anonymous: true, CopyData: true };
    }
    config.Volumes = Object.keys(configVolumes).length > 0 ? configVolumes : null;
    return points;
  }

  /**
   * What Docker does with the new rootfs at create: WORKDIR made in the container's layer
   * (it shows in `diff`), and every volume that wants it (no `nocopy`, not from
   * `--volumes-from`) filled with the image's content at its destination, if empty. So a
   * created-only volume container already holds its image's data.
   */
  async #prepareRootfs(rw: RWLayer, workdir: string, mountPoints: Record<string, StoredMountPoint>): Promise<void> {
    const populate = Object.values(mountPoints).filter((m) => m.Type === 'volume' && m.CopyData);
    if ((!workdir || workdir === '/') && populate.length === 0) return;
    const root = await rw.mount();
    try {
      if (workdir && workdir !== '/') await mkdir(await resolveInRoot(root, workdir), { recursive: true, mode: 0o755 });
      if (populate.length > 0) {
        const v = await this.#o.volumes();
        for (const mp of populate) await v.prepopulate(mp.Name, await resolveInRoot(root, mp.Destination));
      }
    } finally {
      await rw.unmount();
    }
  }

  // ---- start --------------------------------------------------------------------------

  /**
   * Starts a created or exited container. Detached: returns once it runs. Attached: returns
   * a handle whose `wait()` gives the exit code after the output was forwarded.
   */
  async start(ref: string, o: StartOptions = {}): Promise<{ id: string; wait?: () => Promise<number> }> {
    const id = await this.store.resolve(ref);
    return this.#locked(id, () => this.#start(id, o));
  }

  async #start(ref: string, o: StartOptions): Promise<{ id: string; wait?: () => Promise<number> }> {
    const { id, c, hc } = await this.#load(ref);
    const state = await this.#state(id);
    if (state.status === 'running' || state.status === 'paused') return { id };
    const dir = this.store.dir(id);
    const rw = await this.#o.layers.getRWLayer(id);
    let networks: ContainerNetworks | undefined;
    const mountedVolumes: string[] = [];
    try {
      const rootfs = await rw.mount();
      const mounts: BindMount[] = [];
      const tmpfs: Array<{ destination: string; options: string }> = [];
      for (const mp of Object.values(c.MountPoints).sort((a, b) => a.Destination.length - b.Destination.length)) {
        if (mp.Type === 'volume') {
          const v = await this.#o.volumes();
          const source = await v.mount(mp.Name, id);
          mountedVolumes.push(mp.Name);
          mounts.push({ source, destination: mp.Destination, readonly: !mp.RW });
        } else if (mp.Type === 'bind') {
          // `-v` makes a missing host path a directory; an existing file or dir is used as it is.
          if (mp.CreateHostPath && !existsSync(mp.Source)) await mkdir(mp.Source, { recursive: true, mode: 0o755 });
          else await stat(mp.Source);
          mounts.push({ source: mp.Source, destination: mp.Destination, readonly: !mp.RW, propagation: (mp.Propagation || 'rprivate') as BindMount['propagation'] });
        } else {
          tmpfs.push({ destination: mp.Destination, options: mp.TmpfsOptions ?? '' });
        }
      }
      for (const t of Object.entries(hc.Tmpfs ?? {})) tmpfs.push({ destination: t[0], options: t[1] });

      networks = await this.#o.networks();
      const mode = hc.NetworkMode === 'default' ? 'bridge' : hc.NetworkMode;
      const attachment = await networks.attach(id, {
        mode: mode as NetworkModeName,
        ports: Object.entries(hc.PortBindings ?? {}).flatMap(([port, list]) => list.map((b) => ({ containerPort: port, hostIp: b.HostIp, hostPort: b.HostPort }))),
        hostname: c.Config.Hostname,
      });
      const files = await writeNetworkFiles(dir, {
        hostname: c.Config.Hostname, domainname: c.Config.Domainname, ip: attachment.ipAddress, hostNetwork: mode === 'host',
      });
      mounts.push(
        { source: files.resolvConf, destination: '/etc/resolv.conf' },
        { source: files.hostname, destination: '/etc/hostname' },
        { source: files.hosts, destination: '/etc/hosts' },
      );
      const network: NetworkMode = mode === 'host' ? 'host' : attachment.netnsPath ? { path: attachment.netnsPath } : 'private';
      const spec = await buildSpec({
        id,
        rootfs,
        readonlyRootfs: hc.ReadonlyRootfs,
        args: [c.Path, ...c.Args],
        env: c.Config.Env ?? [],
        cwd: c.Config.WorkingDir || '/',
        user: c.Config.User,
        terminal: c.Config.Tty,
        hostname: mode === 'host' ? undefined : c.Config.Hostname,
        mounts,
        network,
        utsMode: mode === 'host' ? 'host' : 'private',
        capAdd: hc.Privileged ? ['ALL'] : hc.CapAdd ?? [],
        capDrop: hc.CapDrop ?? [],
      });
      for (const t of tmpfs) {
        spec.mounts.push({ destination: t.destination, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', ...(t.options ? t.options.split(',') : [])] });
      }
      const bundle = this.#bundle(id);
      await mkdir(this.runc.root, { recursive: true, mode: 0o700 });
      await mkdir(bundle, { recursive: true, mode: 0o700 });
      await writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));

      c.HasBeenStartedBefore = true;
      c.HasBeenManuallyStopped = false;
      c.HostnamePath = files.hostname;
      c.HostsPath = files.hosts;
      c.ResolvConfPath = files.resolvConf;
      c.NetworkSettings = mode === 'bridge' ? await networks.inspect(id) : networks.emptySettings(mode);
      await this.store.write(c);

      const request = { id, bundle, containerDir: dir, runtimeRoot: this.runc.root, onExit: [...this.#o.cliArgv, 'container', 'cleanup', id], terminal: c.Config.Tty };
      const { startContainer, superviseInProcess } = await import('../runtime/monitor.js');
      if (o.attach) {
        const supervised = await superviseInProcess(request, { stdin: o.stdin ?? 'ignore', forward: true });
        return {
          id,
          wait: async () => {
            const exit = await supervised.wait();
            await this.cleanup(id);
            return exit.exitCode;
          },
        };
      }
      await startContainer(request, { stdin: o.stdin ?? 'ignore' });
      return { id };
    } catch (err) {
      await this.#undoStart(id, rw, mountedVolumes, networks).catch(() => undefined);
      if (err instanceof StrataError && /not a directory/.test(err.message) && Object.values(c.MountPoints).some((m) => m.Type === 'bind')) {
        // Docker's hint for a file mounted onto a directory or the reverse.
        throw new StrataError(err.code, `${err.message}: Are you trying to mount a directory onto a file (or vice-versa)? Check if the specified host path exists and is the expected type`);
      }
      throw err;
    }
  }

  async #undoStart(id: string, rw: RWLayer, volumes: readonly string[], networks: ContainerNetworks | undefined): Promise<void> {
    await networks?.detach(id).catch(() => undefined);
    if (volumes.length > 0) {
      const v = await this.#o.volumes();
      for (const name of volumes) await v.unmount(name, id).catch(() => undefined);
    }
    await rw.unmount().catch(() => undefined);
    await rm(this.#bundle(id), { recursive: true, force: true });
  }

  /**
   * After the container's process ended: network, volume mounts, rootfs mount and runc
   * state released; an `--rm` container removed with its anonymous volumes. Idempotent;
   * the monitor runs it through the CLI, attached runs and reconciliation call it directly.
   */
  async cleanup(ref: string, o: { fromReconcile?: boolean } = {}): Promise<void> {
    let id: string;
    try {
      id = await this.store.resolve(ref);
    } catch (err) {
      if (err instanceof NotFoundError) return;
      throw err;
    }
    await this.#locked(id, () => this.#cleanup(id, o));
  }

  async #cleanup(ref: string, o: { fromReconcile?: boolean }): Promise<void> {
    let loaded;
    try {
      loaded = await this.#load(ref);
    } catch (err) {
      if (err instanceof NotFoundError) return;
      throw err;
    }
    const { id, c, hc } = loaded;
    if (!o.fromReconcile) {
      const record = await readRecord(this.store.dir(id));
      if (record?.status === 'running') {
        // Still running (a stale hook): nothing to undo.
        const state = await reconcile({ id, containerDir: this.store.dir(id), runc: this.runc });
        if (state.status === 'running' || state.status === 'paused') return;
      }
    }
    if (await this.runc.hasState(id)) await killAndDelete(this.runc, id).catch(() => undefined);
    const networks = await this.#o.networks();
    await networks.detach(id).catch(() => undefined);
    const volumeNames = Object.values(c.MountPoints).filter((m) => m.Type === 'volume').map((m) => m.Name);
    if (volumeNames.length > 0) {
      const v = await this.#o.volumes();
      for (const name of volumeNames) await v.unmount(name, id).catch(() => undefined);
    }
    const rw = await this.#o.layers.getRWLayer(id).catch(() => undefined);
    await rw?.unmount();
    await rm(this.#bundle(id), { recursive: true, force: true });
    if (hc.AutoRemove) await this.remove(id, { force: true, volumes: true, skipCleanup: true }).catch(() => undefined);
  }

  // ---- stop / kill / restart ------------------------------------------------------------

  async stop(ref: string, o: { timeout?: number } = {}): Promise<string> {
    const { id, c } = await this.#load(ref);
    const state = await this.#state(id);
    if (state.status !== 'running' && state.status !== 'paused') return id;
    const timeout = o.timeout ?? c.Config.StopTimeout ?? 10;
    c.HasBeenManuallyStopped = true;
    await this.store.write(c);
    const signal = c.Config.StopSignal || 'SIGTERM';
    if (timeout !== 0) await this.runc.kill(id, normalizeSignal(signal)).catch(() => undefined);
    const ac = new AbortController();
    const timer = timeout < 0 ? undefined : setTimeout(() => ac.abort(new Error('timeout')), Math.max(0, timeout) * 1000);
    try {
      await waitForExit(this.store.dir(id), { signal: ac.signal, reconcile: { id, runc: this.runc } });
    } catch {
      await this.runc.kill(id, 'SIGKILL', { all: true }).catch(() => undefined);
      await waitForExit(this.store.dir(id), { reconcile: { id, runc: this.runc } });
    } finally {
      clearTimeout(timer);
    }
    await this.#afterExit(id);
    return id;
  }

  /** Waits until the exit hook (or we) released what start set up. */
  async #afterExit(id: string): Promise<void> {
    // The monitor's hook runs in its own process; do the (idempotent) work here too, so
    // the caller sees the mounts gone when stop returns, as Docker's stop guarantees.
    await this.cleanup(id);
  }

  async kill(ref: string, signal = 'SIGKILL'): Promise<string> {
    const { id } = await this.#load(ref);
    const state = await this.#state(id);
    if (state.status !== 'running' && state.status !== 'paused') {
      throw new ConflictError(`Cannot kill container: ${ref}: Container ${id} is not running`);
    }
    await this.runc.kill(id, normalizeSignal(signal), { all: normalizeSignal(signal) === 'SIGKILL' });
    if (normalizeSignal(signal) === 'SIGKILL') {
      await waitForExit(this.store.dir(id), { reconcile: { id, runc: this.runc } });
      await this.#afterExit(id);
    }
    return id;
  }

  async restart(ref: string, o: { timeout?: number } = {}): Promise<string> {
    const id = await this.stop(ref, o);
    await this.start(id);
    return id;
  }

  /** `docker wait`: the exit code once the container is not running. */
  async wait(ref: string): Promise<number> {
    const { id } = await this.#load(ref);
    const state = await this.#state(id);
    if (state.status !== 'running' && state.status !== 'paused') return state.exitCode ?? 0;
    const record = await waitForExit(this.store.dir(id), { reconcile: { id, runc: this.runc } });
    return record.exitCode ?? 0;
  }

  // ---- remove / prune / rename ----------------------------------------------------------

  async remove(ref: string, o: { force?: boolean; volumes?: boolean; skipCleanup?: boolean } = {}): Promise<string> {
    const id = await this.store.resolve(ref);
    return this.#locked(id, () => this.#remove(id, o));
  }

  async #remove(ref: string, o: { force?: boolean; volumes?: boolean; skipCleanup?: boolean }): Promise<string> {
    const { id, c } = await this.#load(ref);
    // Under the lifecycle lock no start is under way, so a container never started has no
    // runtime state to settle.
    const state: ContainerRuntimeState = c.HasBeenStartedBefore ? await this.#state(id) : { status: 'created' };
    if (state.status === 'running' || state.status === 'paused') {
      if (!o.force) {
        throw new ConflictError(
          `You cannot remove a ${state.status} container ${id}. Stop the container before attempting removal or force remove`,
        );
      }
      await this.runc.kill(id, 'SIGKILL', { all: true }).catch(() => undefined);
      await waitForExit(this.store.dir(id), { reconcile: { id, runc: this.runc } });
    }
    // A container never started holds no mounts, network or runc state to release.
    if (!o.skipCleanup && c.HasBeenStartedBefore) await this.cleanup(id, { fromReconcile: true });
    await this.#o.layers.removeRWLayer(id).catch((err: unknown) => {
      if (!(err instanceof NotFoundError)) throw err;
    });
    const volumes = Object.values(c.MountPoints)
      .filter((m) => m.Type === 'volume' && m.Name)
      .map((m) => ({ name: m.Name, anonymous: m.Anonymous === true }));
    if (volumes.length > 0) {
      await (await this.#o.volumes()).releaseContainerVolumes(id, volumes, { removeAnonymous: o.volumes === true });
    }
    await this.store.remove(id, c.Name.slice(1));
    return id;
  }

  async prune(): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const id of await this.store.ids()) {
      const state = await this.#state(id);
      if (state.status === 'running' || state.status === 'paused') continue;
      const rw = await this.#o.layers.getRWLayer(id).catch(() => undefined);
      const size = rw ? (await rw.usage().catch(() => ({ size: 0 }))).size : 0;
      await this.remove(id);
      deleted.push(id);
      reclaimed += size;
    }
    return { ContainersDeleted: deleted, SpaceReclaimed: reclaimed };
  }

  async rename(ref: string, newName: string): Promise<void> {
    const { id, c } = await this.#load(ref);
    const name = validateName(newName);
    const old = c.Name.slice(1);
    if (old === name) throw new ConflictError(`Renaming a container with the same name as its current name`);
    await this.store.rename(id, old, name, async () => {
      c.Name = `/${name}`;
      await this.store.write(c);
    });
  }

  // ---- reading ------------------------------------------------------------------------

  async list(o: { all?: boolean; size?: boolean; filters?: Record<string, string[]> } = {}): Promise<ContainerSummary[]> {
    const out: ContainerSummary[] = [];
    for (const id of await this.store.ids()) {
      let loaded;
      try {
        loaded = await this.store.read<ContainerRecord, HostConfig>(id);
      } catch (err) {
        if (err instanceof NotFoundError) continue;
        throw err;
      }
      const { container: c, hostConfig: hc } = loaded;
      const state = await this.#state(id);
      const running = state.status === 'running' || state.status === 'paused';
      if (!o.all && !running) continue;
      if (!matchFilters(o.filters, c, state)) continue;
      const summary: ContainerSummary = {
        Id: id,
        Names: [c.Name],
        Image: c.Config.Image,
        ImageID: c.Image,
        Command: [c.Path, ...c.Args].join(' '),
        Created: Math.floor((parseTime(c.Created) ?? 0) / 1000),
        Ports: running ? portsOf(hc, c) : [],
        Labels: c.Config.Labels ?? {},
        State: state.status,
        Status: statusText(state),
        HostConfig: { NetworkMode: hc.NetworkMode },
        Mounts: Object.values(c.MountPoints).map((mp) => mountPointJSON(mp)),
      };
      if (o.size) {
        const rw = await this.#o.layers.getRWLayer(id).catch(() => undefined);
        summary.SizeRw = rw ? (await rw.usage()).size : 0;
        const image = await this.#o.images.find(c.Image);
        summary.SizeRootFs = summary.SizeRw + (image ? await this.#imageSize(image) : 0);
      }
      out.push(summary);
    }
    return out.sort((a, b) => b.Created - a.Created || (a.Id < b.Id ? -1 : 1));
  }

  async #imageSize(image: ImageRecord): Promise<number> {
    let size = 0;
    for (const chain of chainIds(image.config.rootfs.diff_ids)) size += (await this.#o.layers.get(chain))?.size ?? 0;
    return size;
  }

  /** `docker container inspect`: Docker's JSON shape, field order included. */
  async inspect(ref: string, o: { size?: boolean } = {}): Promise<Record<string, unknown>> {
    const { id, c, hc } = await this.#load(ref);
    const state = await this.#state(id);
    const rw = await this.#o.layers.getRWLayer(id).catch(() => undefined);
    const graphData = rw ? await rw.metadata() : {};
    const out: Record<string, unknown> = {
      Id: id,
      Created: c.Created,
      Path: c.Path,
      Args: c.Args,
      State: ContainerService.stateJSON(state, c.HasBeenStartedBefore),
      Image: c.Image,
      ResolvConfPath: c.ResolvConfPath,
      HostnamePath: c.HostnamePath,
      HostsPath: c.HostsPath,
      LogPath: c.LogPath,
      Name: c.Name,
      RestartCount: c.RestartCount,
      Driver: c.Driver,
      Platform: c.OS,
      MountLabel: c.MountLabel,
      ProcessLabel: c.ProcessLabel,
      AppArmorProfile: c.AppArmorProfile,
      ExecIDs: null,
      HostConfig: hc,
    };
    if (o.size && rw) {
      out.SizeRw = (await rw.usage()).size;
      const image = await this.#o.images.find(c.Image);
      out.SizeRootFs = (out.SizeRw as number) + (image ? await this.#imageSize(image) : 0);
    }
    out.GraphDriver = { Data: Object.keys(graphData).length > 0 ? graphData : null, Name: c.Driver };
    out.Mounts = Object.values(c.MountPoints).map((mp) => mountPointJSON(mp));
    out.Config = c.Config;
    const running = state.status === 'running' || state.status === 'paused';
    out.NetworkSettings = running && c.NetworkSettings ? c.NetworkSettings : (await this.#o.networks()).emptySettings(hc.NetworkMode);
    return out;
  }

  /** `docker diff`. */
  async changes(ref: string): Promise<Change[]> {
    const { id } = await this.#load(ref);
    return (await this.#o.layers.getRWLayer(id)).changes();
  }

  /** `docker diff` lines. */
  async diffLines(ref: string): Promise<string[]> {
    return (await this.changes(ref)).map((ch) => `${changeLetter(ch.Kind)} ${ch.Path}`);
  }

  /** `docker export`: the container's filesystem (not its volumes) as a tar stream. */
  async export(ref: string): Promise<Readable> {
    const { id } = await this.#load(ref);
    const rw = await this.#o.layers.getRWLayer(id);
    const wasMounted = await rw.isMounted();
    const root = await rw.mount();
    const stream = tarTreeDiff(root, undefined);
    if (!wasMounted) {
      stream.once('close', () => {
        void this.#state(id).then((s) => (s.status === 'running' ? undefined : rw.unmount())).catch(() => undefined);
      });
    }
    return stream;
  }

  /**
   * `docker commit`: the RW layer's diff as a new layer on the image's, with a config made
   * by Docker's rules (container Config with `--change`s applied, history entry appended).
   */
  async commit(
    ref: string,
    o: { repository?: string; author?: string; message?: string; changes?: string[] } = {},
  ): Promise<Digest> {
    const { id, c } = await this.#load(ref);
    const image = await this.#o.images.find(c.Image);
    if (!image) throw new NotFoundError(`No such image: ${c.Image}`);
    const rw = await this.#o.layers.getRWLayer(id);
    const { applyChanges } = await import('./changes.js');
    const { commitConfig } = await import('./commit-config.js');
    const containerConfig = applyChanges(structuredClone(c.Config), o.changes ?? []);
    const layer = await rw.tarStream();
    return this.#o.images.createImage({
      layer,
      parentLayer: image.topLayer,
      parentImage: image.id,
      tag: o.repository,
      makeConfig: (diffId) =>
        commitConfig({
          parent: image.config,
          containerId: id,
          containerConfig: c.Config,
          config: containerConfig,
          diffId,
          author: o.author ?? '',
          comment: o.message ?? '',
        }),
    });
  }

  /**
   * `docker cp`: `from` and `to` are `CONTAINER:PATH` or a host path (exactly one of each).
   * See container-copy.ts for the rules and the symlink safety.
   */
  async copy(from: string, to: string, o: { archive?: boolean } = {}): Promise<void> {
    const split = (arg: string) => {
      const colon = arg.indexOf(':');
      // `./a:b` and absolute paths are host paths, as docker's splitCpArg decides.
      if (colon <= 0 || arg.startsWith('/') || arg.startsWith('.')) return undefined;
      return { ref: arg.slice(0, colon), path: arg.slice(colon + 1) };
    };
    const src = split(from);
    const dst = split(to);
    if (src && dst) throw new InvalidArgumentError('copying between containers is not supported');
    if (!src && !dst) throw new InvalidArgumentError('must specify at least one container source');
    const side = (src ?? dst)!;
    if (side.path === '') throw new InvalidArgumentError('filesystem paths must not be empty');
    const { id, c } = await this.#load(side.ref);
    const rw = await this.#o.layers.getRWLayer(id);
    const wasMounted = await rw.isMounted();
    const rootfs = await rw.mount();
    const { locate, resolveNoFollow, copyByDockerRules } = await import('./container-copy.js');
    try {
      const where = locate(side.path.startsWith('/') ? side.path : `/${c.Config.WorkingDir || ''}/${side.path}`, rootfs, Object.values(c.MountPoints));
      // A source link is copied as a link; a destination is followed (inside the container).
      const ctrHost = src ? await resolveNoFollow(where.base, where.rel) : await resolveInRoot(where.base, where.rel);
      const contentsOnly = (src ? src.path : from).endsWith('/.');
      const destGivenAsDir = (dst ? dst.path : to).endsWith('/');
      if (src) {
        copyByDockerRules(ctrHost, path.resolve(to), { contentsOnly, destGivenAsDir, chownRoot: false, srcLabel: src.path, destLabel: to });
      } else {
        if (where.readOnly) throw new InvalidArgumentError(`mounted volume is marked read-only`);
        copyByDockerRules(path.resolve(from), ctrHost, { contentsOnly, destGivenAsDir, chownRoot: !o.archive, srcLabel: from, destLabel: dst!.path });
      }
    } finally {
      if (!wasMounted) {
        const s = await this.#state(id);
        if (s.status !== 'running' && s.status !== 'paused') await rw.unmount();
      }
    }
  }

  // ---- exec / logs -----------------------------------------------------------------------

  async exec(
    ref: string,
    o: { cmd: string[]; tty?: boolean; interactive?: boolean; user?: string; workdir?: string; env?: string[]; detach?: boolean; stdio?: 'inherit' | 'ignore' },
  ): Promise<number> {
    const { id } = await this.#load(ref);
    const state = await this.#state(id);
    if (state.status !== 'running') throw new ConflictError(`Container ${id} is not running`);
    const spec = JSON.parse(await readFile(path.join(this.#bundle(id), 'config.json'), 'utf8')) as OciSpec;
    const proc = await buildExecProcess(spec, { args: o.cmd, env: o.env, cwd: o.workdir, user: o.user, terminal: o.tty });
    const stdio = o.stdio === 'ignore' ? 'ignore' : [o.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'];
    return this.runc.exec(id, proc, { tty: o.tty, detach: o.detach, stdio: stdio as never });
  }

  /**
   * `docker logs`: the json-file log's records. With `follow`, keeps reading until the
   * container stops (or `signal` aborts), like docker's follow mode.
   */
  async *logs(ref: string, o: { follow?: boolean; tail?: number; since?: string; until?: string; signal?: AbortSignal } = {}): AsyncGenerator<LogEntry> {
    const { id, c } = await this.#load(ref);
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    o.signal?.addEventListener('abort', onAbort);
    if (o.follow) {
      const state = await this.#state(id);
      if (state.status === 'running' || state.status === 'paused') {
        void waitForExit(this.store.dir(id), { signal: ac.signal, reconcile: { id, runc: this.runc } })
          .then(() => ac.abort())
          .catch(() => undefined);
      } else {
        ac.abort();
      }
    }
    try {
      yield* readLog(c.LogPath, { follow: o.follow, signal: ac.signal, tail: o.tail, since: o.since, until: o.until });
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
      ac.abort();
    }
  }

  /** Who uses an image (for rmi/prune conflicts): every container created from it. */
  async imageUsers(imageId: Digest): Promise<Array<{ id: string; running: boolean }>> {
    const out: Array<{ id: string; running: boolean }> = [];
    for (const id of await this.store.ids()) {
      const { container } = await this.store.read<ContainerRecord>(id).catch(() => ({ container: undefined }));
      if (!container || container.Image !== imageId) continue;
      const state = await this.#state(id);
      out.push({ id, running: state.status === 'running' || state.status === 'paused' });
    }
    return out;
  }

  /** Counts for `docker info`. */
  async counts(): Promise<{ total: number; running: number; paused: number; stopped: number }> {
    let running = 0;
    let paused = 0;
    let total = 0;
    for (const id of await this.store.ids()) {
      total++;
      const s = await readRecord(this.store.dir(id));
      if (s?.status === 'running') running++;
    }
    return { total, running, paused, stopped: total - running - paused };
  }

  shortId(id: string): string {
    return shortId(id);
  }
}

/** The API form of a `--mount` (HostConfig.Mounts entry). */
function mountApiJSON(spec: MountSpec): Record<string, unknown> {
  const out: Record<string, unknown> = { Type: spec.type, Source: spec.source, Target: spec.target };
  if (spec.readOnly) out.ReadOnly = true;
  if (spec.type === 'bind' && spec.propagation && spec.propagation !== 'rprivate') out.BindOptions = { Propagation: spec.propagation };
  if (spec.type === 'volume' && spec.volume && !spec.volume.copyData) out.VolumeOptions = { NoCopy: true };
  return out;
}

function normalizeSignal(signal: string): NodeJS.Signals {
  const s = signal.toUpperCase();
  if (/^\d+$/.test(s)) {
    const name = Object.entries(osConstants.signals).find(([, n]) => n === Number(s))?.[0];
    if (!name) throw new InvalidArgumentError(`Invalid signal: ${signal}`);
    return name as NodeJS.Signals;
  }
  const name = s.startsWith('SIG') ? s : `SIG${s}`;
  if (!(name in osConstants.signals)) throw new InvalidArgumentError(`Invalid signal: ${signal}`);
  return name as NodeJS.Signals;
}

function statusText(s: ContainerRuntimeState): string {
  const now = Date.now();
  switch (s.status) {
    case 'running':
    case 'paused': {
      const started = parseTime(s.startedAt) ?? now;
      return `Up ${humanDuration((now - started) / 1000)}${s.status === 'paused' ? ' (Paused)' : ''}`;
    }
    case 'exited': {
      const finished = parseTime(s.finishedAt) ?? now;
      return `Exited (${s.exitCode ?? 0}) ${humanDuration((now - finished) / 1000)} ago`;
    }
    case 'dead':
      return 'Dead';
    default:
      return 'Created';
  }
}

function portsOf(hc: HostConfig, c: ContainerRecord): ContainerSummary['Ports'] {
  const out: ContainerSummary['Ports'] = [];
  const bound = new Set<string>();
  for (const [port, list] of Object.entries(hc.PortBindings ?? {})) {
    const [num, type = 'tcp'] = port.split('/');
    for (const b of list) {
      bound.add(port);
      out.push({ IP: b.HostIp || '0.0.0.0', PrivatePort: Number(num), PublicPort: Number(b.HostPort), Type: type });
    }
  }
  for (const port of Object.keys(c.Config.ExposedPorts ?? {})) {
    if (bound.has(port)) continue;
    const [num, type = 'tcp'] = port.split('/');
    out.push({ PrivatePort: Number(num), Type: type });
  }
  return out;
}

function matchFilters(filters: Record<string, string[]> | undefined, c: ContainerRecord, s: ContainerRuntimeState): boolean {
  if (!filters) return true;
  for (const [key, values] of Object.entries(filters)) {
    if (values.length === 0) continue;
    const ok = values.some((v) => {
      switch (key) {
        case 'name':
          return new RegExp(v).test(c.Name.slice(1));
        case 'id':
          return c.ID.startsWith(v);
        case 'status':
          return s.status === v;
        case 'ancestor':
          return c.Config.Image === v || c.Image === v || c.Image.startsWith(`sha256:${v}`);
        case 'label': {
          const eq = v.indexOf('=');
          const labels = c.Config.Labels ?? {};
          return eq < 0 ? v in labels : labels[v.slice(0, eq)] === v.slice(eq + 1);
        }
        case 'exited':
          return s.status === 'exited' && String(s.exitCode ?? 0) === v;
        case 'volume':
          return Object.values(c.MountPoints).some((m) => m.Name === v || m.Destination === v);
        default:
          throw new InvalidArgumentError(`Invalid filter '${key}'`);
      }
    });
    if (!ok) return false;
  }
  return true;
}

