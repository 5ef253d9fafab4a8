/**
 * Parsing of the container mount flags, `-v`/`--volume`, `--mount` and `--volumes-from`,
 * with Docker's rules and error strings, and the container-inspect `Mounts` entry.
 *
 * Docker splits this work between its CLI (CSV parsing of `--mount`, making `./x` absolute)
 * and its daemon (`ParseMountRaw`/`ParseMountSpec` validation). A daemonless engine does both
 * in one process; the functions here do both stages, in Docker's order, so the first error a
 * user sees is the one Docker would print:
 *  - errors of the CLI stage of `--mount` carry pflag's wrapper,
 *    `invalid argument "<value>" for "--mount" flag: <reason>`, exactly as the docker CLI
 *    prints them;
 *  - daemon-stage errors are the daemon's text (the docker CLI prefixes them with
 *    `Error response from daemon: `, which is the caller's business).
 *
 * Everything here is pure: the file system is only consulted through the injected
 * `sourceExists` check (Docker verifies `--mount type=bind` sources at create).
 *
 * A deliberate difference: Docker's CLI turns a host path starting with `.` into an absolute
 * one and treats every other relative source as a volume name, so `-v data/x:/x` fails later
 * with a volume-name error. strata gives that same error up front, plus a hint that a path
 * relative to the current directory must be written `./data/x`.
 */
import path from 'node:path';

import { InvalidArgumentError, NotSupportedError } from '../errors.js';
import { cleanPath, parseGoBool, ramInBytes } from './go-compat.js';
import { LOCAL_DRIVER, volumeNameError } from './local-driver.js';

export type MountType = 'bind' | 'volume' | 'tmpfs';

export const PROPAGATION_MODES = ['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared'] as const;
export type Propagation = (typeof PROPAGATION_MODES)[number];
const PROPAGATIONS: ReadonlySet<string> = new Set(PROPAGATION_MODES);
/** Docker's default for binds on Linux. */
export const DEFAULT_PROPAGATION: Propagation = 'rprivate';

const RW_MODES = new Set(['rw', 'ro']);
const LABEL_MODES = new Set(['z', 'Z']);
const COPY_MODES = new Set(['nocopy']);
const CONSISTENCY_MODES = new Set(['consistent', 'cached', 'delegated']);

export interface VolumeMountOptions {
  /** Copy image content at the destination into the volume when it is empty (no `nocopy`). */
  copyData: boolean;
  /** `volume-driver=` of `--mount`; '' means the default (local). */
  driver: string;
  /** `volume-opt=` of `--mount`: driver options for a volume created by this mount. */
  options: Record<string, string> | null;
  /** `volume-label=` of `--mount`: labels for a volume created by this mount. */
  labels: Record<string, string> | null;
  /** `volume-subpath=`: mount only this directory of the volume (relative, validated). */
  subpath: string;
  /**
   * A one-part `-v /ctr`: the docker CLI files it under `Config.Volumes`, like an image
   * `VOLUME`, not under the binds, which is why its inspect Mode is '' instead of 'z'.
   */
  configVolume: boolean;
}

export interface BindMountOptions {
  /** `-v` creates a missing host directory at start; `--mount` refuses a missing source. */
  createHostPath: boolean;
  /** `bind-nonrecursive` / `bind-recursive=disabled`: a plain (not recursive) bind. */
  nonRecursive: boolean;
  /** `bind-recursive=writable`: read-only on the top mount only (Docker 24 behaviour). */
  readOnlyNonRecursive: boolean;
  /** `bind-recursive=readonly`: recursively read-only or fail. */
  readOnlyForceRecursive: boolean;
}

export interface TmpfsMountOptions {
  /** `tmpfs-size=` in bytes; 0 = kernel default. */
  sizeBytes: number;
  /** `tmpfs-mode=` permission bits; 0 = kernel default. */
  mode: number;
}

/** One mount of a container, as parsed and validated from a flag. */
export interface MountSpec {
  origin: 'volume-flag' | 'mount-flag';
  type: MountType;
  /** bind: absolute, cleaned host path; volume: the name, '' for anonymous; tmpfs: ''. */
  source: string;
  /** The target as given (Docker names a duplicate `--mount` target with it, uncleaned). */
  target: string;
  /** The cleaned absolute container path. */
  destination: string;
  readOnly: boolean;
  /** The `-v` mode string verbatim ('' when none, always '' for `--mount`). */
  mode: string;
  /** bind: the explicit propagation or rprivate; otherwise ''. */
  propagation: Propagation | '';
  /** `consistency=` / consistency mode token; accepted and ignored on Linux, as by Docker. */
  consistency: string;
  volume?: VolumeMountOptions;
  bind?: BindMountOptions;
  tmpfs?: TmpfsMountOptions;
}

export interface ParseOptions {
  /** Directory that `./x` sources are relative to (the CLI's working directory). */
  cwd?: string;
  /**
   * Whether a bind source exists (Docker checks `--mount type=bind` sources). Omitted: no
   * existence check is made.
   */
  sourceExists?: (hostPath: string) => boolean;
}

function invalidSpec(raw: string): string {
  return `invalid volume specification: '${raw}'`;
}

/** Docker's validMountMode: known tokens, at most one of each class. */
export function isValidMode(mode: string): boolean {
  if (mode === '') return true;
  const counts = { rw: 0, label: 0, propagation: 0, copy: 0, consistency: 0 };
  for (const o of mode.split(',')) {
    if (RW_MODES.has(o)) counts.rw++;
    else if (LABEL_MODES.has(o)) counts.label++;
    else if (PROPAGATIONS.has(o)) counts.propagation++;
    else if (COPY_MODES.has(o)) counts.copy++;
    else if (CONSISTENCY_MODES.has(o)) counts.consistency++;
    else return false;
  }
  return Object.values(counts).every((n) => n <= 1);
}

/** Docker's ReadWrite(mode): valid and without `ro`. */
export function isReadWriteMode(mode: string): boolean {
  return isValidMode(mode) && !mode.split(',').includes('ro');
}

function modePropagation(mode: string): Propagation | undefined {
  return mode.split(',').find((o): o is Propagation => PROPAGATIONS.has(o));
}

/** A `ParseMountRaw`/`ParseMountSpec` validation failure: `invalid mount config for type "<t>": <e>`. */
function mountConfigError(type: string, problem: string): string {
  return `invalid mount config for type ${JSON.stringify(type)}: ${problem}`;
}

/** The daemon-side checks shared by `-v` and `--mount` (Docker's validateMountConfig). */
interface RawMount {
  type: string;
  source: string;
  target: string;
  hasVolumeOptions: boolean;
  hasBindOptions: boolean;
  hasTmpfsOptions: boolean;
  propagation: string;
  subpath: string;
}

function validateMountConfig(m: RawMount, sourceExists: ((p: string) => boolean) | undefined): string | undefined {
  if (m.target === '') return mountConfigError(m.type, 'field Target must not be empty');
  if (cleanPath(m.target) === '/') return mountConfigError(m.type, "invalid specification: destination can't be '/'");
  if (!m.target.startsWith('/')) return mountConfigError(m.type, `invalid mount path: '${m.target}' mount path must be absolute`);
  switch (m.type) {
    case 'bind':
      if (m.source === '') return mountConfigError(m.type, 'field Source must not be empty');
      if (m.propagation !== '' && !PROPAGATIONS.has(m.propagation)) {
        return mountConfigError(m.type, `invalid propagation mode: ${m.propagation}`);
      }
      if (m.hasVolumeOptions) return mountConfigError(m.type, 'field VolumeOptions must not be specified');
      if (m.hasTmpfsOptions) return mountConfigError(m.type, 'field TmpfsOptions must not be specified');
      if (!m.source.startsWith('/')) return mountConfigError(m.type, `invalid mount path: '${m.source}' mount path must be absolute`);
      if (sourceExists && !sourceExists(m.source)) return mountConfigError(m.type, `bind source path does not exist: ${m.source}`);
      return undefined;
    case 'volume':
      if (m.hasBindOptions) return mountConfigError(m.type, 'field BindOptions must not be specified');
      if (m.hasTmpfsOptions) return mountConfigError(m.type, 'field TmpfsOptions must not be specified');
      if (m.subpath !== '') {
        if (m.source === '') return mountConfigError(m.type, 'must not set Subpath when using anonymous volumes');
        if (!isLocalPath(m.subpath)) return mountConfigError(m.type, 'subpath must be a relative path within the volume');
      }
      return undefined;
    case 'tmpfs':
      if (m.hasBindOptions) return mountConfigError(m.type, 'field BindOptions must not be specified');
      if (m.hasVolumeOptions) return mountConfigError(m.type, 'field VolumeOptions must not be specified');
      if (m.source !== '') return mountConfigError(m.type, 'field Source must not be specified');
      return undefined;
    default:
      return mountConfigError(m.type, 'mount type unknown');
  }
}

/** Go's filepath.IsLocal on Linux: relative, non-empty, and never climbing above itself. */
function isLocalPath(p: string): boolean {
  if (p === '' || p.startsWith('/')) return false;
  const clean = cleanPath(p);
  return clean !== '..' && !clean.startsWith('../');
}

/** A volume name error with strata's hint when the name looks like a relative path. */
function volumeNameProblem(name: string): string | undefined {
  const problem = volumeNameError(name);
  if (problem === undefined) return undefined;
  let message = `create ${name}: ${problem}`;
  if (name.includes('/')) {
    message += `\nhint: a volume name cannot contain '/'; for a host path relative to the current directory write ./${name}`;
  }
  return message;
}

/**
 * Parses one `-v`/`--volume` value: `/ctr` (anonymous volume), `name:/ctr[:mode]` (named
 * volume), `/host:/ctr[:mode]` (bind) where mode is comma-separated `ro|rw`, `z|Z`,
 * a propagation, `nocopy`, and a consistency, at most one of each.
 *
 * A host path starting with `.` is made absolute against `options.cwd` first, as the docker
 * CLI does. Throws InvalidArgumentError with Docker's message.
 */
export function parseVolumeFlag(raw: string, options: ParseOptions = {}): MountSpec {
  const cwd = options.cwd ?? process.cwd();
  let spec = raw;
  // The CLI's client-side step: `./x:/y` and `../x:/y` name host paths relative to the
  // caller's working directory, which the (possibly remote) daemon cannot know.
  const firstColon = raw.indexOf(':');
  if (firstColon > 0 && raw.startsWith('.')) {
    spec = path.resolve(cwd, raw.slice(0, firstColon)) + raw.slice(firstColon);
  }

  const parts = splitN(spec, ':', 4);
  if (parts[0] === '') throw new InvalidArgumentError(invalidSpec(spec));
  let source = '';
  let target: string;
  let mode = '';
  switch (parts.length) {
    case 1:
      target = parts[0]!;
      break;
    case 2:
      // `/foo:rw` is a destination with a mode, which a volume cannot have.
      if (isValidMode(parts[1]!)) throw new InvalidArgumentError(invalidSpec(spec));
      source = parts[0]!;
      target = parts[1]!;
      break;
    case 3:
      [source, target, mode] = parts as [string, string, string];
      break;
    default:
      throw new InvalidArgumentError(invalidSpec(spec));
  }
  if (!isValidMode(mode)) throw new InvalidArgumentError(`invalid mode: ${mode}`);

  const type: MountType = source.startsWith('/') ? 'bind' : 'volume';
  const tokens = mode === '' ? [] : mode.split(',');
  const noCopy = tokens.includes('nocopy');
  const propagation = modePropagation(mode);
  const problem = validateMountConfig(
    {
      type,
      source,
      target,
      hasVolumeOptions: noCopy,
      hasBindOptions: propagation !== undefined,
      hasTmpfsOptions: false,
      propagation: propagation ?? '',
      subpath: '',
    },
    undefined,
  );
  if (problem !== undefined) throw new InvalidArgumentError(`${invalidSpec(spec)}: ${problem}`);

  if (type === 'volume' && source !== '') {
    const nameProblem = volumeNameProblem(source);
    if (nameProblem !== undefined) throw new InvalidArgumentError(nameProblem);
  }

  const base = {
    origin: 'volume-flag' as const,
    target,
    destination: cleanPath(target),
    readOnly: !isReadWriteMode(mode),
    mode,
    consistency: tokens.find((t) => CONSISTENCY_MODES.has(t)) ?? '',
  };
  if (type === 'bind') {
    return {
      ...base,
      type,
      source: cleanPath(source),
      propagation: propagation ?? DEFAULT_PROPAGATION,
      bind: { createHostPath: true, nonRecursive: false, readOnlyNonRecursive: false, readOnlyForceRecursive: false },
    };
  }
  return {
    ...base,
    type,
    source,
    propagation: '',
    volume: {
      copyData: !noCopy,
      driver: '',
      options: null,
      labels: null,
      subpath: '',
      configVolume: parts.length === 1,
    },
  };
}

/** Go's strings.SplitN: at most `n` parts, the last holding the rest. */
function splitN(s: string, sep: string, n: number): string[] {
  const out: string[] = [];
  let rest = s;
  while (out.length < n - 1) {
    const i = rest.indexOf(sep);
    if (i < 0) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + sep.length);
  }
  out.push(rest);
  return out;
}

/**
 * Reads one CSV record as Go's encoding/csv does with default settings (the docker CLI reads
 * `--mount` values this way, so `"volume-opt=o=addr=1,vers=4"` can hold commas).
 */
export function readCsvRecord(line: string): string[] {
  if (line === '') throw new Error('EOF');
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new Error(`parse error on line 1, column ${line.length + 1}: extraneous or missing " in quoted-field`);
        field += line.slice(i, q);
        i = q + 1;
        if (line[i] === '"') {
          field += '"';
          i++;
          continue;
        }
        if (i < line.length && line[i] !== ',') {
          // Go reports the 1-based column of the offending quote, which is `i` here.
          throw new Error(`parse error on line 1, column ${i}: extraneous or missing " in quoted-field`);
        }
        break;
      }
    } else {
      const comma = line.indexOf(',', i);
      const end = comma < 0 ? line.length : comma;
      field = line.slice(i, end);
      const quote = field.indexOf('"');
      if (quote >= 0) throw new Error(`parse error on line 1, column ${i + quote + 1}: bare " in non-quoted field`);
      i = end;
    }
    fields.push(field);
    if (i >= line.length) return fields;
    i++; // the comma
    if (i === line.length) {
      fields.push('');
      return fields;
    }
  }
}

/** Sets `k=v` of `value` on `map` (an empty key is ignored), as the docker CLI does. */
function setKeyValue(map: Record<string, string>, value: string): void {
  const eq = value.indexOf('=');
  const key = eq < 0 ? value : value.slice(0, eq);
  if (key !== '') map[key] = eq < 0 ? '' : value.slice(eq + 1);
}

/**
 * Parses one `--mount` value: comma-separated `type=bind|volume|tmpfs` (default volume),
 * `source|src=`, `target|dst|destination=`, `readonly|ro[=bool]`, `consistency=`,
 * `bind-propagation=`, `bind-nonrecursive[=bool]`, `bind-recursive=`, `volume-nocopy[=bool]`,
 * `volume-label=k=v`, `volume-driver=`, `volume-opt=k=v`, `volume-subpath=`, `tmpfs-size=`,
 * `tmpfs-mode=` (octal). Validates like Docker's CLI then daemon; `options.sourceExists`
 * checks bind sources. Throws InvalidArgumentError with Docker's message.
 */
export function parseMountFlag(value: string, options: ParseOptions = {}): MountSpec {
  const cwd = options.cwd ?? process.cwd();
  const flagError = (reason: string): InvalidArgumentError =>
    new InvalidArgumentError(`invalid argument ${JSON.stringify(value)} for "--mount" flag: ${reason}`);

  let fields: string[];
  try {
    fields = readCsvRecord(value);
  } catch (err) {
    throw flagError((err as Error).message);
  }

  let type = 'volume';
  let source = '';
  let target = '';
  let readOnly = false;
  let consistency = '';
  let volumeOpts: { noCopy: boolean; driver: string; labels: Record<string, string>; options: Record<string, string> | null; subpath: string } | undefined;
  let bindOpts: { propagation: string; nonRecursive: boolean; readOnlyNonRecursive: boolean; readOnlyForceRecursive: boolean } | undefined;
  let tmpfsOpts: { sizeBytes: number; mode: number } | undefined;
  const volume = () => (volumeOpts ??= { noCopy: false, driver: '', labels: {}, options: null, subpath: '' });
  const bind = () => (bindOpts ??= { propagation: '', nonRecursive: false, readOnlyNonRecursive: false, readOnlyForceRecursive: false });
  const tmpfs = () => (tmpfsOpts ??= { sizeBytes: 0, mode: 0 });
  const bool = (key: string, val: string, message = `invalid value for ${key}: ${val}`): boolean => {
    const b = parseGoBool(val);
    if (b === undefined) throw flagError(message);
    return b;
  };

  for (const field of fields) {
    const eq = field.indexOf('=');
    // The CLI matches keys case-insensitively (values stay as given).
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const val = eq < 0 ? '' : field.slice(eq + 1);
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro') readOnly = true;
      else if (key === 'volume-nocopy') volume().noCopy = true;
      else if (key === 'bind-nonrecursive') bind().nonRecursive = true;
      else throw flagError(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    switch (key) {
      case 'type':
        type = val.toLowerCase();
        break;
      case 'source':
      case 'src':
        source = val === '.' || val.startsWith('./') ? path.resolve(cwd, val) : val;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        target = val;
        break;
      case 'readonly':
      case 'ro':
        readOnly = bool(key, val);
        break;
      case 'consistency':
        consistency = val.toLowerCase();
        break;
      case 'bind-propagation':
        bind().propagation = val.toLowerCase();
        break;
      case 'bind-nonrecursive':
        bind().nonRecursive = bool(key, val);
        break;
      case 'bind-recursive':
        switch (val) {
          case 'enabled':
            bind();
            break;
          case 'disabled':
            bind().nonRecursive = true;
            break;
          case 'writable':
            bind().readOnlyNonRecursive = true;
            break;
          case 'readonly':
            bind().readOnlyForceRecursive = true;
            break;
          default:
            throw flagError(`invalid value for ${key}: ${val} (must be "enabled", "disabled", "writable", or "readonly")`);
        }
        break;
      case 'volume-nocopy':
        volume().noCopy = bool(key, val, `invalid value for volume-nocopy: ${val}`);
        break;
      case 'volume-label':
        setKeyValue(volume().labels, val);
        break;
      case 'volume-driver':
        volume().driver = val;
        break;
      case 'volume-opt':
        setKeyValue((volume().options ??= {}), val);
        break;
      case 'volume-subpath':
        volume().subpath = val;
        break;
      case 'tmpfs-size':
        try {
          tmpfs().sizeBytes = ramInBytes(val);
        } catch {
          throw flagError(`invalid value for ${key}: ${val}`);
        }
        break;
      case 'tmpfs-mode': {
        if (!/^[0-7]+$/.test(val) || parseInt(val, 8) > 0xffffffff) throw flagError(`invalid value for ${key}: ${val}`);
        tmpfs().mode = parseInt(val, 8);
        break;
      }
      case 'image-subpath':
        throw new NotSupportedError(`--mount type=image (image-subpath) is not supported by strata`);
      default:
        throw flagError(`unexpected key '${key}' in '${field}'`);
    }
  }

  if (type === '') throw flagError('type is required');
  if (target === '') throw flagError('target is required');
  if (volumeOpts && type !== 'volume') throw flagError(`cannot mix 'volume-*' options with mount type '${type}'`);
  if (bindOpts && type !== 'bind') throw flagError(`cannot mix 'bind-*' options with mount type '${type}'`);
  if (tmpfsOpts && type !== 'tmpfs') throw flagError(`cannot mix 'tmpfs-*' options with mount type '${type}'`);
  if (bindOpts?.readOnlyNonRecursive && !readOnly) {
    throw flagError("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction");
  }
  if (bindOpts?.readOnlyForceRecursive) {
    if (!readOnly) throw flagError("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction");
    if (bindOpts.propagation !== 'rprivate') {
      throw flagError("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction");
    }
  }
  if (type === 'image') throw new NotSupportedError('--mount type=image is not supported by strata');

  // Daemon stage (ParseMountSpec), which does check that a bind source exists.
  const problem = validateMountConfig(
    {
      type,
      source,
      target,
      hasVolumeOptions: volumeOpts !== undefined,
      hasBindOptions: bindOpts !== undefined,
      hasTmpfsOptions: tmpfsOpts !== undefined,
      propagation: bindOpts?.propagation ?? '',
      subpath: volumeOpts?.subpath ?? '',
    },
    options.sourceExists,
  );
  if (problem !== undefined) throw new InvalidArgumentError(problem);

  const base = { origin: 'mount-flag' as const, target, destination: cleanPath(target), readOnly, mode: '', consistency };
  switch (type) {
    case 'bind':
      return {
        ...base,
        type,
        source: cleanPath(source),
        propagation: (bindOpts?.propagation || DEFAULT_PROPAGATION) as Propagation,
        bind: {
          createHostPath: false,
          nonRecursive: bindOpts?.nonRecursive ?? false,
          readOnlyNonRecursive: bindOpts?.readOnlyNonRecursive ?? false,
          readOnlyForceRecursive: bindOpts?.readOnlyForceRecursive ?? false,
        },
      };
    case 'volume': {
      if (source !== '') {
        const nameProblem = volumeNameProblem(source);
        if (nameProblem !== undefined) throw new InvalidArgumentError(nameProblem);
      }
      // The API drops empty maps (omitempty), so an empty label or option set reaches
      // volume creation as null, which is what inspect then shows.
      const labels = volumeOpts && Object.keys(volumeOpts.labels).length > 0 ? volumeOpts.labels : null;
      const opts = volumeOpts?.options && Object.keys(volumeOpts.options).length > 0 ? volumeOpts.options : null;
      return {
        ...base,
        type,
        source,
        propagation: '',
        volume: {
          copyData: !(volumeOpts?.noCopy ?? false),
          driver: volumeOpts?.driver ?? '',
          options: opts,
          labels,
          subpath: volumeOpts?.subpath ?? '',
          configVolume: false,
        },
      };
    }
    default:
      return {
        ...base,
        type: 'tmpfs',
        source: '',
        propagation: '',
        tmpfs: { sizeBytes: tmpfsOpts?.sizeBytes ?? 0, mode: tmpfsOpts?.mode ?? 0 },
      };
  }
}

/**
 * The data string for a tmpfs mount from `--mount type=tmpfs` (Docker's
 * ConvertTmpfsOptions): `ro`, `mode=<octal>`, `size=<n>[kmg]` using the largest unit that
 * divides the size.
 */
export function tmpfsMountOptions(spec: MountSpec): string {
  const out: string[] = [];
  if (spec.readOnly) out.push('ro');
  const t = spec.tmpfs;
  if (t && t.mode !== 0) out.push(`mode=${t.mode.toString(8)}`);
  if (t && t.sizeBytes !== 0) {
    let size = t.sizeBytes;
    let suffix = '';
    for (const [s, div] of [['g', 2 ** 30], ['m', 2 ** 20], ['k', 2 ** 10]] as const) {
      if (size % div === 0) {
        size /= div;
        suffix = s;
        break;
      }
    }
    out.push(`size=${size}${suffix}`);
  }
  return out.join(',');
}

export interface VolumesFromSpec {
  /** Container name or id as given. */
  container: string;
  /** `rw` when omitted. */
  mode: string;
  /** Whether the copies may be writable (they are only if the source mount is too). */
  readWrite: boolean;
}

/**
 * Parses one `--volumes-from` value, `container[:mode]`. Only rw/ro-like modes are allowed:
 * propagation and `nocopy` are refused with `invalid mode: <mode>`, as by Docker.
 */
export function parseVolumesFrom(spec: string): VolumesFromSpec {
  if (spec === '') throw new InvalidArgumentError('volumes-from specification cannot be an empty string');
  const colon = spec.indexOf(':');
  const container = colon < 0 ? spec : spec.slice(0, colon);
  const mode = colon < 0 ? '' : spec.slice(colon + 1);
  if (mode === '') return { container, mode: 'rw', readWrite: true };
  if (!isValidMode(mode) || modePropagation(mode) !== undefined || mode.split(',').includes('nocopy')) {
    throw new InvalidArgumentError(`invalid mode: ${mode}`);
  }
  return { container, mode, readWrite: isReadWriteMode(mode) };
}

/**
 * Refuses two mounts on one destination, as Docker's create does: a `-v` destination already
 * used by an earlier `-v` or a `--tmpfs`, a `--mount` destination already used by a `-v` or
 * an earlier `--mount`. `tmpfs` holds the `--tmpfs` keys (the path before any `:`).
 * `--volumes-from` and image volumes are overridden instead, so they are not passed here.
 */
export function assertNoDuplicateMounts(mounts: { volumeFlags?: readonly MountSpec[]; tmpfs?: readonly string[]; mountFlags?: readonly MountSpec[] }): void {
  const tmpfs = new Set(mounts.tmpfs ?? []);
  const taken = new Set<string>();
  for (const m of mounts.volumeFlags ?? []) {
    if (taken.has(m.destination) || tmpfs.has(m.destination)) {
      throw new InvalidArgumentError(`Duplicate mount point: ${m.destination}`);
    }
    taken.add(m.destination);
  }
  for (const m of mounts.mountFlags ?? []) {
    if (taken.has(m.destination)) throw new InvalidArgumentError(`Duplicate mount point: ${m.target}`);
    taken.add(m.destination);
  }
}

/**
 * A container mount point as Docker records and reports it (the fields of `Mounts` in
 * container inspect). `Source` is the volume's `_data` path for volumes, the host path for
 * binds and '' for tmpfs.
 */
export interface MountPoint {
  Type: MountType;
  Name: string;
  Source: string;
  Destination: string;
  Driver: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
}

/** The volume a volume mount resolved to (created or found by the volume service). */
export interface ResolvedVolume {
  name: string;
  /** The volume's `_data` path. */
  mountpoint: string;
  driver: string;
}

/**
 * The mount point for a parsed flag. Volume mounts need the volume they resolved to. Mode
 * follows Docker: the raw `-v` mode; 'z' for a local-driver volume given without one (its
 * SELinux relabel default); '' for one-part `-v /ctr`, `--mount` binds and tmpfs.
 */
export function mountPointFor(spec: MountSpec, volume?: ResolvedVolume): MountPoint {
  const RW = !spec.readOnly;
  switch (spec.type) {
    case 'bind':
      return { Type: 'bind', Name: '', Source: spec.source, Destination: spec.destination, Driver: '', Mode: spec.mode, RW, Propagation: spec.propagation };
    case 'tmpfs':
      return { Type: 'tmpfs', Name: '', Source: '', Destination: spec.destination, Driver: '', Mode: '', RW, Propagation: '' };
    case 'volume': {
      if (!volume) throw new InvalidArgumentError(`mount point for ${spec.destination} needs its resolved volume`);
      let mode = spec.mode;
      if (spec.volume?.configVolume) mode = '';
      else if (mode === '' && volume.driver === LOCAL_DRIVER) mode = 'z';
      return { Type: 'volume', Name: volume.name, Source: volume.mountpoint, Destination: spec.destination, Driver: volume.driver, Mode: mode, RW, Propagation: '' };
    }
  }
}

/** The mount point an image `VOLUME` (or any anonymous config volume) gets: Mode ''. */
export function imageVolumeMountPoint(destination: string, volume: ResolvedVolume): MountPoint {
  return { Type: 'volume', Name: volume.name, Source: volume.mountpoint, Destination: cleanPath(destination), Driver: volume.driver, Mode: '', RW: true, Propagation: '' };
}

/**
 * The copy `--volumes-from` makes of a source container's mount point: everything but the
 * Mode, writable only if both the source mount and the requested mode are.
 */
export function volumesFromMountPoint(source: MountPoint, from: VolumesFromSpec): MountPoint {
  return { ...source, Mode: '', RW: source.RW && from.readWrite };
}

/** A `Mounts` entry of container inspect, Docker's key order and omitempty rules. */
export interface MountPointJSON {
  Type?: string;
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
}

/**
 * The container-inspect `Mounts` entry for `mp`, keys in Docker's order (Type, Name, Source,
 * Destination, Driver, Mode, RW, Propagation); Type, Name and Driver are left out when empty,
 * as Go's omitempty does.
 */
export function mountPointJSON(mp: MountPoint): MountPointJSON {
  const out: MountPointJSON = {} as MountPointJSON;
  if (mp.Type) out.Type = mp.Type;
  if (mp.Name) out.Name = mp.Name;
  out.Source = mp.Source;
  out.Destination = mp.Destination;
  if (mp.Driver) out.Driver = mp.Driver;
  out.Mode = mp.Mode;
  out.RW = mp.RW;
  out.Propagation = mp.Propagation;
  return out;
}
