import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, chownSync, linkSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, readFileSync,
  readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { unpackLayer } from '../../src/archive/layer.js';
import { DigestMismatchError, NotSupportedError } from '../../src/errors.js';
import { native } from '../../src/native/addon.js';
import { buildTar } from '../helpers/tar-builder.js';

const isRoot = process.getuid?.() === 0;

function tempDir(t: TestContext, prefix = 'strata-unpack-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function sha(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function addonReady(): boolean {
  try {
    native();
    return true;
  } catch {
    return false;
  }
}

/** A comparable description of every path under `root` (lstat attributes + content). */
function describeTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const inodes = new Map<number, string>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(root, r);
      const st = lstatSync(p);
      let desc = `mode=${st.mode.toString(8)} uid=${st.uid} gid=${st.gid}`;
      if (!st.isDirectory()) desc += ` mtime=${Math.floor(st.mtimeMs / 1000)}`;
      if (st.isFile()) {
        desc += ` sha=${sha(readFileSync(p)).slice(7, 19)}`;
        if (st.nlink > 1) {
          const first = inodes.get(st.ino);
          if (first) desc += ` link=${first}`;
          else inodes.set(st.ino, r);
        }
      }
      if (st.isSymbolicLink()) desc += ` -> ${readlinkSync(p)}`;
      if (st.isCharacterDevice() || st.isBlockDevice()) desc += ` rdev=${st.rdev}`;
      out[r] = desc;
      if (st.isDirectory()) {
        out[r] += ` mtime=${Math.floor(st.mtimeMs / 1000)}`;
        walk(r);
      }
    }
  };
  walk('');
  return out;
}

/** Docker's overlay `size` rule, written independently of the implementation. */
function lstatSize(root: string): number {
  let total = 0;
  const seen = new Set<number>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.size > 0 && !seen.has(st.ino)) {
        seen.add(st.ino);
        total += st.size;
      }
    }
  };
  walk(root);
  return total;
}

describe('unpackLayer: GNU tar as the oracle', () => {
  it('produces the same tree as `tar -xpf` for files, dirs, links, devices, modes, owners and times', async (t) => {
    if (!isRoot) return t.skip('needs root (ownership and device nodes)');
    if (spawnSync('tar', ['--version']).status !== 0) return t.skip('GNU tar is not installed');
    const dir = tempDir(t);
    const src = join(dir, 'src');
    mkdirSync(join(src, 'etc/deep/er'), { recursive: true });
    writeFileSync(join(src, 'etc/passwd'), 'root:x:0:0\n');
    writeFileSync(join(src, 'etc/deep/er/big'), Buffer.alloc(300_000, 'z'));
    writeFileSync(join(src, 'suid'), '#!/bin/sh\n');
    chmodSync(join(src, 'suid'), 0o4755);
    mkdirSync(join(src, 'tmp'));
    chmodSync(join(src, 'tmp'), 0o1777);
    mkdirSync(join(src, 'shared'));
    chownSync(join(src, 'shared'), 0, 50);
    chmodSync(join(src, 'shared'), 0o2775);
    writeFileSync(join(src, 'shared/file'), 'g');
    chownSync(join(src, 'shared/file'), 1000, 0);
    writeFileSync(join(src, 'all'), 'x');
    chmodSync(join(src, 'all'), 0o777);
    writeFileSync(join(src, 'none'), 'x');
    chmodSync(join(src, 'none'), 0o000);
    symlinkSync('etc/passwd', join(src, 'lnk'));
    symlinkSync('/nonexistent/abs', join(src, 'dangling'));
    linkSync(join(src, 'etc/passwd'), join(src, 'hard'));
    native().mknod(join(src, 'null'), native().constants.S_IFCHR | 0o666, 1, 3);
    native().mknod(join(src, 'blk'), native().constants.S_IFBLK | 0o660, 7, 0);
    native().mknod(join(src, 'fifo'), native().constants.S_IFIFO | 0o644, 0, 0);
    const long = `${'l'.repeat(120)}/${'m'.repeat(120)}`;
    mkdirSync(join(src, long), { recursive: true });
    writeFileSync(join(src, long, 'f'), 'deep');
    chownSync(join(src, 'etc'), 1234, 5678);
    utimesSync(join(src, 'etc/passwd'), 1_500_000_000, 1_500_000_000);
    lutimesSync(join(src, 'lnk'), 1_400_000_000, 1_400_000_000);
    utimesSync(join(src, 'etc'), 1_300_000_000, 1_300_000_000);

    for (const format of ['gnu', 'posix']) {
      const tarPath = join(dir, `${format}.tar`);
      const r = spawnSync('tar', ['-C', src, `--format=${format}`, '--numeric-owner', '-cf', tarPath, '.'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const viaTar = join(dir, `gnu-${format}`);
      mkdirSync(viaTar);
      const x = spawnSync('tar', ['-C', viaTar, '--numeric-owner', '-xpf', tarPath], { encoding: 'utf8' });
      assert.equal(x.status, 0, x.stderr);
      const viaUs = join(dir, `strata-${format}`);
      mkdirSync(viaUs);
      const bytes = readFileSync(tarPath);
      const res = await unpackLayer(Readable.from([bytes]), { target: viaUs, whiteouts: 'overlay' });
      assert.deepEqual(describeTree(viaUs), describeTree(viaTar), format);
      assert.equal(res.diffId, sha(bytes));
      assert.equal(res.size, lstatSize(viaUs));
      assert.equal(res.compressedSize, bytes.length);
      assert.equal(res.compressedDigest, undefined);
    }
  });
});

describe('unpackLayer: apply rules', () => {
  it('creates missing parents 0755 and keeps header owners, modes, xattrs and times', async (t) => {
    const target = tempDir(t);
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    const tar = buildTar([
      { name: 'a/b/c/file', body: 'hi', mode: 0o640, uid: isRoot ? 1000 : undefined, gid: isRoot ? 2000 : undefined, mtime: 1_234_567_890 },
      { name: 'a/b/', mode: 0o700, mtime: 1_111_111_111 },
      { name: 'ping', body: 'elf', mode: 0o755, xattrs: { 'security.capability': cap, 'user.note': 'hello' } },
      { name: 'l', type: '2', linkname: 'ping', mtime: 1_000_000_000 },
    ]);
    await unpackLayer(Readable.from([tar]), { target, whiteouts: 'overlay' });
    assert.equal(lstatSync(join(target, 'a')).mode & 0o7777, 0o755);
    assert.equal(lstatSync(join(target, 'a/b')).mode & 0o7777, 0o700);
    assert.equal(lstatSync(join(target, 'a/b')).mtimeMs, 1_111_111_111_000, 'dir times are applied after its children');
    const f = lstatSync(join(target, 'a/b/c/file'));
    assert.equal(f.mode & 0o7777, 0o640);
    assert.equal(f.mtimeMs, 1_234_567_890_000);
    if (isRoot) assert.deepEqual([f.uid, f.gid], [1000, 2000]);
    assert.equal(lstatSync(join(target, 'l')).mtimeMs, 1_000_000_000_000);
    if (addonReady()) {
      assert.deepEqual(native().lgetxattr(join(target, 'ping'), 'user.note'), Buffer.from('hello'));
      if (isRoot) assert.deepEqual(native().lgetxattr(join(target, 'ping'), 'security.capability'), cap);
    }
  });

  it('sets an exact mode whatever the umask, including setuid/setgid/sticky', async (t) => {
    const target = tempDir(t);
    const old = process.umask(0o077);
    t.after(() => process.umask(old));
    const modes = [0o777, 0o4755, 0o2711, 0o1777, 0o000, 0o666];
    const tar = buildTar(modes.flatMap((m, i) => [{ name: `f${i}`, body: 'x', mode: m }, { name: `d${i}/`, mode: m }]));
    await unpackLayer(Readable.from([tar]), { target, whiteouts: 'overlay' });
    modes.forEach((m, i) => {
      assert.equal(lstatSync(join(target, `f${i}`)).mode & 0o7777, m, `file ${m.toString(8)}`);
      assert.equal(lstatSync(join(target, `d${i}`)).mode & 0o7777, m, `dir ${m.toString(8)}`);
    });
  });

  it('gives children of a setgid directory the header group, not the inherited one', async (t) => {
    if (!isRoot) return t.skip('needs root (chown)');
    const target = tempDir(t);
    const tar = buildTar([
      { name: 's/', mode: 0o2775, gid: 50 },
      { name: 's/f', body: 'x', uid: 0, gid: 0, mode: 0o644 },
      { name: 's/sub/', uid: 0, gid: 0, mode: 0o755 },
    ]);
    await unpackLayer(Readable.from([tar]), { target, whiteouts: 'overlay' });
    assert.equal(lstatSync(join(target, 's/f')).gid, 0);
    assert.equal(lstatSync(join(target, 's/sub')).gid, 0);
    assert.equal(lstatSync(join(target, 's/sub')).mode & 0o7777, 0o755, 'no inherited setgid bit');
  });

  it('replaces existing paths unless both are directories (delete mode on a parent tree)', async (t) => {
    const target = tempDir(t);
    mkdirSync(join(target, 'wasdir/inner'), { recursive: true });
    writeFileSync(join(target, 'wasfile'), 'old');
    mkdirSync(join(target, 'keep'));
    writeFileSync(join(target, 'keep/old'), 'kept');
    writeFileSync(join(target, 'shared'), 'old');
    linkSync(join(target, 'shared'), join(target, 'shared-twin'));
    const tar = buildTar([
      { name: 'wasdir', body: 'now a file' },
      { name: 'wasfile/', mode: 0o711 },
      { name: 'keep/', mode: 0o700 },
      { name: 'keep/new', body: 'n' },
      { name: 'shared', body: 'new' },
    ]);
    const res = await unpackLayer(Readable.from([tar]), { target, whiteouts: 'delete' });
    assert.equal(readFileSync(join(target, 'wasdir'), 'utf8'), 'now a file');
    assert.equal(lstatSync(join(target, 'wasfile')).isDirectory(), true);
    assert.deepEqual(readdirSync(join(target, 'keep')).sort(), ['new', 'old']);
    assert.equal(lstatSync(join(target, 'keep')).mode & 0o7777, 0o700);
    assert.equal(readFileSync(join(target, 'shared-twin'), 'utf8'), 'old', 'a new inode, the old link keeps its data');
    assert.equal(res.size, 10 + 1 + 3, 'delete mode: sum of header sizes');
  });

  it('handles the root entry like Docker: skipped for overlay, merged for delete', async (t) => {
    for (const whiteouts of ['overlay', 'delete'] as const) {
      const target = tempDir(t);
      chmodSync(target, 0o700);
      await unpackLayer(Readable.from([buildTar([{ name: './', mode: 0o755, mtime: 1_000_000_000 }, { name: './f', body: 'x' }, { name: 'g', type: 'g', body: '8 a=bcd\n' }])]), { target, whiteouts });
      assert.equal(lstatSync(target).mode & 0o7777, whiteouts === 'delete' ? 0o755 : 0o700, whiteouts);
      assert.deepEqual(readdirSync(target), ['f'], 'global PAX headers are ignored');
    }
  });

  it('reports the diffID, verifies expectedDiffId, and reports progress', async (t) => {
    const tar = buildTar([{ name: 'f', body: 'hello' }]);
    let last = 0;
    const ok = await unpackLayer(Readable.from([tar]), { target: tempDir(t), whiteouts: 'overlay', expectedDiffId: sha(tar) as `sha256:${string}`, onProgress: (n) => { last = n; } });
    assert.equal(ok.diffId, sha(tar));
    assert.equal(last, tar.length);
    await assert.rejects(
      unpackLayer(Readable.from([tar]), { target: tempDir(t), whiteouts: 'overlay', expectedDiffId: `sha256:${'0'.repeat(64)}` }),
      DigestMismatchError,
    );
  });

  it('decompresses gzip and reports the compressed digest and size', async (t) => {
    const tar = buildTar([{ name: 'f', body: Buffer.alloc(200_000, 'a') }]);
    const gz = gzipSync(tar);
    const target = tempDir(t);
    const chunks = [gz.subarray(0, 3), gz.subarray(3, 1000), gz.subarray(1000)];
    const res = await unpackLayer(Readable.from(chunks), { target, whiteouts: 'overlay' });
    assert.equal(res.diffId, sha(tar));
    assert.equal(res.compressedDigest, sha(gz));
    assert.equal(res.compressedSize, gz.length);
    assert.equal(readFileSync(join(target, 'f')).length, 200_000);
  });

  it('refuses formats it cannot decompress with NotSupportedError', async (t) => {
    const heads: Array<[string, Buffer]> = [
      ['bzip2', Buffer.from('BZh91AY&SY')],
      ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0])],
    ];
    if (!('createZstdDecompress' in await import('node:zlib'))) heads.push(['zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0])]);
    for (const [what, head] of heads) {
      await assert.rejects(unpackLayer(Readable.from([head]), { target: tempDir(t), whiteouts: 'overlay' }), NotSupportedError, what);
    }
  });

  it('accepts an empty layer (1024 zero bytes) with Docker\'s empty diffID', async (t) => {
    const res = await unpackLayer(Readable.from([Buffer.alloc(1024)]), { target: tempDir(t), whiteouts: 'overlay' });
    assert.equal(res.diffId, 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef');
    assert.equal(res.size, 0);
  });
});

describe('unpackLayer: whiteouts', () => {
  it('overlay: .wh.<name> becomes a char 0:0 device owned like the header; opaque sets the xattr', async (t) => {
    if (!isRoot || !addonReady()) return t.skip('needs root and the native addon (mknod, trusted xattrs)');
    const target = tempDir(t);
    const tar = buildTar([
      { name: 'etc/' },
      { name: 'etc/.wh.motd', body: '', uid: 1000, gid: 1000 },
      { name: 'var/.wh..wh..opq', body: '' },
      { name: '.wh..wh.plnk/123', body: 'aufs' },
      { name: 'x/.wh..wh.aufs', body: '' },
    ]);
    const res = await unpackLayer(Readable.from([tar]), { target, whiteouts: 'overlay' });
    const wh = lstatSync(join(target, 'etc/motd'));
    assert.equal(wh.isCharacterDevice(), true);
    assert.equal(wh.rdev, 0);
    assert.deepEqual([wh.uid, wh.gid], [1000, 1000]);
    assert.deepEqual(native().lgetxattr(join(target, 'var'), 'trusted.overlay.opaque'), Buffer.from('y'));
    assert.deepEqual(readdirSync(target).sort(), ['etc', 'var'], 'AUFS metadata entries are not materialised');
    assert.deepEqual(readdirSync(join(target, 'etc')), ['motd']);
    assert.equal(res.size, 0);
  });

  it('overlay: a whiteout for a name this layer also creates is an error', async (t) => {
    if (!isRoot || !addonReady()) return t.skip('needs root and the native addon');
    await assert.rejects(
      unpackLayer(Readable.from([buildTar([{ name: 'f', body: 'x' }, { name: '.wh.f', body: '' }])]), { target: tempDir(t), whiteouts: 'overlay' }),
      /conflicts with an existing entry "f"/,
    );
  });

  it('delete: .wh.<name> removes the path (recursively, never following links); opaque keeps only this layer', async (t) => {
    const target = tempDir(t);
    mkdirSync(join(target, 'gone/deep'), { recursive: true });
    writeFileSync(join(target, 'gone/deep/f'), 'x');
    mkdirSync(join(target, 'opq/old'), { recursive: true });
    writeFileSync(join(target, 'opq/old/f'), 'x');
    writeFileSync(join(target, 'opq/oldfile'), 'x');
    const victim = tempDir(t, 'strata-victim-');
    writeFileSync(join(victim, 'precious'), 'keep');
    symlinkSync(victim, join(target, 'linkdir'));
    const tar = buildTar([
      { name: '.wh.gone', body: '' },
      { name: '.wh.linkdir', body: '' },
      { name: 'opq/' },
      { name: 'opq/new/' },
      { name: 'opq/new/f', body: 'n' },
      { name: 'opq/.wh..wh..opq', body: '' },
      { name: 'opq/after', body: 'a' },
      { name: '.wh.never-existed', body: '' },
    ]);
    const res = await unpackLayer(Readable.from([tar]), { target, whiteouts: 'delete' });
    assert.deepEqual(readdirSync(target).sort(), ['opq']);
    assert.deepEqual(readdirSync(join(target, 'opq')).sort(), ['after', 'new']);
    assert.deepEqual(readdirSync(join(target, 'opq/new')), ['f']);
    assert.equal(readFileSync(join(victim, 'precious'), 'utf8'), 'keep');
    assert.equal(res.size, 2);
  });
});

describe('unpackLayer: size', () => {
  it('overlay size follows the lstat walk rule even when paths are replaced', async (t) => {
    const target = tempDir(t);
    writeFileSync(join(target, 'pre'), Buffer.alloc(1000));
    const tar = buildTar([
      { name: 'a', body: Buffer.alloc(3000) },
      { name: 'b', type: '1', linkname: 'a' },
      { name: 's', type: '2', linkname: 'a-long-target' },
      { name: 'pre', body: Buffer.alloc(10) },
      { name: 'empty', body: '' },
    ]);
    const res = await unpackLayer(Readable.from([tar]), { target, whiteouts: 'overlay' });
    assert.equal(res.size, lstatSize(target));
    assert.equal(res.size, 3000 + 'a-long-target'.length + 10);
  });
});
