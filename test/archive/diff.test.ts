import { spawnSync } from 'node:child_process';
import {
  chmodSync, chownSync, cpSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync,
  rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { tarOverlayUpper, tarTreeDiff, unpackLayer } from '../../src/archive/layer.js';
import { encodeHeader, type TarHeader } from '../../src/archive/tar-header.js';
import { readTarEntries } from '../../src/archive/tar-reader.js';
import { native } from '../../src/native/addon.js';

const isRoot = process.getuid?.() === 0;

function tempDir(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'strata-diff-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function addonReady(): boolean {
  try {
    native();
    return true;
  } catch {
    return false;
  }
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function entries(tar: Buffer): Promise<TarHeader[]> {
  const out: TarHeader[] = [];
  for await (const e of readTarEntries([tar])) {
    out.push(e.header);
    for await (const _ of e.body) void _;
  }
  return out;
}

/** Tree description without directory mtimes (they change as children are created). */
function describeTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, r));
      let d = `mode=${st.mode.toString(8)} uid=${st.uid} gid=${st.gid}`;
      if (st.isFile()) d += ` mtime=${Math.floor(st.mtimeMs / 1000)} data=${readFileSync(join(root, r)).toString('hex').slice(0, 40)}`;
      if (st.isSymbolicLink()) d += ` -> ${readlinkSync(join(root, r))}`;
      out[r] = d;
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

function canMountOverlay(): boolean {
  return isRoot && addonReady() && readFileSync('/proc/filesystems', 'utf8').includes('overlay');
}

describe('tarOverlayUpper on a real overlay upper dir', () => {
  it('turns whiteouts and opaque dirs into .wh. entries, in WalkDir order, with Docker headers', async (t) => {
    if (!canMountOverlay()) return t.skip('needs root, the native addon and overlayfs');
    const base = tempDir(t);
    const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((n) => join(base, n)) as [string, string, string, string];
    for (const d of [lower, upper, work, merged]) mkdirSync(d);
    mkdirSync(join(lower, 'etc'));
    writeFileSync(join(lower, 'etc/motd'), 'welcome');
    writeFileSync(join(lower, 'etc/hosts'), '127.0.0.1');
    mkdirSync(join(lower, 'var/cache'), { recursive: true });
    writeFileSync(join(lower, 'var/cache/old'), 'old');
    writeFileSync(join(lower, 'a-b'), 'dash');
    const addon = native();
    addon.mount('overlay', merged, 'overlay', 0, `lowerdir=${lower},upperdir=${upper},workdir=${work}`);
    let mergedTree: Record<string, string>;
    try {
      unlinkSync(join(merged, 'etc/motd'));
      unlinkSync(join(merged, 'a-b'));
      rmSync(join(merged, 'var/cache'), { recursive: true });
      mkdirSync(join(merged, 'var/cache'));
      writeFileSync(join(merged, 'var/cache/new'), 'new');
      writeFileSync(join(merged, 'etc/hosts'), '127.0.0.1 strata');
      mkdirSync(join(merged, 'a'));
      writeFileSync(join(merged, 'a/file'), 'file');
      linkSync(join(merged, 'a/file'), join(merged, 'a/hard'));
      symlinkSync('file', join(merged, 'a/sym'));
      writeFileSync(join(merged, 'a/suid'), 'x');
      chownSync(join(merged, 'a/suid'), 1000, 1000); // before chmod: chown clears setuid
      chmodSync(join(merged, 'a/suid'), 0o4755);
      utimesSync(join(merged, 'a/file'), 1_600_000_000.75, 1_600_000_000.75);
      mergedTree = describeTree(merged);
    } finally {
      addon.umount2(merged, 0);
    }

    const tar = await collect(tarOverlayUpper(upper));
    const hs = await entries(tar);
    const names = hs.map((h) => h.name);
    // WalkDir order: lexical per directory, a directory before its children; "a" < "a-b"
    // only because whiteouts are emitted where the deleted name sorts.
    assert.deepEqual(names, [
      'a/', 'a/file', 'a/hard', 'a/suid', 'a/sym', '.wh.a-b',
      'etc/', 'etc/hosts', 'etc/.wh.motd',
      'var/', 'var/cache/', 'var/cache/.wh..wh..opq', 'var/cache/new',
    ]);
    const by = new Map(hs.map((h) => [h.name, h]));
    assert.equal(by.get('a/hard')!.typeflag, '1');
    assert.equal(by.get('a/hard')!.linkname, 'a/file');
    assert.equal(by.get('a/file')!.mtime, 1_600_000_000, 'mtime truncated to seconds');
    assert.equal(by.get('a/suid')!.mode, 0o4755);
    assert.deepEqual([by.get('a/suid')!.uid, by.get('a/suid')!.gid], [1000, 1000]);
    assert.equal(by.get('a/')!.uname, '');
    const wh = by.get('etc/.wh.motd')!;
    assert.equal(wh.typeflag, '0');
    assert.equal(wh.mode, 0o600);
    assert.equal(wh.size, 0);
    const opq = by.get('var/cache/.wh..wh..opq')!;
    assert.equal(opq.mtime, 0);
    assert.equal(opq.mode, lstatSync(join(upper, 'var/cache')).mode & 0o777);

    // Headers are exactly what Docker's writer produces for these stats (USTAR, no PAX).
    const aDir = lstatSync(join(upper, 'a'));
    const expectA = encodeHeader({
      name: 'a/', linkname: '', typeflag: '5', mode: aDir.mode & 0o7777, uid: 0, gid: 0, size: 0,
      mtime: Math.floor(aDir.mtimeMs / 1000), uname: '', gname: '', devmajor: 0, devminor: 0,
    });
    assert.ok(tar.subarray(0, 512).equals(expectA));
    assert.ok(tar.subarray(tar.length - 1024).equals(Buffer.alloc(1024)));

    // Applying the diff to a copy of the lower tree (delete mode) gives the merged view.
    const applied = join(base, 'applied');
    cpSync(lower, applied, { recursive: true, preserveTimestamps: true });
    await unpackLayer(Readable.from([tar]), { target: applied, whiteouts: 'delete' });
    assert.deepEqual(describeTree(applied), mergedTree);

    // Applying it in overlay form reproduces the upper dir's whiteouts and opaque xattr.
    const again = join(base, 'again');
    mkdirSync(again);
    await unpackLayer(Readable.from([tar]), { target: again, whiteouts: 'overlay' });
    assert.equal(lstatSync(join(again, 'etc/motd')).isCharacterDevice(), true);
    assert.deepEqual(addon.lgetxattr(join(again, 'var/cache'), 'trusted.overlay.opaque'), Buffer.from('y'));
  });

  it('exports security.capability (v3 rewritten as v2) and no other xattr', async (t) => {
    if (!isRoot || !addonReady()) return t.skip('needs root and the native addon');
    const upper = tempDir(t);
    writeFileSync(join(upper, 'ping'), 'elf');
    const v3 = Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.alloc(16, 0), Buffer.from([0, 0, 0, 0])]);
    v3.writeUInt32LE(0x03000000 | 1, 0);
    v3.writeUInt32LE(1 << 13, 4);
    native().lsetxattr(join(upper, 'ping'), 'security.capability', v3, 0);
    native().lsetxattr(join(upper, 'ping'), 'user.other', Buffer.from('no'), 0);
    const [h] = await entries(await collect(tarOverlayUpper(upper)));
    const cap = h!.xattrs!.get('security.capability')!;
    assert.equal(cap.length, 20);
    assert.equal(cap[3], 2);
    assert.equal(h!.xattrs!.size, 1);
  });
});

describe('tarTreeDiff (naive diff)', () => {
  it('emits changed and added paths sorted by path string, deletions as .wh. entries', async (t) => {
    const base = tempDir(t);
    const parent = join(base, 'parent');
    const child = join(base, 'child');
    mkdirSync(join(parent, 'a/b'), { recursive: true });
    writeFileSync(join(parent, 'a/b/keep'), 'k');
    writeFileSync(join(parent, 'a/b/del'), 'd');
    writeFileSync(join(parent, 'a/mod'), 'v1');
    mkdirSync(join(parent, 'gone/sub'), { recursive: true });
    writeFileSync(join(parent, 'gone/sub/x'), 'x');
    // Whole-second mtimes: a copy keeps only milliseconds, and Docker's compare treats
    // differing sub-second parts as a change.
    for (const f of ['a/b/keep', 'a/b/del', 'a/mod', 'gone/sub/x']) utimesSync(join(parent, f), 1_600_000_000, 1_600_000_000);
    cpSync(parent, child, { recursive: true, preserveTimestamps: true });
    rmSync(join(child, 'a/b/del'));
    writeFileSync(join(child, 'a/mod'), 'v2-longer');
    writeFileSync(join(child, 'a-b'), 'new');
    rmSync(join(child, 'gone'), { recursive: true });
    const before = Math.floor(Date.now() / 1000) - 1;
    const tar = await collect(tarTreeDiff(child, parent));
    const hs = await entries(tar);
    assert.deepEqual(hs.map((h) => h.name), ['a/', 'a-b', 'a/b/', 'a/b/.wh.del', 'a/mod', '.wh.gone']);
    const wh = hs.find((h) => h.name === '.wh.gone')!;
    assert.deepEqual([wh.typeflag, wh.mode, wh.uid, wh.size], ['0', 0, 0, 0]);
    assert.ok(wh.mtime >= before && wh.mtime <= Math.floor(Date.now() / 1000) + 1);

    const applied = join(base, 'applied');
    cpSync(parent, applied, { recursive: true, preserveTimestamps: true });
    await unpackLayer(Readable.from([tar]), { target: applied, whiteouts: 'delete' });
    assert.deepEqual(describeTree(applied), describeTree(child));
  });

  it('without a parent, tars the whole tree in WalkDir order', async (t) => {
    const dir = tempDir(t);
    mkdirSync(join(dir, 'b'));
    writeFileSync(join(dir, 'b/f'), 'x');
    writeFileSync(join(dir, 'a-b'), 'y');
    const hs = await entries(await collect(tarTreeDiff(dir, undefined)));
    assert.deepEqual(hs.map((h) => h.name), ['a-b', 'b/', 'b/f']);
  });

  it('GNU tar can read what it writes', async (t) => {
    if (spawnSync('tar', ['--version']).status !== 0) return t.skip('GNU tar is not installed');
    const dir = tempDir(t);
    const src = join(dir, 'src');
    mkdirSync(join(src, `${'n'.repeat(120)}/deeper`), { recursive: true });
    writeFileSync(join(src, `${'n'.repeat(120)}/deeper/f`), 'content');
    const tarPath = join(dir, 'out.tar');
    writeFileSync(tarPath, await collect(tarTreeDiff(src, undefined)));
    const r = spawnSync('tar', ['-tf', tarPath], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [`${'n'.repeat(120)}/`, `${'n'.repeat(120)}/deeper/`, `${'n'.repeat(120)}/deeper/f`]);
  });
});
