/**
 * Hostile layer tars: every case must be refused (or, for absolute names, rebased) without a
 * single byte written outside the target. A sentinel directory and an "outside" file sit next
 * to the target and are checked after each case.
 */
import {
  existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { unpackLayer, type UnpackLimits, type WhiteoutFormat } from '../../src/archive/layer.js';
import { InvalidArchiveError, StrataError } from '../../src/errors.js';
import { buildTar, type TarSpec } from '../helpers/tar-builder.js';

interface Env {
  base: string;
  target: string;
  sentinel: string;
  outside: string;
}

function setup(t: TestContext): Env {
  const base = mkdtempSync(join(tmpdir(), 'strata-sec-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const env = { base, target: join(base, 'target'), sentinel: join(base, 'sentinel'), outside: join(base, 'outside.txt') };
  mkdirSync(env.target);
  mkdirSync(env.sentinel);
  writeFileSync(env.outside, 'outside\n');
  return env;
}

/** Nothing but the fixture itself exists outside the target. */
function assertOutsideUntouched(env: Env): void {
  assert.deepEqual(readdirSync(env.sentinel), [], 'sentinel dir must stay empty');
  assert.deepEqual(readdirSync(env.base).sort(), ['outside.txt', 'sentinel', 'target']);
  assert.equal(readFileSync(env.outside, 'utf8'), 'outside\n');
  assert.equal(statSync(env.outside).nlink, 1, 'no hard link to the outside file');
}

type Case = {
  name: string;
  entries: (env: Env) => TarSpec[];
  whiteouts?: WhiteoutFormat;
  limits?: UnpackLimits;
  tar?: (env: Env) => Buffer;
  prepare?: (env: Env) => void;
  message: RegExp;
};

const cases: Case[] = [
  { name: 'traversal ../x', entries: () => [{ name: '../sentinel/x', body: 'pwned' }], message: /invalid entry name "..\/sentinel\/x"/ },
  { name: 'traversal a/../../x', entries: () => [{ name: 'a/../../sentinel/x', body: 'pwned' }], message: /points outside the layer/ },
  { name: 'traversal in a PAX path', entries: () => [{ name: 'ok', body: 'x', pax: { path: '../sentinel/p' } }], message: /points outside/ },
  {
    name: 'symlink (absolute) then write through it',
    entries: (e) => [{ name: 'evil', type: '2', linkname: e.sentinel }, { name: 'evil/x', body: 'pwned' }],
    message: /parent "evil" is a symlink/,
  },
  {
    name: 'symlink (relative) then write through it',
    entries: () => [{ name: 'evil', type: '2', linkname: '../sentinel' }, { name: 'evil/x', body: 'pwned' }],
    message: /is a symlink/,
  },
  {
    name: 'symlink in a deeper parent chain',
    entries: () => [{ name: 'a/' }, { name: 'a/b', type: '2', linkname: '../../sentinel' }, { name: 'a/b/c/d', body: 'pwned' }],
    message: /parent "a\/b" is a symlink/,
  },
  {
    name: 'symlink then directory below it',
    entries: (e) => [{ name: 'evil', type: '2', linkname: e.sentinel }, { name: 'evil/sub/' }],
    message: /is a symlink/,
  },
  {
    name: 'hard link to /etc/passwd',
    entries: () => [{ name: 'passwd', type: '1', linkname: '/etc/passwd' }],
    message: /invalid hard link "passwd" -> "\/etc\/passwd": the target does not exist/,
  },
  {
    name: 'hard link to ../outside',
    entries: () => [{ name: 'h', type: '1', linkname: '../outside.txt' }],
    message: /invalid hard link target "..\/outside.txt"/,
  },
  {
    name: 'hard link through a symlinked directory',
    entries: (e) => [{ name: 'l', type: '2', linkname: e.base }, { name: 'h', type: '1', linkname: 'l/outside.txt' }],
    message: /parent "l" is a symlink/,
  },
  {
    name: 'hard link to a directory',
    entries: () => [{ name: 'd/' }, { name: 'h', type: '1', linkname: 'd' }],
    message: /target is a directory/,
  },
  {
    name: 'overlay opaque xattr from the tar',
    entries: () => [{ name: 'd/', xattrs: { 'trusted.overlay.opaque': 'y' } }],
    message: /refusing xattr "trusted.overlay.opaque"/,
  },
  {
    name: 'user.overlay xattr from the tar',
    entries: () => [{ name: 'f', body: 'x', xattrs: { 'user.overlay.redirect': '/x' } }],
    message: /refusing xattr "user.overlay.redirect"/,
  },
  {
    name: 'char device 0:0 from the tar',
    entries: () => [{ name: 'wh', type: '3', devmajor: 0, devminor: 0 }],
    message: /refusing char device 0:0 "wh"/,
  },
  { name: 'bare .wh. whiteout', entries: () => [{ name: 'd/.wh.', body: '' }], message: /invalid whiteout entry "d\/.wh."/ },
  { name: '.wh... whiteout (parent)', entries: () => [{ name: 'd/.wh...', body: '' }], message: /invalid whiteout entry/ },
  { name: 'whiteout above the root', entries: () => [{ name: '../.wh.sentinel', body: '' }], message: /points outside/ },
  {
    name: 'delete-mode whiteout through a symlink',
    whiteouts: 'delete',
    entries: (e) => [{ name: 'evil', type: '2', linkname: e.base }, { name: 'evil/.wh.sentinel', body: '' }],
    message: /parent "evil" is a symlink/,
  },
  {
    name: 'delete-mode opaque through a symlink',
    whiteouts: 'delete',
    entries: (e) => [{ name: 'evil', type: '2', linkname: e.base }, { name: 'evil/.wh..wh..opq', body: '' }],
    message: /is a symlink/,
  },
  {
    name: 'pre-existing symlink in the target (delete mode parent tree)',
    whiteouts: 'delete',
    prepare: (e) => symlinkSync(e.sentinel, join(e.target, 'lnk')),
    entries: () => [{ name: 'lnk/x', body: 'pwned' }],
    message: /parent "lnk" is a symlink/,
  },
  { name: 'NUL hidden in a PAX path', entries: () => [{ name: 'f', body: '', pax: { path: 'ok\0../../x' } }], message: /NUL byte in PAX path/ },
  { name: 'PAX (GNU 1.0) sparse entry', entries: () => [{ name: 'f', body: 'x', pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0' } }], message: /sparse files are not supported/ },
  { name: 'GNU sparse entry', entries: () => [{ name: 'sparse', type: 'S', body: 'x' }], message: /sparse files are not supported/ },
  { name: 'unknown typeflag', entries: () => [{ name: 'v', type: 'V', body: '' }], message: /unhandled tar header type 86/ },
  { name: 'non-directory named like the root', entries: () => [{ name: './', type: '0', body: '' }], message: /only a directory may name the layer root/ },
  {
    name: 'truncated inside a payload',
    entries: () => [],
    tar: () => buildTar([{ name: 'f', body: Buffer.alloc(5000, 1) }]).subarray(0, 512 + 3000),
    message: /truncated/,
  },
  {
    name: 'truncated inside a header',
    entries: () => [],
    tar: () => buildTar([{ name: 'f', body: 'x' }, { name: 'g', body: 'y' }]).subarray(0, 1024 + 100),
    message: /truncated/,
  },
  {
    name: 'bad checksum',
    entries: () => [],
    tar: () => buildTar([{ name: 'f', body: 'x', checksum: 1234 }]),
    message: /checksum mismatch/,
  },
  {
    name: 'zero block followed by data',
    entries: () => [],
    tar: () => Buffer.concat([Buffer.alloc(512), buildTar([{ name: 'f', body: 'x' }])]),
    message: /data after a zero block/,
  },
  {
    name: 'too many entries',
    limits: { maxEntries: 3 },
    entries: () => ['a', 'b', 'c', 'd', 'e'].map((n) => ({ name: n, body: '' })),
    message: /more than 3 entries/,
  },
  {
    name: 'too many bytes',
    limits: { maxBytes: 4096 },
    entries: () => [{ name: 'big', body: Buffer.alloc(100_000) }],
    message: /larger than the limit of 4096 bytes/,
  },
  {
    name: 'path too long',
    limits: { maxPathLength: 64 },
    entries: () => [{ name: `${'d'.repeat(50)}/${'f'.repeat(50)}`, body: '' }],
    message: /longer than 64 bytes/,
  },
  {
    name: 'PAX header too large',
    limits: { maxPaxSize: 1024 },
    entries: () => [{ name: 'f', body: '', pax: { comment: 'c'.repeat(4000) } }],
    message: /exceeds the limit/,
  },
];

describe('unpackLayer refuses hostile archives', () => {
  for (const c of cases) {
    it(c.name, async (t) => {
      const env = setup(t);
      c.prepare?.(env);
      const tar = c.tar ? c.tar(env) : buildTar(c.entries(env));
      await assert.rejects(
        unpackLayer(Readable.from([tar]), { target: env.target, whiteouts: c.whiteouts ?? 'overlay', limits: c.limits }),
        (err: unknown) => {
          assert.ok(err instanceof InvalidArchiveError, `expected InvalidArchiveError, got ${String(err)}`);
          assert.match((err as Error).message, c.message);
          return true;
        },
      );
      assertOutsideUntouched(env);
    });
  }
});

describe('unpackLayer confines what it accepts', () => {
  it('refuses absolute entry names (Docker rebases them; strata is strict)', async (t) => {
    const env = setup(t);
    const abs = join(env.sentinel, 'x');
    for (const name of [abs, '/etc/strata-test']) {
      await assert.rejects(
        unpackLayer(Readable.from([buildTar([{ name: 'ok', body: 'fine' }, { name, body: 'inside' }])]), { target: env.target, whiteouts: 'overlay' }),
        (err: Error) => err instanceof InvalidArchiveError && /absolute paths are not allowed/.test(err.message),
      );
    }
    assert.equal(existsSync('/etc/strata-test'), false);
    assertOutsideUntouched(env);
  });

  it('rebases absolute hard link targets into the target', async (t) => {
    const env = setup(t);
    await unpackLayer(Readable.from([buildTar([{ name: 'a', body: 'A' }, { name: 'b', type: '1', linkname: '/a' }])]), { target: env.target, whiteouts: 'overlay' });
    assert.equal(statSync(join(env.target, 'b')).ino, statSync(join(env.target, 'a')).ino);
    assertOutsideUntouched(env);
  });

  it('replaces a symlink with a file instead of writing through it', async (t) => {
    const env = setup(t);
    await unpackLayer(Readable.from([buildTar([
      { name: 'f', type: '2', linkname: env.outside },
      { name: 'g', type: '2', linkname: '../outside.txt' },
    ])]), { target: env.target, whiteouts: 'delete' });
    await unpackLayer(Readable.from([buildTar([{ name: 'f', body: 'new' }, { name: 'g', body: 'new' }])]), { target: env.target, whiteouts: 'delete' });
    assert.equal(lstatSync(join(env.target, 'f')).isFile(), true);
    assert.equal(readFileSync(join(env.target, 'g'), 'utf8'), 'new');
    assertOutsideUntouched(env);
  });

  it('keeps symlink targets verbatim (they are never followed while applying)', async (t) => {
    const env = setup(t);
    await unpackLayer(Readable.from([buildTar([{ name: 'up', type: '2', linkname: '../../../../etc' }])]), { target: env.target, whiteouts: 'overlay' });
    assert.equal(lstatSync(join(env.target, 'up')).isSymbolicLink(), true);
    assertOutsideUntouched(env);
  });

  it('a hard link to a file of this layer works; the shared inode is linked, not copied', async (t) => {
    const env = setup(t);
    await unpackLayer(Readable.from([buildTar([{ name: 'a', body: 'data' }, { name: 'sub/b', type: '1', linkname: '/a' }])]), { target: env.target, whiteouts: 'overlay' });
    assert.equal(statSync(join(env.target, 'a')).ino, statSync(join(env.target, 'sub/b')).ino);
    assertOutsideUntouched(env);
  });

  it('errors are InvalidArchiveError (a StrataError with a stable code)', async (t) => {
    const env = setup(t);
    const err = await unpackLayer(Readable.from([buildTar([{ name: '../x', body: '' }])]), { target: env.target, whiteouts: 'overlay' }).catch((e: unknown) => e);
    assert.ok(err instanceof StrataError);
    assert.equal((err as StrataError).code, 'ERR_INVALID_ARCHIVE');
  });
});
