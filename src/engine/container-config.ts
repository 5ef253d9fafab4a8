/**
 * What `create`/`run` make of their options and the image: the container's Config (image
 * config merged as the daemon merges it), its HostConfig in Docker's JSON shape, and the
 * env-file format. Pure functions; the container service persists and acts on the results.
 */
import { InvalidArgumentError } from '../errors.js';
import type { MountPoint } from '../volumes/mount-spec.js';
import type { ContainerConfig } from './api-types.js';

import type { PortBinding } from '../network/service.js';

export type { PortBinding };

export type NetworkModeName = 'bridge' | 'host' | 'none' | 'default';

/** Everything `create` accepts (the CLI's flags, already split into values). */
export interface CreateOptions {
  image: string;
  name?: string;
  /** Arguments after the image: they replace the image's Cmd. */
  cmd?: string[];
  /** `--entrypoint`: '' clears the image's entrypoint. */
  entrypoint?: string;
  env?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  domainname?: string;
  tty?: boolean;
  openStdin?: boolean;
  attachStdin?: boolean;
  attachStdout?: boolean;
  attachStderr?: boolean;
  labels?: Record<string, string>;
  readOnly?: boolean;
  network?: string;
  publish?: PortBinding[];
  exposedPorts?: string[];
  /** `-v` values. */
  volumes?: string[];
  /** `--mount` values. */
  mounts?: string[];
  volumesFrom?: string[];
  tmpfs?: string[];
  autoRemove?: boolean;
  stopSignal?: string;
  stopTimeout?: number;
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  /** Directory relative host paths are resolved against (the CLI's cwd). */
  cwd?: string;
}

/** Docker's HostConfig (API 1.41), the fields strata acts on plus the zero values Docker shows. */
export interface HostConfig {
  Binds: string[] | null;
  ContainerIDFile: string;
  LogConfig: { Type: string; Config: Record<string, string> };
  NetworkMode: string;
  PortBindings: Record<string, Array<{ HostIp: string; HostPort: string }>> | null;
  RestartPolicy: { Name: string; MaximumRetryCount: number };
  AutoRemove: boolean;
  VolumeDriver: string;
  VolumesFrom: string[] | null;
  CapAdd: string[] | null;
  CapDrop: string[] | null;
  CgroupnsMode: string;
  Dns: string[];
  DnsOptions: string[];
  DnsSearch: string[];
  ExtraHosts: string[] | null;
  GroupAdd: string[] | null;
  IpcMode: string;
  Cgroup: string;
  Links: string[] | null;
  OomScoreAdj: number;
  PidMode: string;
  Privileged: boolean;
  PublishAllPorts: boolean;
  ReadonlyRootfs: boolean;
  SecurityOpt: string[] | null;
  UTSMode: string;
  UsernsMode: string;
  ShmSize: number;
  Runtime: string;
  ConsoleSize: [number, number];
  Isolation: string;
  CpuShares: number;
  Memory: number;
  NanoCpus: number;
  CgroupParent: string;
  BlkioWeight: number;
  BlkioWeightDevice: unknown[];
  BlkioDeviceReadBps: unknown;
  BlkioDeviceWriteBps: unknown;
  BlkioDeviceReadIOps: unknown;
  BlkioDeviceWriteIOps: unknown;
  CpuPeriod: number;
  CpuQuota: number;
  CpuRealtimePeriod: number;
  CpuRealtimeRuntime: number;
  CpusetCpus: string;
  CpusetMems: string;
  Devices: unknown[];
  DeviceCgroupRules: unknown;
  DeviceRequests: unknown;
  KernelMemory: number;
  KernelMemoryTCP: number;
  MemoryReservation: number;
  MemorySwap: number;
  MemorySwappiness: number | null;
  OomKillDisable: boolean;
  PidsLimit: number | null;
  Ulimits: unknown;
  CpuCount: number;
  CpuPercent: number;
  IOMaximumIOps: number;
  IOMaximumBandwidth: number;
  Mounts?: unknown[];
  MaskedPaths: string[];
  ReadonlyPaths: string[];
  Tmpfs?: Record<string, string>;
}

export const DEFAULT_SHM_SIZE = 67108864;

/** The masked and read-only paths Docker reports (and runc applies via the spec defaults). */
const MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export function hostConfigFor(o: CreateOptions, binds: string[], mounts: unknown[]): HostConfig {
  const portBindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of o.publish ?? []) (portBindings[p.containerPort] ??= []).push({ HostIp: p.hostIp, HostPort: p.hostPort });
  const tmpfs: Record<string, string> = {};
  for (const t of o.tmpfs ?? []) {
    const colon = t.indexOf(':');
    tmpfs[colon < 0 ? t : t.slice(0, colon)] = colon < 0 ? '' : t.slice(colon + 1);
  }
  const hc: HostConfig = {
    Binds: binds.length > 0 ? binds : null,
    ContainerIDFile: '',
    LogConfig: { Type: 'json-file', Config: {} },
    NetworkMode: o.network || 'default',
    PortBindings: portBindings,
    RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    AutoRemove: o.autoRemove ?? false,
    VolumeDriver: '',
    VolumesFrom: o.volumesFrom && o.volumesFrom.length > 0 ? [...o.volumesFrom] : null,
    CapAdd: o.capAdd && o.capAdd.length > 0 ? [...o.capAdd] : null,
    CapDrop: o.capDrop && o.capDrop.length > 0 ? [...o.capDrop] : null,
    CgroupnsMode: 'host',
    Dns: [],
    DnsOptions: [],
    DnsSearch: [],
    ExtraHosts: null,
    GroupAdd: null,
    IpcMode: 'private',
    Cgroup: '',
    Links: null,
    OomScoreAdj: 0,
    PidMode: '',
    Privileged: o.privileged ?? false,
    PublishAllPorts: false,
    ReadonlyRootfs: o.readOnly ?? false,
    SecurityOpt: null,
    UTSMode: '',
    UsernsMode: '',
    ShmSize: DEFAULT_SHM_SIZE,
    Runtime: 'runc',
    ConsoleSize: [0, 0],
    Isolation: '',
    CpuShares: 0,
    Memory: 0,
    NanoCpus: 0,
    CgroupParent: '',
    BlkioWeight: 0,
    BlkioWeightDevice: [],
    BlkioDeviceReadBps: null,
    BlkioDeviceWriteBps: null,
    BlkioDeviceReadIOps: null,
    BlkioDeviceWriteIOps: null,
    CpuPeriod: 0,
    CpuQuota: 0,
    CpuRealtimePeriod: 0,
    CpuRealtimeRuntime: 0,
    CpusetCpus: '',
    CpusetMems: '',
    Devices: [],
    DeviceCgroupRules: null,
    DeviceRequests: null,
    KernelMemory: 0,
    KernelMemoryTCP: 0,
    MemoryReservation: 0,
    MemorySwap: 0,
    MemorySwappiness: null,
    OomKillDisable: false,
    PidsLimit: null,
    Ulimits: null,
    CpuCount: 0,
    CpuPercent: 0,
    IOMaximumIOps: 0,
    IOMaximumBandwidth: 0,
    MaskedPaths: MASKED_PATHS,
    ReadonlyPaths: READONLY_PATHS,
  };
  if (mounts.length > 0) hc.Mounts = mounts;
  if (Object.keys(tmpfs).length > 0) hc.Tmpfs = tmpfs;
  return hc;
}

/** Splits `K=V` at the first `=`. */
function envKey(kv: string): string {
  const eq = kv.indexOf('=');
  return eq < 0 ? kv : kv.slice(0, eq);
}

/** Image env with `overrides` replacing same-named entries and appending new ones (the daemon's rule). */
export function mergeEnv(image: readonly string[], overrides: readonly string[]): string[] {
  const out = [...image];
  for (const kv of overrides) {
    const key = envKey(kv);
    const i = out.findIndex((e) => envKey(e) === key);
    if (i >= 0) out[i] = kv;
    else out.push(kv);
  }
  return out;
}

/**
 * `-e NAME` without a value takes it from the caller's environment, or is dropped when
 * unset, as the docker CLI does.
 */
export function resolveEnvFlags(values: readonly string[], environ: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (const v of values) {
    if (v.startsWith('=')) throw new InvalidArgumentError(`invalid environment variable: ${v}`);
    if (v.includes('=')) out.push(v);
    else if (environ[v] !== undefined) out.push(`${v}=${environ[v]}`);
  }
  return out;
}

/** Docker's env-file format: `K=V` lines, `#` comments, blank lines, `K` alone = from the environment. */
export function parseEnvFile(text: string, file: string, environ: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const name = eq < 0 ? line : line.slice(0, eq);
    if (name === '' ) throw new InvalidArgumentError(`no variable name on line '${raw}'`);
    if (/\s/.test(name)) throw new InvalidArgumentError(`variable '${name}' contains whitespaces`);
    if (eq >= 0) out.push(line);
    else if (environ[name] !== undefined) out.push(`${name}=${environ[name]}`);
  }
  void file;
  return out;
}

/**
 * The container's Config: the image's config with the run options applied, as the daemon
 * merges them (Cmd replaced by arguments, an explicit entrypoint drops the image's Cmd,
 * Env merged by name, ports and volumes unioned, labels added).
 */
export function mergeContainerConfig(
  image: Partial<ContainerConfig> | undefined,
  o: CreateOptions,
  defaults: { hostname: string; imageName: string },
): ContainerConfig {
  const img = image ?? {};
  let entrypoint = img.Entrypoint ?? null;
  let cmd = img.Cmd ?? null;
  if (o.entrypoint !== undefined) {
    entrypoint = o.entrypoint === '' ? null : [o.entrypoint];
    // An entrypoint given on the command line resets the image's Cmd (docker CLI rule).
    cmd = null;
  }
  if (o.cmd && o.cmd.length > 0) cmd = [...o.cmd];
  const exposed: Record<string, Record<string, never>> = { ...(img.ExposedPorts ?? {}) };
  for (const p of o.exposedPorts ?? []) exposed[p.includes('/') ? p : `${p}/tcp`] = {};
  for (const p of o.publish ?? []) exposed[p.containerPort] = {};
  const volumes: Record<string, Record<string, never>> = { ...(img.Volumes ?? {}) };
  const labels = { ...(img.Labels ?? {}), ...(o.labels ?? {}) };
  const config: ContainerConfig = {
    Hostname: o.hostname || defaults.hostname,
    Domainname: o.domainname ?? '',
    User: o.user ?? img.User ?? '',
    AttachStdin: o.attachStdin ?? false,
    AttachStdout: o.attachStdout ?? false,
    AttachStderr: o.attachStderr ?? false,
    Tty: o.tty ?? false,
    OpenStdin: o.openStdin ?? false,
    StdinOnce: (o.openStdin ?? false) && (o.attachStdin ?? false),
    Env: mergeEnv(img.Env ?? [], o.env ?? []),
    Cmd: cmd,
    Image: defaults.imageName,
    Volumes: Object.keys(volumes).length > 0 ? volumes : null,
    WorkingDir: o.workdir ?? img.WorkingDir ?? '',
    Entrypoint: entrypoint,
    OnBuild: img.OnBuild ?? null,
    Labels: labels,
  };
  if (Object.keys(exposed).length > 0) config.ExposedPorts = Object.fromEntries(Object.keys(exposed).sort().map((k) => [k, {}]));
  if (img.Healthcheck) config.Healthcheck = img.Healthcheck;
  if (o.stopSignal ?? img.StopSignal) config.StopSignal = o.stopSignal ?? img.StopSignal;
  if (o.stopTimeout !== undefined) config.StopTimeout = o.stopTimeout;
  if (img.Shell) config.Shell = img.Shell;
  if (config.WorkingDir !== '' && !config.WorkingDir.startsWith('/')) {
    throw new InvalidArgumentError(`the working directory '${config.WorkingDir}' is invalid, it needs to be an absolute path`);
  }
  return config;
}

/** What a container records about one of its mounts (config.v2.json `MountPoints`). */
export interface StoredMountPoint extends MountPoint {
  /** Named by the user (`-v name:/x`); anonymous ones are removed by `rm -v`. */
  Anonymous?: boolean;
  /** Copy image content into an empty volume at first mount. */
  CopyData?: boolean;
  /** bind via `-v`: create a missing host dir at start. */
  CreateHostPath?: boolean;
  /** tmpfs mount options (`size=…,mode=…`). */
  TmpfsOptions?: string;
}
