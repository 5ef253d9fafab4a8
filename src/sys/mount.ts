/**
 * Performs the mounts that drivers describe as data, and
 * reads the mount table back.
 */
import path from 'node:path';

import { StrataError, isErrno } from '../errors.js';
import { native } from '../native/addon.js';
import { readFile } from './meta-fs.js';

/**
 * A mount described as data (containerd's `Mount`): drivers produce these, mountAll performs
 * them. Defined here, not in drivers/, so sys/ depends on nothing above it.
 */
export interface Mount {
  /** Filesystem type for mount(2): `overlay`, `bind`, `tmpfs`... */
  type: string;
  source: string;
  /** Comma-joined into the data argument; `ro`, `bind`, `rbind` are turned into flags. */
  options: string[];
}

/**
 * mount(2) rejects a data argument longer than one page (minus its NUL). Docker compares
 * against the runtime page size; 4096 is the size on every platform we run on, and a
 * smaller limit only makes the relative-path fallback kick in earlier.
 */
const PAGE_SIZE = 4096;

type FlagName =
  | 'MS_RDONLY' | 'MS_NOSUID' | 'MS_NODEV' | 'MS_NOEXEC' | 'MS_SYNCHRONOUS' | 'MS_REMOUNT'
  | 'MS_MANDLOCK' | 'MS_DIRSYNC' | 'MS_NOATIME' | 'MS_NODIRATIME' | 'MS_BIND' | 'MS_REC'
  | 'MS_RELATIME' | 'MS_STRICTATIME';
type PropagationName = 'MS_PRIVATE' | 'MS_SLAVE' | 'MS_SHARED' | 'MS_UNBINDABLE';

/** `set` flags are or-ed in; `clear: true` means the option removes them (`rw`, `suid`...). */
const FLAG_OPTIONS: Record<string, { flags: FlagName[]; clear?: boolean }> = {
  defaults: { flags: [] },
  ro: { flags: ['MS_RDONLY'] },
  rw: { flags: ['MS_RDONLY'], clear: true },
  nosuid: { flags: ['MS_NOSUID'] },
  suid: { flags: ['MS_NOSUID'], clear: true },
  nodev: { flags: ['MS_NODEV'] },
  dev: { flags: ['MS_NODEV'], clear: true },
  noexec: { flags: ['MS_NOEXEC'] },
  exec: { flags: ['MS_NOEXEC'], clear: true },
  sync: { flags: ['MS_SYNCHRONOUS'] },
  async: { flags: ['MS_SYNCHRONOUS'], clear: true },
  dirsync: { flags: ['MS_DIRSYNC'] },
  remount: { flags: ['MS_REMOUNT'] },
  mand: { flags: ['MS_MANDLOCK'] },
  nomand: { flags: ['MS_MANDLOCK'], clear: true },
  noatime: { flags: ['MS_NOATIME'] },
  atime: { flags: ['MS_NOATIME'], clear: true },
  nodiratime: { flags: ['MS_NODIRATIME'] },
  diratime: { flags: ['MS_NODIRATIME'], clear: true },
  relatime: { flags: ['MS_RELATIME'] },
  norelatime: { flags: ['MS_RELATIME'], clear: true },
  strictatime: { flags: ['MS_STRICTATIME'] },
  nostrictatime: { flags: ['MS_STRICTATIME'], clear: true },
  bind: { flags: ['MS_BIND'] },
  rbind: { flags: ['MS_BIND', 'MS_REC'] },
};

/**
 * Propagation changes cannot ride along with a mount that creates something: the kernel
 * only honours them in a call of their own, so they are collected separately.
 */
const PROPAGATION_OPTIONS: Record<string, { flag: PropagationName; recursive: boolean }> = {
  private: { flag: 'MS_PRIVATE', recursive: false },
  rprivate: { flag: 'MS_PRIVATE', recursive: true },
  slave: { flag: 'MS_SLAVE', recursive: false },
  rslave: { flag: 'MS_SLAVE', recursive: true },
  shared: { flag: 'MS_SHARED', recursive: false },
  rshared: { flag: 'MS_SHARED', recursive: true },
  unbindable: { flag: 'MS_UNBINDABLE', recursive: false },
  runbindable: { flag: 'MS_UNBINDABLE', recursive: true },
};

interface ParsedOptions {
  flags: number;
  propagation: number;
  data: string[];
}

function parseOptions(options: readonly string[]): ParsedOptions {
  const c = native().constants;
  let flags = 0;
  let propagation = 0;
  const data: string[] = [];
  for (const option of options) {
    const flagOption = FLAG_OPTIONS[option];
    if (flagOption) {
      const bits = flagOption.flags.reduce((acc, name) => acc | c[name], 0);
      flags = flagOption.clear ? flags & ~bits : flags | bits;
      continue;
    }
    const prop = PROPAGATION_OPTIONS[option];
    if (prop) {
      propagation |= c[prop.flag] | (prop.recursive ? c.MS_REC : 0);
      continue;
    }
    data.push(option);
  }
  return { flags, propagation, data };
}

/** The deepest directory that contains every one of `paths` (all absolute). */
function commonParent(paths: readonly string[]): string {
  let common = path.dirname(paths[0]!).split(path.sep);
  for (const p of paths.slice(1)) {
    const parts = path.dirname(p).split(path.sep);
    let i = 0;
    while (i < common.length && i < parts.length && common[i] === parts[i]) i++;
    common = common.slice(0, i);
  }
  return common.join(path.sep) || path.sep;
}

/**
 * Docker's answer to overlay option strings longer than a page: name every layer relative
 * to the directory they share and mount from there. Returns null when there is nothing
 * absolute to shorten.
 */
function relativeOverlayData(data: string[]): { data: string; cwd: string } | null {
  const pathKeys = ['lowerdir', 'upperdir', 'workdir'];
  const absolute: string[] = [];
  const parsed = data.map((option) => {
    const eq = option.indexOf('=');
    const key = eq < 0 ? option : option.slice(0, eq);
    if (eq < 0 || !pathKeys.includes(key)) return { key, values: null, raw: option };
    const values = key === 'lowerdir' ? option.slice(eq + 1).split(':') : [option.slice(eq + 1)];
    for (const v of values) if (path.isAbsolute(v)) absolute.push(v);
    return { key, values, raw: option };
  });
  if (absolute.length === 0) return null;
  const cwd = commonParent(absolute);
  const rewritten = parsed.map(({ key, values, raw }) => {
    if (!values) return raw;
    const rel = values.map((v) => (path.isAbsolute(v) ? path.relative(cwd, v) || '.' : v));
    return `${key}=${rel.join(':')}`;
  });
  return { data: rewritten.join(','), cwd };
}

async function mountOne(m: Mount, target: string): Promise<void> {
  const addon = native();
  const c = addon.constants;
  const { flags, propagation, data } = parseOptions(m.options);
  const isBind = (flags & c.MS_BIND) !== 0;

  if (isBind && path.resolve(m.source) === path.resolve(target)) return;

  if (m.type === 'overlay') {
    let dataString = data.join(',');
    let cwd: string | undefined;
    if (dataString.length > PAGE_SIZE - 1) {
      const rel = relativeOverlayData(data);
      if (rel) ({ data: dataString, cwd } = rel);
      if (dataString.length > PAGE_SIZE - 1) {
        throw new StrataError('ERR_SYSTEM', `cannot mount layer, mount label too large ${dataString.length}`);
      }
    }
    try {
      addon.mount(m.source, target, m.type, flags, dataString, cwd);
    } catch (err) {
      throw new StrataError('ERR_SYSTEM', `error creating overlay mount to ${target}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  } else {
    addon.mount(m.source, target, m.type, flags, data.length > 0 ? data.join(',') : null);
  }

  // A bind mount ignores MS_RDONLY/MS_NOSUID/... on creation; they only stick when the
  // new mount is remounted with them.
  const restricting = flags & (c.MS_RDONLY | c.MS_NOSUID | c.MS_NODEV | c.MS_NOEXEC);
  if (isBind && restricting !== 0) {
    addon.mount('', target, '', restricting | c.MS_BIND | c.MS_REMOUNT, null);
  }
  if (propagation !== 0) {
    addon.mount('', target, '', propagation, null);
  }
}

/**
 * Mounts `mounts` at `target` in order. For overlay, when the option string would exceed a
 * page, absolute paths are rewritten relative to their longest common directory and the
 * mount is done with that directory as cwd (native `mount(..., cwd)`), as Docker does.
 * A bind mount whose source equals target is skipped (vfs snapshots need no mount).
 */
export async function mountAll(mounts: readonly Mount[], target: string): Promise<void> {
  for (const m of mounts) await mountOne(m, target);
}

/** umount2(target, MNT_DETACH when `detach`); EINVAL (not mounted) is ignored. */
export async function unmount(target: string, options: { detach?: boolean } = {}): Promise<void> {
  const addon = native();
  try {
    addon.umount2(target, options.detach ? addon.constants.MNT_DETACH : 0);
  } catch (err) {
    if (isErrno(err, 'EINVAL') || isErrno(err, 'ENOENT')) return;
    throw err;
  }
}

/** mountinfo escapes space, tab, newline and backslash as `\ooo`. */
function decodeMountinfoPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points at or below `dir`, deepest first, read from /proc/self/mountinfo. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const root = path.resolve(dir);
  const prefix = root === path.sep ? root : root + path.sep;
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  const found: string[] = [];
  for (const line of table.split('\n')) {
    // Fields: id parent major:minor root mountpoint options ...
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    const mountPoint = decodeMountinfoPath(fields[4]!);
    if (mountPoint === root || mountPoint.startsWith(prefix)) found.push(mountPoint);
  }
  // Stacked mounts on one point appear once per layer, and each needs its own unmount.
  return found.sort((a, b) => b.split(path.sep).length - a.split(path.sep).length || b.length - a.length);
}
