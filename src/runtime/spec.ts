/**
 * OCI runtime-spec (config.json) generation for runc 1.1, with Docker 20.10's defaults:
 * the same capability set, mounts, masked and read-only paths, device rules and namespaces,
 * so a program sees the same container under strata as under `docker run`.
 *
 * Seccomp: none for now. Docker applies its default seccomp profile; strata does not ship
 * one yet, so `linux.seccomp` is left out (runc then installs no filter). Capabilities,
 * masked paths and the device cgroup are still Docker's, which is what confines a root
 * process; seccomp is defence in depth on top and is a known gap.
 * AppArmor/SELinux labels are left out for the same reason (Debian's runc supports them,
 * but strata loads no profile).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { InvalidArgumentError } from '../errors.js';
import { resolveUser } from './user.js';

// ---- OCI types (the subset strata writes) ------------------------------------------------

export interface OciUser {
  uid: number;
  gid: number;
  additionalGids?: number[];
  umask?: number;
}

export interface OciRlimit {
  type: string;
  hard: number;
  soft: number;
}

export interface OciCapabilities {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable?: string[];
  ambient?: string[];
}

export interface OciProcess {
  terminal: boolean;
  consoleSize?: { height: number; width: number };
  user: OciUser;
  args: string[];
  env: string[];
  cwd: string;
  capabilities: OciCapabilities;
  rlimits?: OciRlimit[];
  noNewPrivileges: boolean;
  oomScoreAdj?: number;
  apparmorProfile?: string;
}

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface OciNamespace {
  type: 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup';
  path?: string;
}

export interface OciDeviceRule {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  access: string;
}

export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly: boolean };
  hostname?: string;
  mounts: OciMount[];
  linux: {
    namespaces: OciNamespace[];
    cgroupsPath: string;
    resources: { devices: OciDeviceRule[] };
    maskedPaths: string[];
    readonlyPaths: string[];
    devices?: unknown[];
    sysctl?: Record<string, string>;
  };
}

// ---- Docker's defaults -----------------------------------------------------------------------

/** The 14 capabilities Docker grants a non-privileged container. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Every capability runc 1.1 knows, for `--cap-add ALL`. */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER',
  'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Docker's PATH when neither the image nor the user sets one. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Docker itself sets no rlimits; containers inherit containerd's, which Debian's systemd
 * units set to LimitNOFILE=infinity (1048576 both ways). strata has no daemon whose limits
 * could be inherited (a login shell's soft limit is often 1024), so that value is written
 * explicitly, capped at this process's hard limit: raising a hard limit needs
 * CAP_SYS_RESOURCE, which a sandboxed root may lack, while raising the soft limit up to the
 * hard one is always allowed (a dockerd started in such a sandbox gives its containers
 * exactly hard:hard too).
 */
export const DOCKER_NOFILE = 1048576;

/** This process's hard RLIMIT_NOFILE, from /proc (Node has no getrlimit). */
function hardNofileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const hard = line?.trim().split(/\s+/)[4];
    if (hard === 'unlimited') return Number.POSITIVE_INFINITY;
    const n = Number(hard);
    return Number.isFinite(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export function defaultRlimits(): OciRlimit[] {
  const nofile = Math.min(DOCKER_NOFILE, hardNofileLimit() ?? DOCKER_NOFILE);
  return [{ type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }];
}

export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

export const DEFAULT_READONLY_PATHS: readonly string[] = [
  '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger',
];

/**
 * Device cgroup: deny everything, then allow what a container needs. The device nodes
 * themselves (null, zero, full, random, urandom, tty, ptmx, fd links) are created by runc
 * on the /dev tmpfs, which is why `linux.devices` stays empty as in Docker's spec.
 */
export const DEFAULT_DEVICE_RULES: readonly OciDeviceRule[] = [
  { allow: false, access: 'rwm' },
  // An omitted major or minor is the spec's wildcard (`c *:* m`).
  { allow: true, type: 'c', access: 'm' }, // mknod of any char device
  { allow: true, type: 'b', access: 'm' }, // ... and block device
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // /dev/null
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' }, // /dev/random
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }, // /dev/full
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' }, // /dev/tty
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // /dev/zero
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' }, // /dev/urandom
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' }, // /dev/console
  { allow: true, type: 'c', major: 136, access: 'rwm' }, // /dev/pts/*
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // /dev/ptmx
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' }, // /dev/net/tun
];

/** 64 MiB, Docker's default --shm-size. */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

// ---- options -----------------------------------------------------------------------------------

/** A bind mount into the container (etc/hosts, etc/resolv.conf, volumes...). */
export interface BindMount {
  /** Host path. */
  source: string;
  /** Absolute path inside the container. */
  destination: string;
  readonly?: boolean;
  /** Docker's default is `rprivate`. */
  propagation?: 'private' | 'rprivate' | 'shared' | 'rshared' | 'slave' | 'rslave';
  /** `rbind` (default, like Docker) or a plain `bind` that leaves submounts out. */
  recursive?: boolean;
  /** Further mount options passed through (`nosuid`, `noexec`...). */
  options?: string[];
}

export type NetworkMode =
  /** A fresh network namespace (Docker's `none`; CNI fills it for `bridge`). */
  | 'private'
  /** The host's network namespace: no `network` entry at all. */
  | 'host'
  /** Join an existing namespace, e.g. one a CNI plugin set up under /run/netns. */
  | { path: string };

export interface SpecOptions {
  /** Container id; names the cgroup unless `cgroupsPath` is given. */
  id: string;
  /** Host path of the root filesystem (the overlay `merged` directory). */
  rootfs: string;
  readonlyRootfs?: boolean;
  args: string[];
  /**
   * The container's environment as Docker's Config.Env has it (image env merged with -e).
   * PATH (when missing), HOSTNAME and, with a terminal, TERM are added as the daemon does.
   */
  env?: string[];
  /** Working directory; default `/`. Must exist in the rootfs (the caller creates it, as dockerd does). */
  cwd?: string;
  /** Docker's `-u` value: `name|uid[:group|gid]`. */
  user?: string;
  /** `--group-add` values. */
  groupAdd?: string[];
  terminal?: boolean;
  hostname?: string;
  /** Bind mounts added after Docker's defaults; one at a default's destination replaces it. */
  mounts?: BindMount[];
  /**
   * /dev/shm: a host directory (a tmpfs the caller mounted, shared by exec sessions and
   * kept across restarts, as Docker does) to bind, or a fresh tmpfs of `size` bytes.
   */
  shm?: { path: string } | { size?: number };
  network?: NetworkMode;
  /** `--pid host` / `--ipc host` / `--uts host`. */
  pidMode?: 'private' | 'host';
  ipcMode?: 'private' | 'host';
  utsMode?: 'private' | 'host';
  capAdd?: string[];
  capDrop?: string[];
  /** Replaces defaultRlimits(). */
  rlimits?: OciRlimit[];
  /** Default `/strata/<id>`: a cgroupfs path (relative to each v1 hierarchy's root). */
  cgroupsPath?: string;
}

function normalizeCap(cap: string): string {
  const upper = cap.trim().toUpperCase();
  if (upper === 'ALL') return upper;
  const name = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!ALL_CAPABILITIES.includes(name)) throw new InvalidArgumentError(`unknown capability: "${cap}"`);
  return name;
}

/** Docker's --cap-add/--cap-drop arithmetic: drop ALL first, then add; add ALL wins over drops. */
export function effectiveCapabilities(capAdd: readonly string[] = [], capDrop: readonly string[] = []): string[] {
  const add = capAdd.map(normalizeCap);
  const drop = capDrop.map(normalizeCap);
  if (add.includes('ALL')) return [...ALL_CAPABILITIES];
  const base = drop.includes('ALL') ? [] : DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c));
  for (const c of add) if (!base.includes(c)) base.push(c);
  return base;
}

/**
 * The daemon-side environment: a default PATH, HOSTNAME, TERM=xterm with a terminal,
 * then the container's own variables, which win over these defaults. Later duplicates of a
 * key replace earlier ones in place, as Docker's ReplaceOrAppendEnvValues does.
 */
export function containerEnv(env: readonly string[], hostname: string | undefined, terminal: boolean): string[] {
  const out: string[] = [];
  const index = new Map<string, number>();
  const put = (kv: string) => {
    const eq = kv.indexOf('=');
    const key = eq < 0 ? kv : kv.slice(0, eq);
    const at = index.get(key);
    if (at === undefined) {
      index.set(key, out.length);
      out.push(kv);
    } else {
      out[at] = kv;
    }
  };
  // PATH always comes first; an image's or user's PATH replaces it in place.
  put(`PATH=${DEFAULT_PATH}`);
  if (hostname) put(`HOSTNAME=${hostname}`);
  if (terminal) put('TERM=xterm');
  for (const kv of env) put(kv);
  return out;
}

function defaultMounts(shm: SpecOptions['shm']): OciMount[] {
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    // On cgroup v1 runc turns this into a tmpfs with the container's own cgroup directory
    // bound read-only for each hierarchy, which is what Docker's containers see.
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  ];
  if (shm && 'path' in shm) {
    mounts.push({ destination: '/dev/shm', type: 'bind', source: shm.path, options: ['rbind', 'nosuid', 'noexec', 'nodev'] });
  } else {
    const size = shm?.size ?? DEFAULT_SHM_SIZE;
    if (!Number.isSafeInteger(size) || size <= 0) throw new InvalidArgumentError(`invalid shm size ${size}`);
    mounts.push({
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${size % 1024 === 0 ? `${size / 1024}k` : size}`],
    });
  }
  return mounts;
}

function bindToOci(m: BindMount): OciMount {
  if (!path.isAbsolute(m.destination)) {
    throw new InvalidArgumentError(`invalid mount config: mount path must be absolute: ${m.destination}`);
  }
  if (!path.isAbsolute(m.source)) throw new InvalidArgumentError(`invalid mount config: source must be absolute: ${m.source}`);
  const options = [m.recursive === false ? 'bind' : 'rbind', m.propagation ?? 'rprivate'];
  if (m.readonly) options.push('ro');
  if (m.options) options.push(...m.options);
  return { destination: path.posix.normalize(m.destination), type: 'bind', source: m.source, options };
}

function depth(p: string): number {
  return p.split('/').filter(Boolean).length;
}

/**
 * Builds config.json for runc. Async because the user is resolved from the rootfs's
 * /etc/passwd and /etc/group (NotFoundError for an unknown user or group name).
 */
export async function buildSpec(options: SpecOptions): Promise<OciSpec> {
  if (options.args.length === 0) throw new InvalidArgumentError('no command specified');
  if (!path.isAbsolute(options.rootfs)) throw new InvalidArgumentError(`rootfs must be absolute: ${options.rootfs}`);
  const cwd = options.cwd || '/';
  if (!path.isAbsolute(cwd)) throw new InvalidArgumentError(`the working directory '${cwd}' is invalid, it needs to be an absolute path`);
  const terminal = options.terminal ?? false;
  const user = await resolveUser(options.rootfs, options.user, options.groupAdd);
  const caps = effectiveCapabilities(options.capAdd, options.capDrop);

  // A caller mount at a default's destination (a volume on /dev/shm...) replaces the default.
  // Caller mounts go parents-first so a mount inside another lands on top of it, not under.
  const extra = (options.mounts ?? []).map(bindToOci);
  const taken = new Set(extra.map((m) => m.destination));
  const mounts = [
    ...defaultMounts(options.shm).filter((m) => !taken.has(m.destination)),
    ...extra.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i).map((x) => x.m),
  ];

  const namespaces: OciNamespace[] = [];
  if (options.pidMode !== 'host') namespaces.push({ type: 'pid' });
  const network = options.network ?? 'private';
  if (network === 'private') namespaces.push({ type: 'network' });
  else if (typeof network === 'object') namespaces.push({ type: 'network', path: network.path });
  if (options.ipcMode !== 'host') namespaces.push({ type: 'ipc' });
  if (options.utsMode !== 'host') namespaces.push({ type: 'uts' });
  namespaces.push({ type: 'mount' });

  const spec: OciSpec = {
    ociVersion: '1.0.2-dev',
    process: {
      terminal,
      user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length > 0 ? { additionalGids: user.additionalGids } : {}) },
      args: [...options.args],
      env: containerEnv(options.env ?? [], options.hostname, terminal),
      cwd,
      // No inheritable or ambient set: since CVE-2022-24769 Docker grants neither, so a
      // non-root user gets the bounding set only and exec() leaves it with no effective caps.
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: (options.rlimits ?? defaultRlimits()).map((r) => ({ ...r })),
      noNewPrivileges: false,
      oomScoreAdj: 0,
    },
    root: { path: options.rootfs, readonly: options.readonlyRootfs ?? false },
    mounts,
    linux: {
      namespaces,
      cgroupsPath: options.cgroupsPath ?? `/strata/${options.id}`,
      resources: { devices: DEFAULT_DEVICE_RULES.map((d) => ({ ...d })) },
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
  // With --uts host the hostname is the host's; runc refuses a hostname without a UTS namespace.
  if (options.hostname && options.utsMode !== 'host') spec.hostname = options.hostname;
  return spec;
}

/**
 * The process spec for `runc exec`: Docker's exec inherits the container's capabilities,
 * rlimits and (unless -u/-w/-e say otherwise) user, cwd and environment.
 */
export async function buildExecProcess(
  container: OciSpec,
  options: { args: string[]; env?: string[]; cwd?: string; user?: string; terminal?: boolean },
): Promise<OciProcess> {
  if (options.args.length === 0) throw new InvalidArgumentError('no command specified');
  const base = container.process;
  let user = base.user;
  if (options.user !== undefined && options.user !== '') {
    const r = await resolveUser(container.root.path, options.user);
    user = { uid: r.uid, gid: r.gid, ...(r.additionalGids.length > 0 ? { additionalGids: r.additionalGids } : {}) };
  }
  const terminal = options.terminal ?? false;
  let env = [...base.env];
  if (terminal && !env.some((kv) => kv.startsWith('TERM='))) env.push('TERM=xterm');
  if (options.env) env = containerEnv([...env, ...options.env], undefined, false);
  return {
    ...base,
    terminal,
    user,
    args: [...options.args],
    env,
    cwd: options.cwd || base.cwd,
  };
}
