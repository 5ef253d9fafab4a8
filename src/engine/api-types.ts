/**
 * The shapes Docker's Engine API (1.41, Docker 20.10) gives images — summaries, inspect,
 * history, delete records — and the conversions from a stored config into them. Field order
 * is Docker's (Go struct order), so `goJson` of these objects is byte-compatible with the
 * daemon's JSON; map-valued fields are built with Go's sorted key order.
 */
import { sortedKeys } from '../transfer/go-json.js';

/** Go's zero `time.Time`, as Docker prints a missing `created`. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';
/** `time.Time{}.Unix()`. */
export const ZERO_TIME_UNIX = -62135596800;

const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

export interface GoTime {
  /** Seconds since the epoch (floor). */
  unix: number;
  /** Go's `Format(time.RFC3339Nano)` of the parsed time (zone kept, fraction trimmed). */
  text: string;
}

/** Parses an RFC 3339 timestamp as Go's encoding/json does; undefined when it is not one. */
export function parseGoTime(value: unknown): GoTime | undefined {
  if (typeof value !== 'string') return undefined;
  const m = RFC3339_RE.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = '', zone] = m;
  const offsetMin = /^[Zz]$/.test(zone!) ? 0 : (zone!.startsWith('-') ? -1 : 1) * (Number(zone!.slice(1, 3)) * 60 + Number(zone!.slice(4, 6)));
  const utc = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(utc)) return undefined;
  const unix = Math.floor(utc / 1000) - offsetMin * 60;
  const fraction = frac.slice(0, 9).replace(/0+$/, '');
  const zoneText = offsetMin === 0 ? 'Z' : zone!;
  return { unix, text: `${y}-${mo}-${d}T${h}:${mi}:${s}${fraction ? `.${fraction}` : ''}${zoneText}` };
}

export { nowRfc3339Nano } from '../sys/go-time.js';

// ---------------------------------------------------------------------------------------------
// container.Config (API 1.41 field order)

export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
}

export interface ContainerConfig {
  Hostname: string;
  Domainname: string;
  User: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  ExposedPorts?: Record<string, Record<string, never>>;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  Env: string[] | null;
  Cmd: string[] | null;
  Healthcheck?: HealthConfig;
  ArgsEscaped?: boolean;
  Image: string;
  Volumes: Record<string, Record<string, never>> | null;
  WorkingDir: string;
  Entrypoint: string[] | null;
  NetworkDisabled?: boolean;
  MacAddress?: string;
  OnBuild: string[] | null;
  Labels: Record<string, string> | null;
  StopSignal?: string;
  StopTimeout?: number;
  Shell?: string[];
}

/** Go's encoding/json matches field names case-insensitively when no exact match exists. */
function field(obj: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(obj, name)) return obj[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(obj)) if (k.toLowerCase() === lower) return obj[k];
  return undefined;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const bool = (v: unknown): boolean => v === true;
const strings = (v: unknown): string[] | null => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : null);
/** Docker's StrSlice: a JSON string is a one-element list. */
const strSlice = (v: unknown): string[] | null => (typeof v === 'string' ? [v] : strings(v));
const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : undefined);

function set(v: unknown): Record<string, Record<string, never>> | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const out: Record<string, Record<string, never>> = {};
  for (const k of Object.keys(v)) out[k] = {};
  return sortedKeys(out);
}

function labels(v: unknown): Record<string, string> | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) out[k] = typeof x === 'string' ? x : '';
  return sortedKeys(out);
}

/** A new all-zero container.Config (what `&container.Config{}` marshals to). */
export function emptyContainerConfig(): ContainerConfig {
  return {
    Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false,
    Tty: false, OpenStdin: false, StdinOnce: false, Env: null, Cmd: null, Image: '', Volumes: null,
    WorkingDir: '', Entrypoint: null, OnBuild: null, Labels: null,
  };
}

/**
 * A stored config's `config` / `container_config` object as Docker's container.Config:
 * known fields only, in struct order, `omitempty` fields dropped when empty.
 */
export function toContainerConfig(raw: unknown): ContainerConfig {
  const o = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  // Built field by field so the keys come out in Go's struct order.
  const c = {
    Hostname: str(field(o, 'Hostname')),
    Domainname: str(field(o, 'Domainname')),
    User: str(field(o, 'User')),
    AttachStdin: bool(field(o, 'AttachStdin')),
    AttachStdout: bool(field(o, 'AttachStdout')),
    AttachStderr: bool(field(o, 'AttachStderr')),
  } as ContainerConfig;
  const ports = set(field(o, 'ExposedPorts'));
  if (ports && Object.keys(ports).length > 0) c.ExposedPorts = ports;
  c.Tty = bool(field(o, 'Tty'));
  c.OpenStdin = bool(field(o, 'OpenStdin'));
  c.StdinOnce = bool(field(o, 'StdinOnce'));
  c.Env = strings(field(o, 'Env'));
  c.Cmd = strSlice(field(o, 'Cmd'));
  const hc = field(o, 'Healthcheck');
  if (typeof hc === 'object' && hc !== null && !Array.isArray(hc)) {
    const h = hc as Record<string, unknown>;
    const out: HealthConfig = {};
    const test = strings(field(h, 'Test'));
    if (test && test.length > 0) out.Test = test;
    for (const k of ['Interval', 'Timeout', 'StartPeriod', 'Retries'] as const) {
      const n = int(field(h, k));
      if (n) out[k] = n;
    }
    c.Healthcheck = out;
  }
  if (bool(field(o, 'ArgsEscaped'))) c.ArgsEscaped = true;
  c.Image = str(field(o, 'Image'));
  c.Volumes = set(field(o, 'Volumes'));
  c.WorkingDir = str(field(o, 'WorkingDir'));
  c.Entrypoint = strSlice(field(o, 'Entrypoint'));
  if (bool(field(o, 'NetworkDisabled'))) c.NetworkDisabled = true;
  const mac = str(field(o, 'MacAddress'));
  if (mac) c.MacAddress = mac;
  c.OnBuild = strings(field(o, 'OnBuild'));
  c.Labels = labels(field(o, 'Labels'));
  const stopSignal = str(field(o, 'StopSignal'));
  if (stopSignal) c.StopSignal = stopSignal;
  const stopTimeout = field(o, 'StopTimeout');
  if (typeof stopTimeout === 'number') c.StopTimeout = Math.trunc(stopTimeout);
  const shell = strSlice(field(o, 'Shell'));
  if (shell && shell.length > 0) c.Shell = shell;
  return c;
}

// ---------------------------------------------------------------------------------------------
// API objects

/** `docker image inspect` (API 1.41 ImageInspect), keys in Docker's order. */
export interface ImageInspect {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Parent: string;
  Comment: string;
  Created: string;
  Container: string;
  ContainerConfig: ContainerConfig;
  DockerVersion: string;
  Author: string;
  Config: ContainerConfig | null;
  Architecture: string;
  Variant?: string;
  Os: string;
  OsVersion?: string;
  Size: number;
  VirtualSize: number;
  GraphDriver: { Data: Record<string, string> | null; Name: string };
  RootFS: { Type: string; Layers?: string[] };
  Metadata: { LastTagTime: string };
}

/** One `docker images` entry (API ImageSummary). */
export interface ImageSummary {
  Containers: number;
  Created: number;
  Id: string;
  Labels: Record<string, string> | null;
  ParentId: string;
  RepoDigests: string[];
  RepoTags: string[];
  SharedSize: number;
  Size: number;
  VirtualSize: number;
}

/** One `docker history` entry (API HistoryResponseItem). */
export interface HistoryItem {
  Comment: string;
  Created: number;
  CreatedBy: string;
  Id: string;
  Size: number;
  Tags: string[] | null;
}

/** One record of `docker rmi` / prune output. */
export type DeleteRecord = { Untagged: string } | { Deleted: string };

export interface PruneReport {
  ImagesDeleted: DeleteRecord[] | null;
  SpaceReclaimed: number;
}

export { goJson } from '../transfer/go-json.js';
