/**
 * Resolves Docker's `-u name|uid[:group|gid]` against the container's own /etc/passwd and
 * /etc/group, the way `docker run -u` does, so the OCI spec can carry plain numbers (runc
 * would otherwise look the names up itself, but only after the spec has been written).
 *
 * The rootfs belongs to an image, i.e. to whoever built it: its /etc/passwd may be a symlink
 * to `/../../etc/shadow`. Every path is therefore resolved with symlinks evaluated inside the
 * rootfs, as if chrooted, before the host reads it.
 */
import { lstat, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';

import { InvalidArgumentError, NotFoundError, isErrno } from '../errors.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  /**
   * Supplementary groups: the primary gid, memberships from /etc/group (only when no group
   * was named), then `groupAdd`.
   */
  additionalGids: number[];
  /** Home directory from /etc/passwd ("/" when the user has no entry), for HOME. */
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** Linux ids are 32-bit, and (uid_t)-1 means "unchanged" to the kernel, so it is refused. */
const MAX_ID = 0xfffffffe;

/**
 * `p` (absolute, as seen inside the container) mapped to a host path under `root`, with every
 * symlink on the way resolved as the container would see it: absolute targets restart at
 * `root`, and `..` never climbs above it. A missing component ends the walk; the caller then
 * gets ENOENT when it opens the result.
 */
export async function resolveInRoot(root: string, p: string): Promise<string> {
  const pending = p.split('/').filter((c) => c !== '' && c !== '.');
  const resolved: string[] = [];
  // A link loop would otherwise spin forever; the kernel gives up after 40 as well.
  let linksLeft = 40;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    let isLink = false;
    try {
      isLink = (await lstat(candidate)).isSymbolicLink();
    } catch (err) {
      if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err;
    }
    if (!isLink) {
      resolved.push(part);
      continue;
    }
    if (--linksLeft < 0) throw new InvalidArgumentError(`too many levels of symbolic links resolving ${p}`);
    const target = await readlink(candidate);
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...target.split('/').filter((c) => c !== '' && c !== '.'));
  }
  return path.join(root, ...resolved);
}

async function readRootFile(root: string, file: string): Promise<string | undefined> {
  try {
    return await readFile(await resolveInRoot(root, file), 'utf8');
  } catch (err) {
    // An image without /etc/passwd (scratch-based) is normal: numeric ids still work.
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'EISDIR')) return undefined;
    throw err;
  }
}

function parseId(s: string): number | undefined {
  if (!/^[0-9]+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : Number.POSITIVE_INFINITY;
}

function parsePasswd(text: string | undefined): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const f = t.split(':');
    const uid = parseId(f[2] ?? '');
    const gid = parseId(f[3] ?? '');
    if (f.length < 4 || uid === undefined || gid === undefined) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5] || '/' });
  }
  return out;
}

function parseGroup(text: string | undefined): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const f = t.split(':');
    const gid = parseId(f[2] ?? '');
    if (f.length < 3 || gid === undefined) continue;
    out.push({ name: f[0]!, gid, members: (f[3] ?? '').split(',').filter((m) => m !== '') });
  }
  return out;
}

function checkRange(kind: 'uid' | 'gid', n: number, spec: string): number {
  if (n > MAX_ID) throw new InvalidArgumentError(`${kind} ${spec} is out of range`);
  return n;
}

/**
 * Docker's rules: a name must exist in /etc/passwd; a number need not (it then runs with gid
 * 0 and HOME=/); a named user's primary gid comes from its entry unless `:group` overrides
 * it; supplementary groups are the user's /etc/group memberships, but only in the implicit
 * form (`-u name`), since naming a group explicitly means "exactly this group"; the primary
 * gid is always among them, as dockerd's containers show.
 * `groupAdd` (`--group-add`) entries are names or gids resolved against /etc/group.
 */
export async function resolveUser(rootfs: string, user: string | undefined, groupAdd: readonly string[] = []): Promise<ResolvedUser> {
  const spec = user ?? '';
  const colon = spec.indexOf(':');
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? '' : spec.slice(colon + 1);

  // Both files are always read: even `-u 0` picks up root's memberships from /etc/group.
  const [passwdText, groupText] = await Promise.all([
    readRootFile(rootfs, '/etc/passwd'),
    readRootFile(rootfs, '/etc/group'),
  ]);
  const passwd = parsePasswd(passwdText);
  const groups = parseGroup(groupText);

  // An empty user means root, looked up so that root's own entry (home, memberships) applies.
  const userSpec = userPart === '' ? '0' : userPart;
  const numericUid = parseId(userSpec);
  let entry: PasswdEntry | undefined;
  if (numericUid !== undefined) {
    checkRange('uid', numericUid, userSpec);
    entry = passwd.find((e) => e.uid === numericUid);
  } else {
    entry = passwd.find((e) => e.name === userSpec);
    if (!entry) throw new NotFoundError(`unable to find user ${userSpec}: no matching entries in passwd file`);
  }
  const uid = numericUid ?? entry!.uid;
  let gid = entry?.gid ?? 0;
  const home = entry?.home ?? '/';

  let additionalGids: number[] = [];
  if (groupPart !== '') {
    const numericGid = parseId(groupPart);
    if (numericGid !== undefined) {
      gid = checkRange('gid', numericGid, groupPart);
    } else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw new NotFoundError(`unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  } else if (entry) {
    additionalGids = groups.filter((g) => g.members.includes(entry!.name)).map((g) => g.gid);
  }

  for (const extra of groupAdd) {
    const numeric = parseId(extra);
    if (numeric !== undefined) {
      additionalGids.push(checkRange('gid', numeric, extra));
      continue;
    }
    const g = groups.find((x) => x.name === extra);
    if (!g) throw new NotFoundError(`unable to find group ${extra}: no matching entries in group file`);
    additionalGids.push(g.gid);
  }
  // dockerd always lists the primary group among the supplementary ones too (`id` in a
  // container shows `groups=0(root),10(wheel)` for root), so a process that drops to its
  // supplementary groups, or checks them with getgroups(), keeps its primary group.
  return { uid, gid, additionalGids: [...new Set([gid, ...additionalGids])], home };
}
