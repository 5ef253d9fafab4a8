/**
 * The `local` volume driver's rules, as Docker's local driver applies them: which names are
 * valid, which options are accepted (`type`, `o`, `device`, `size`), what `opts.json`
 * holds, and how a volume with options is mounted on its `_data` directory.
 *
 * Only rules and the single mount/unmount syscalls live here; bookkeeping (who uses a
 * mount, when to mount) belongs to the service, which persists it on disk.
 */
import { isIPv4 } from 'node:net';

import { InvalidArgumentError, StrataError } from '../errors.js';
import { mountAll, unmount } from '../sys/mount.js';
import { ramInBytes } from './go-compat.js';

/** The only driver strata has. Plugins are not supported. */
export const LOCAL_DRIVER = 'local';

/** Label Docker (23+) puts on volumes created without a name. */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

/** Docker's restricted name pattern (`daemon/names`), also used for container names. */
export const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const VOLUME_NAME_CHARS = '[a-zA-Z0-9][a-zA-Z0-9_.-]';

/** Docker's complaint about `name`, or undefined when it is a valid local volume name. */
export function volumeNameError(name: string): string | undefined {
  if (name.length === 1) return 'volume name is too short, names should be at least two alphanumeric characters';
  if (!VOLUME_NAME_RE.test(name)) {
    return (
      `${JSON.stringify(name)} includes invalid characters for a local volume name, only ` +
      `${JSON.stringify(VOLUME_NAME_CHARS)} are allowed. If you intended to pass a host directory, use absolute path`
    );
  }
  return undefined;
}

const VALID_OPTIONS = new Set(['type', 'o', 'device', 'size']);
/** Options that make no sense alone, and what each needs (Docker's mandatoryOpts). */
const REQUIRED_WITH: ReadonlyArray<[string, string[]]> = [
  ['device', ['type']],
  ['type', ['device']],
  ['o', ['device', 'type']],
];

/**
 * Checks driver options like Docker's local driver and returns Docker's message for the
 * first problem, or undefined. `size` needs XFS project quotas, which strata does not
 * manage, so any non-zero size is refused as Docker refuses it on a filesystem without them.
 */
export function optionsError(options: Readonly<Record<string, string>> | null | undefined): string | undefined {
  if (!options || Object.keys(options).length === 0) return undefined;
  for (const key of Object.keys(options)) {
    if (!VALID_OPTIONS.has(key)) return `invalid option: ${JSON.stringify(key)}`;
  }
  const type = options['type'];
  const device = options['device'];
  if (type === 'cifs' && device) {
    let port = '';
    try {
      // Devices are usually scheme-relative (`//server/share`), which WHATWG URL parsing
      // only accepts against a base; Go's url.Parse takes them as they are.
      port = new URL(device, 'cifs://base/').port;
    } catch {
      return `error parsing mount device url: parse ${JSON.stringify(device)}: invalid URL`;
    }
    if (port !== '') return "port not allowed in CIFS device URL, include 'port' in 'o='";
  }
  if (options['size'] !== undefined) {
    let size: number;
    try {
      size = ramInBytes(options['size']);
    } catch (err) {
      return (err as Error).message;
    }
    if (size > 0) return 'quota size requested but no quota support';
  }
  for (const [key, needs] of REQUIRED_WITH) {
    if (options[key] === undefined) continue;
    for (const need of needs) {
      if (options[need] === undefined) return `missing required option: ${JSON.stringify(need)}`;
    }
  }
  return undefined;
}

/** Docker's `optsConfig`, the content of `volumes/<name>/opts.json`, in Go field order. */
export interface OptsConfig {
  MountType: string;
  MountOpts: string;
  MountDevice: string;
  Quota: { Size: number };
}

/** The opts.json record for validated options, or undefined when Docker writes none. */
export function optsConfig(options: Readonly<Record<string, string>> | null | undefined): OptsConfig | undefined {
  if (!options || Object.keys(options).length === 0) return undefined;
  return {
    MountType: options['type'] ?? '',
    MountOpts: options['o'] ?? '',
    MountDevice: options['device'] ?? '',
    Quota: { Size: options['size'] !== undefined ? ramInBytes(options['size']) : 0 },
  };
}

/** Options as recorded in opts.json, for volumes whose strata metadata is missing. */
export function optionsFromOptsConfig(cfg: OptsConfig): Record<string, string> {
  const out: Record<string, string> = {};
  if (cfg.MountType) out['type'] = cfg.MountType;
  if (cfg.MountOpts) out['o'] = cfg.MountOpts;
  if (cfg.MountDevice) out['device'] = cfg.MountDevice;
  if (cfg.Quota?.Size) out['size'] = String(cfg.Quota.Size);
  return out;
}

/** Whether the volume's `_data` gets something mounted on it (Docker's needsMount). */
export function needsMount(cfg: OptsConfig | undefined): boolean {
  return cfg !== undefined && (cfg.MountType !== '' || cfg.MountDevice !== '');
}

function optionValue(opts: string, key: string): string {
  for (const opt of opts.split(',')) if (opt.startsWith(`${key}=`)) return opt.slice(key.length + 1);
  return '';
}

/**
 * Mounts `cfg.MountDevice` on `target` with `cfg.MountType` and the comma-separated
 * `MountOpts`, which may mix flags (`bind`, `ro`, `nosuid`...) and filesystem data, like
 * Docker's mount.Mount. For nfs and cifs a host name in `addr=` is resolved first, because
 * the kernel client only takes addresses. A password in the options is masked in errors.
 */
export async function mountLocalVolume(cfg: OptsConfig, target: string): Promise<void> {
  if (cfg.MountDevice === '') throw new StrataError('ERR_SYSTEM', 'missing device in volume options');
  let opts = cfg.MountOpts;
  if (cfg.MountType === 'nfs' || cfg.MountType === 'cifs') {
    const addr = optionValue(opts, 'addr');
    if (addr !== '' && !isIPv4(addr)) {
      try {
        // Loaded here: only NFS volumes name hosts, and node:dns costs every command start-up.
        const { lookup } = await import('node:dns/promises');
        const { address } = await lookup(addr);
        opts = opts.replace(`addr=${addr}`, `addr=${address}`);
      } catch (err) {
        throw new StrataError('ERR_SYSTEM', `error resolving passed in network volume address: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  try {
    await mountAll([{ type: cfg.MountType, source: cfg.MountDevice, options: opts === '' ? [] : opts.split(',') }], target);
  } catch (err) {
    let detail = `mount ${cfg.MountDevice}:${target}, data: ${opts}: ${(err as Error).message}`;
    const password = optionValue(cfg.MountOpts, 'password');
    if (password !== '') detail = detail.split(`password=${password}`).join('password=********');
    throw new StrataError('ERR_SYSTEM', `failed to mount local volume: ${detail}`, { cause: err });
  }
}

/** Unmounts a volume's `_data`; not being mounted is fine. */
export async function unmountLocalVolume(target: string, options: { detach?: boolean } = {}): Promise<void> {
  try {
    await unmount(target, options);
  } catch (err) {
    throw new StrataError('ERR_SYSTEM', `error while unmounting volume path '${target}': ${(err as Error).message}`, { cause: err });
  }
}

/** Throws InvalidArgumentError `create <name>: <problem>` for a bad name or bad options. */
export function validateCreate(name: string, options: Readonly<Record<string, string>> | null | undefined): void {
  const problem = volumeNameError(name) ?? optionsError(options);
  if (problem !== undefined) throw new InvalidArgumentError(`create ${name}: ${problem}`);
}
