/**
 * Files Docker puts in and beside a container's filesystem: the init layer's placeholders
 * (facts §2.12) and the `hostname`, `hosts`, `resolv.conf` files under `containers/<id>/`
 * that are bind-mounted over those placeholders at start.
 */
import { chownSync, closeSync, fchownSync, lstatSync, mkdirSync, openSync, symlinkSync, unlinkSync } from 'node:fs';
import path from 'node:path';

import { readFile } from '../sys/meta-fs.js';
import { isErrno } from '../errors.js';
import { atomicWriteFile } from '../sys/atomic.js';

const INIT_ENTRIES: ReadonlyArray<[string, 'dir' | 'file' | { symlink: string }]> = [
  ['/dev/pts', 'dir'],
  ['/dev/shm', 'dir'],
  ['/proc', 'dir'],
  ['/sys', 'dir'],
  ['/.dockerenv', 'file'],
  ['/etc/resolv.conf', 'file'],
  ['/etc/hosts', 'file'],
  ['/etc/hostname', 'file'],
  ['/dev/console', 'file'],
  ['/etc/mtab', { symlink: '/proc/mounts' }],
];

/** The directories setupInitLayer creates entries in (copied up before it runs; see RWLayer). */
export const INIT_LAYER_DIRS: readonly string[] = ['/dev/pts', '/dev/shm', '/proc', '/sys', '/etc'];

// Synchronous on purpose: a dozen syscalls on a fresh, nearly empty directory cost less than
// the thread-pool round trips their async forms would add to every container create.

function missing(p: string): boolean {
  try {
    lstatSync(p);
    return false;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return true;
    throw err;
  }
}

/** Creates the directories of `rel` that are missing, 0755 root-owned (only the new ones). */
function mkdirAllNew(root: string, rel: string): void {
  let cur = root;
  for (const part of rel.split('/').filter(Boolean)) {
    cur = path.join(cur, part);
    if (missing(cur)) {
      mkdirSync(cur, { mode: 0o755 });
      chownSync(cur, 0, 0);
    }
  }
}

/**
 * Fills an init layer seen at `root`. A non-directory in the way of a placeholder (an
 * image's /etc/hosts file or /etc/mtab link) is unlinked first, so the placeholder shadows
 * it; existing directories are kept. Every path is handled below `root` with lstat, never
 * following the image's symlinks.
 */
export async function setupInitLayer(root: string): Promise<void> {
  for (const [p, kind] of INIT_ENTRIES) {
    const parts = p.split('/').filter(Boolean);
    let prefix = root;
    let blocked = false;
    for (const part of parts) {
      prefix = path.join(prefix, part);
      try {
        if (!lstatSync(prefix).isDirectory()) unlinkSync(prefix);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) {
          blocked = true;
          break;
        }
      }
    }
    if (blocked) continue;
    const target = path.join(root, p);
    if (!missing(target)) continue;
    mkdirAllNew(root, path.dirname(p));
    if (kind === 'dir') {
      mkdirAllNew(root, p);
    } else if (kind === 'file') {
      const fd = openSync(target, 'wx', 0o755);
      try {
        fchownSync(fd, 0, 0);
      } finally {
        closeSync(fd);
      }
    } else {
      symlinkSync(kind.symlink, target);
    }
  }
}

const HOSTS_DEFAULTS = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

/** Docker's /etc/hosts for a container with its own network namespace. */
export function hostsFile(hostname: string, ip: string | undefined, domainname = ''): string {
  const lines = [...HOSTS_DEFAULTS];
  if (ip) lines.push(`${ip}\t${domainname ? `${hostname}.${domainname} ${hostname}` : hostname}`);
  return `${lines.join('\n')}\n`;
}

const DEFAULT_NAMESERVERS = ['nameserver 8.8.8.8', 'nameserver 8.8.4.4'];

/**
 * The host's resolv.conf as a container with its own network sees it: nameservers on the
 * host's loopback are unreachable from there and dropped; if none remain, Docker's defaults.
 */
export function containerResolvConf(hostText: string): string {
  const lines = hostText.split('\n');
  const kept = lines.filter((l) => {
    const m = /^\s*nameserver\s+(\S+)/.exec(l);
    return !m || !(/^127\./.test(m[1]!) || m[1] === '::1');
  });
  const text = kept.join('\n').replace(/\n+$/, '');
  const hasServer = kept.some((l) => /^\s*nameserver\s+/.test(l));
  const out = hasServer ? text : [text, ...DEFAULT_NAMESERVERS].filter((l) => l !== '').join('\n');
  return `${out}\n`;
}

async function readHost(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return '';
    throw err;
  }
}

export interface NetworkFiles {
  hostname: string;
  domainname?: string;
  /** The container's address on its network; undefined for `none`. */
  ip?: string;
  /** `host`: the host's own files are used as they are. */
  hostNetwork: boolean;
}

/** Writes `hostname`, `hosts`, `resolv.conf` into `containers/<id>/` (0644, atomic). */
export async function writeNetworkFiles(dir: string, o: NetworkFiles): Promise<{ hostname: string; hosts: string; resolvConf: string }> {
  const files = { hostname: path.join(dir, 'hostname'), hosts: path.join(dir, 'hosts'), resolvConf: path.join(dir, 'resolv.conf') };
  const hostsText = o.hostNetwork ? await readHost('/etc/hosts') : hostsFile(o.hostname, o.ip, o.domainname);
  const hostResolv = await readHost('/etc/resolv.conf');
  const resolvText = o.hostNetwork ? hostResolv : containerResolvConf(hostResolv);
  await Promise.all([
    atomicWriteFile(files.hostname, `${o.hostname}\n`, { mode: 0o644, fsync: false }),
    atomicWriteFile(files.hosts, hostsText, { mode: 0o644, fsync: false }),
    atomicWriteFile(files.resolvConf, resolvText, { mode: 0o644, fsync: false }),
  ]);
  return files;
}
