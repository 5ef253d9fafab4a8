/**
 * FileTree resolution: members of an indexed tar (and of a directory) are reached only inside
 * the archive — links inside are followed, paths and links that lead out are refused.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { InvalidArchiveError } from '../../src/errors.js';
import { openDirTree, openTarTree, readTreeFile, resolveFile } from '../../src/transfer/file-tree.js';
import { buildTar } from '../helpers/fixtures.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'strata-tree-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function tarTree(t: TestContext, entries: Parameters<typeof buildTar>[0]) {
  const file = path.join(await tempDir(t), 'a.tar');
  await writeFile(file, buildTar(entries));
  return openTarTree(file);
}

test('tar members are byte ranges; symlinks and hard links inside the archive are followed', async (t) => {
  const tree = await tarTree(t, [
    { name: 'one/', type: 'dir' },
    { name: 'one/layer.tar', data: 'LAYER-ONE-BYTES' },
    { name: 'two/', type: 'dir' },
    { name: 'two/layer.tar', type: 'symlink', linkname: '../one/layer.tar' },
    { name: 'three/layer.tar', type: 'hardlink', linkname: 'one/layer.tar' },
    { name: './dot/x', data: 'dot-slash names are the same members' },
  ]);
  for (const p of ['one/layer.tar', 'two/layer.tar', 'three/layer.tar', './two/../one/layer.tar']) {
    const f = await resolveFile(tree, p, 'layer');
    assert.equal((await readTreeFile(f)).toString(), 'LAYER-ONE-BYTES', p);
    assert.equal(f.size, 15);
  }
  assert.equal((await resolveFile(tree, 'two/layer.tar', 'layer')).resolved, 'one/layer.tar');
  assert.equal((await readTreeFile(await resolveFile(tree, 'dot/x', 'x'))).toString(), 'dot-slash names are the same members');
});

test('paths and links leading out of the archive are refused, never followed on the host', async (t) => {
  const tree = await tarTree(t, [
    { name: 'ok', data: 'x' },
    { name: 'abs-link', type: 'symlink', linkname: '/etc/passwd' },
    { name: 'd/', type: 'dir' },
    { name: 'd/up', type: 'symlink', linkname: '../../etc/passwd' },
    { name: 'hard-out', type: 'hardlink', linkname: '../../etc/passwd' },
    { name: 'loop', type: 'symlink', linkname: 'loop' },
    { name: 'dir-link', type: 'symlink', linkname: 'd' },
    { name: 'file-as-dir', data: 'y' },
  ]);
  const cases: Array<[string, RegExp]> = [
    ['/etc/passwd', /is absolute/],
    ['../../etc/passwd', /points outside the archive/],
    ['abs-link', /leads outside the archive/],
    ['d/up', /leads outside the archive/],
    ['hard-out', /leads outside the archive/],
    ['loop', /too many levels/],
    ['missing/layer.tar', /not found/],
    ['file-as-dir/x', /is not a directory/],
    ['d', /does not name a regular file/],
    ['dir-link/up', /leads outside the archive/],
    ['', /is empty/],
  ];
  for (const [p, re] of cases) {
    await assert.rejects(resolveFile(tree, p, 'layer'), (err: unknown) => {
      assert.ok(err instanceof InvalidArchiveError, `${p}: ${String(err)}`);
      assert.match(err.message, re, p);
      return true;
    });
  }
});

test('a directory tree follows its own symlinks but not ones leading to the host', async (t) => {
  const dir = await tempDir(t);
  await mkdir(path.join(dir, 'blobs'));
  await writeFile(path.join(dir, 'blobs', 'data'), 'inside');
  await symlink('data', path.join(dir, 'blobs', 'alias'));
  await symlink('/etc/passwd', path.join(dir, 'escape'));
  await symlink('../../../../../../../etc', path.join(dir, 'up'));
  const tree = openDirTree(dir);
  assert.equal((await readTreeFile(await resolveFile(tree, 'blobs/alias', 'blob'))).toString(), 'inside');
  await assert.rejects(resolveFile(tree, 'escape', 'blob'), /leads outside the archive/);
  await assert.rejects(resolveFile(tree, 'up/passwd', 'blob'), /leads outside the archive/);
});

test('readTreeFile refuses members larger than its limit', async (t) => {
  const tree = await tarTree(t, [{ name: 'big', data: Buffer.alloc(2000) }]);
  await assert.rejects(readTreeFile(await resolveFile(tree, 'big', 'manifest'), 1000), /larger than 1000/);
});
