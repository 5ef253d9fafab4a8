/**
 * The image config a build step produces, built the way Docker 20.10's classic builder and
 * daemon build it (`image.NewChildImage`, `Image.MarshalJSON`, `container.Config`):
 *
 *  - top-level keys sorted (the daemon marshals, unmarshals into a map and marshals again);
 *  - `config` and `container_config` in container.Config struct order, `omitempty` fields
 *    (ExposedPorts, Healthcheck, ArgsEscaped, NetworkDisabled, MacAddress, StopSignal,
 *    StopTimeout, Shell) dropped when empty, the others always present (`null` when unset);
 *  - history entries `{created, author?, created_by?, comment?, empty_layer?}`;
 *  - a step whose layer is empty (Docker's empty-tar diffID) adds no diff_id and is marked
 *    `empty_layer`.
 *
 * Slices distinguish `null` (unset) from `[]` (set to nothing) because Docker's JSON does:
 * `CMD []` stores `"Cmd":[]`, `ENTRYPOINT []` stores `"Entrypoint":null`.
 */
import { goJson } from './go-format.js';

export interface HealthConfig {
  Test?: string[];
  /** Nanoseconds (Go time.Duration). */
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
}

/** Docker's container.Config as the builder uses it. Maps are plain objects. */
export interface ContainerConfig {
  Hostname: string;
  Domainname: string;
  User: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  ExposedPorts: Record<string, Record<string, never>> | null;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  Env: string[] | null;
  Cmd: string[] | null;
  Healthcheck: HealthConfig | null;
  ArgsEscaped: boolean;
  Image: string;
  Volumes: Record<string, Record<string, never>> | null;
  WorkingDir: string;
  Entrypoint: string[] | null;
  NetworkDisabled: boolean;
  MacAddress: string;
  OnBuild: string[] | null;
  Labels: Record<string, string> | null;
  StopSignal: string;
  StopTimeout: number | null;
  Shell: string[] | null;
}

export interface HistoryEntry {
  created: string;
  author?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** The parsed image config JSON (what the image store holds), loosely typed. */
export interface ImageConfigJson {
  architecture?: string;
  author?: string;
  comment?: string;
  config?: Partial<ContainerConfig> | null;
  container?: string;
  container_config?: Partial<ContainerConfig> | null;
  created?: string;
  docker_version?: string;
  history?: HistoryEntry[];
  os?: string;
  'os.features'?: string[];
  'os.version'?: string;
  rootfs?: { type: string; diff_ids?: string[] };
  variant?: string;
  [key: string]: unknown;
}

/** sha256 of a tar holding only the end-of-archive blocks: a step that changed nothing. */
export const EMPTY_LAYER_DIFF_ID = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

export function emptyContainerConfig(): ContainerConfig {
  return {
    Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false,
    ExposedPorts: null, Tty: false, OpenStdin: false, StdinOnce: false, Env: null, Cmd: null,
    Healthcheck: null, ArgsEscaped: false, Image: '', Volumes: null, WorkingDir: '', Entrypoint: null,
    NetworkDisabled: false, MacAddress: '', OnBuild: null, Labels: null, StopSignal: '', StopTimeout: null,
    Shell: null,
  };
}

const strList = (v: unknown): string[] | null => (Array.isArray(v) ? v.map(String) : null);
const objOrNull = <T>(v: unknown): T | null => (typeof v === 'object' && v !== null && !Array.isArray(v) ? ({ ...(v as object) } as T) : null);

/** A stored config's `config` object (any JSON) as a full ContainerConfig. */
export function toContainerConfig(raw: unknown): ContainerConfig {
  const o = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const c = emptyContainerConfig();
  for (const k of ['Hostname', 'Domainname', 'User', 'Image', 'WorkingDir', 'MacAddress', 'StopSignal'] as const) {
    if (typeof o[k] === 'string') c[k] = o[k] as string;
  }
  for (const k of ['AttachStdin', 'AttachStdout', 'AttachStderr', 'Tty', 'OpenStdin', 'StdinOnce', 'ArgsEscaped', 'NetworkDisabled'] as const) {
    c[k] = o[k] === true;
  }
  for (const k of ['Env', 'Cmd', 'Entrypoint', 'OnBuild', 'Shell'] as const) c[k] = strList(o[k]);
  c.ExposedPorts = objOrNull(o.ExposedPorts);
  c.Volumes = objOrNull(o.Volumes);
  c.Labels = objOrNull(o.Labels);
  c.Healthcheck = objOrNull(o.Healthcheck);
  c.StopTimeout = typeof o.StopTimeout === 'number' ? o.StopTimeout : null;
  return c;
}

/** A deep copy (Docker's copyRunConfig): later steps must not alter earlier snapshots. */
export function cloneContainerConfig(c: ContainerConfig): ContainerConfig {
  return {
    ...c,
    ExposedPorts: c.ExposedPorts ? { ...c.ExposedPorts } : null,
    Env: c.Env ? [...c.Env] : null,
    Cmd: c.Cmd ? [...c.Cmd] : null,
    Healthcheck: c.Healthcheck ? { ...c.Healthcheck, ...(c.Healthcheck.Test ? { Test: [...c.Healthcheck.Test] } : {}) } : null,
    Volumes: c.Volumes ? { ...c.Volumes } : null,
    Entrypoint: c.Entrypoint ? [...c.Entrypoint] : null,
    OnBuild: c.OnBuild ? [...c.OnBuild] : null,
    Labels: c.Labels ? { ...c.Labels } : null,
    Shell: c.Shell ? [...c.Shell] : null,
  };
}

function sortedObject<T>(o: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(o).sort()) out[k] = o[k]!;
  return out;
}

/**
 * The JSON object for a container.Config, keys in Go struct order and Go's omitempty rules.
 * Map keys come out sorted, as Go's encoder writes maps.
 */
export function containerConfigJson(c: ContainerConfig): Record<string, unknown> {
  const o: Record<string, unknown> = {
    Hostname: c.Hostname,
    Domainname: c.Domainname,
    User: c.User,
    AttachStdin: c.AttachStdin,
    AttachStdout: c.AttachStdout,
    AttachStderr: c.AttachStderr,
  };
  if (c.ExposedPorts && Object.keys(c.ExposedPorts).length > 0) o.ExposedPorts = sortedObject(c.ExposedPorts);
  o.Tty = c.Tty;
  o.OpenStdin = c.OpenStdin;
  o.StdinOnce = c.StdinOnce;
  o.Env = c.Env;
  o.Cmd = c.Cmd;
  if (c.Healthcheck) o.Healthcheck = healthcheckJson(c.Healthcheck);
  if (c.ArgsEscaped) o.ArgsEscaped = true;
  o.Image = c.Image;
  o.Volumes = c.Volumes ? sortedObject(c.Volumes) : null;
  o.WorkingDir = c.WorkingDir;
  o.Entrypoint = c.Entrypoint;
  if (c.NetworkDisabled) o.NetworkDisabled = true;
  if (c.MacAddress) o.MacAddress = c.MacAddress;
  o.OnBuild = c.OnBuild;
  o.Labels = c.Labels ? sortedObject(c.Labels) : null;
  if (c.StopSignal) o.StopSignal = c.StopSignal;
  if (c.StopTimeout !== null) o.StopTimeout = c.StopTimeout;
  if (c.Shell && c.Shell.length > 0) o.Shell = c.Shell;
  return o;
}

/** HealthConfig with its own omitempty rules (a pointer: present even when all zero). */
function healthcheckJson(h: HealthConfig): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (h.Test && h.Test.length > 0) o.Test = h.Test;
  if (h.Interval) o.Interval = h.Interval;
  if (h.Timeout) o.Timeout = h.Timeout;
  if (h.StartPeriod) o.StartPeriod = h.StartPeriod;
  if (h.Retries) o.Retries = h.Retries;
  return o;
}

export interface ChildImageSpec {
  /** The parent's parsed config, or null for `FROM scratch`. */
  parent: ImageConfigJson | null;
  /** The committed container's ID (metadata and RUN steps); absent for COPY/ADD. */
  containerId?: string;
  author?: string;
  comment?: string;
  /** The layer's diffID; undefined or the empty-tar digest for a step that changed nothing. */
  diffId?: string;
  containerConfig: ContainerConfig;
  config: ContainerConfig;
  /** RFC 3339 with nanoseconds, UTC. */
  created: string;
  dockerVersion: string;
  /** OS of the image; defaults to the parent's, then linux. */
  os?: string;
  /** Architecture used when the parent has none (FROM scratch). */
  defaultArchitecture?: string;
}

/**
 * The child image config object (Docker's NewChildImage), top-level keys sorted. Feed it to
 * `serializeImageConfig` for the bytes whose sha256 is the image ID.
 */
export function childImageConfig(spec: ChildImageSpec): Record<string, unknown> {
  const p = spec.parent;
  const empty = spec.diffId === undefined || spec.diffId === EMPTY_LAYER_DIFF_ID;
  const diffIds = [...(p?.rootfs?.diff_ids ?? [])];
  if (!empty) diffIds.push(spec.diffId!);
  const history: HistoryEntry = { created: spec.created };
  if (spec.author) history.author = spec.author;
  const createdBy = (spec.containerConfig.Cmd ?? []).join(' ');
  if (createdBy) history.created_by = createdBy;
  if (spec.comment) history.comment = spec.comment;
  if (empty) history.empty_layer = true;

  const rootfs: Record<string, unknown> = { type: 'layers' };
  if (diffIds.length > 0) rootfs.diff_ids = diffIds;
  const out: Record<string, unknown> = {
    architecture: p?.architecture || spec.defaultArchitecture || hostArchitecture(),
    config: containerConfigJson(spec.config),
    container_config: containerConfigJson(spec.containerConfig),
    created: spec.created,
    docker_version: spec.dockerVersion,
    history: [...(p?.history ?? []).map(historyJson), historyJson(history)],
    os: spec.os || p?.os || 'linux',
    rootfs,
  };
  if (spec.author) out.author = spec.author;
  if (spec.containerId) out.container = spec.containerId;
  if (p?.variant) out.variant = p.variant;
  if (p?.['os.version']) out['os.version'] = p['os.version'];
  if (p?.['os.features'] && p['os.features'].length > 0) out['os.features'] = p['os.features'];
  return sortedObject(out);
}

/** A history entry re-emitted in Go's field order (parents' entries are re-marshalled too). */
function historyJson(h: HistoryEntry): Record<string, unknown> {
  const o: Record<string, unknown> = { created: h.created };
  if (h.author) o.author = h.author;
  if (h.created_by) o.created_by = h.created_by;
  if (h.comment) o.comment = h.comment;
  if (h.empty_layer) o.empty_layer = true;
  return o;
}

/** Bytes of an image config object as the daemon writes them. */
export function serializeImageConfig(config: Record<string, unknown>): Buffer {
  return Buffer.from(goJson(config), 'utf8');
}

/** Go's GOARCH for the running Node. */
export function hostArchitecture(): string {
  switch (process.arch) {
    case 'x64': return 'amd64';
    case 'ia32': return '386';
    case 'arm64': return 'arm64';
    case 'arm': return 'arm';
    case 'ppc64': return 'ppc64le';
    case 's390x': return 's390x';
    case 'riscv64': return 'riscv64';
    default: return process.arch;
  }
}

export { nowRfc3339Nano } from '../sys/go-time.js';
