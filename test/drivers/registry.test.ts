// Driver selection (Docker's rules, facts §7.1) and the overlay probes, including a real
// filesystem without d_type (ext4 made with -O ^filetype on a loop device).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';

import { overlay2 } from '../../src/drivers/overlay2.js';
import { drivers, selectDriver } from '../../src/drivers/registry.js';
import { mountsUnder, unmount } from '../../src/sys/mount.js';

const privileged = process.getuid?.() === 0 ? false : 'needs root (overlay probe mounts)';
const overlayHere = privileged || ((await overlay2.probe(os.tmpdir())).ok ? false : 'overlay2 is not supported on the temp fs');

async function tempRoot(t: TestContext): Promise<string> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'strata-registry-'));
  t.after(async () => {
    for (const m of await mountsUnder(tmp)) await unmount(m, { detach: true });
    await rm(tmp, { recursive: true, force: true });
  });
  return tmp;
}

/** A loop-mounted ext4 without the filetype feature: readdir reports DT_UNKNOWN. */
async function noDTypeRoot(t: TestContext): Promise<string | undefined> {
  const tmp = await tempRoot(t);
  const image = path.join(tmp, 'fs.img');
  const mnt = path.join(tmp, 'mnt');
  try {
    execFileSync('truncate', ['-s', '64M', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-O', '^filetype', image], { stdio: 'ignore' });
    await mkdir(mnt);
    execFileSync('mount', ['-o', 'loop', image, mnt]);
  } catch (err) {
    t.skip(`cannot build a filesystem without d_type here: ${(err as Error).message}`);
    return undefined;
  }
  return mnt;
}

test('the registry is an explicit map of factories', () => {
  assert.deepEqual(Object.keys(drivers), ['overlay2', 'vfs']);
  for (const [name, factory] of Object.entries(drivers)) assert.equal(factory.name, name);
});

test('an explicit driver is used as asked, without fallback', { skip: overlayHere }, async (t) => {
  const root = path.join(await tempRoot(t), 'root');
  const v = await selectDriver(root, 'vfs');
  assert.equal(v.driver.name, 'vfs');
  assert.equal(v.reason, 'requested: vfs');
  const o = await selectDriver(root, 'overlay2');
  assert.equal(o.driver.name, 'overlay2');
  assert.equal(o.driver.home, path.join(root, 'overlay2'));
});

test('unknown, foreign and removed driver names fail with Docker-style messages', async (t) => {
  const root = path.join(await tempRoot(t), 'root');
  await assert.rejects(selectDriver(root, 'nope'), { code: 'ERR_INVALID_ARGUMENT', message: 'no such storage driver: nope' });
  await assert.rejects(selectDriver(root, 'btrfs'), {
    code: 'ERR_NOT_SUPPORTED',
    message: 'error initializing graphdriver: driver not supported: btrfs',
  });
  await assert.rejects(selectDriver(root, 'aufs'), {
    code: 'ERR_NOT_SUPPORTED',
    message:
      '[graphdriver] ERROR: the aufs storage-driver has been deprecated and removed; visit https://docs.docker.com/go/storage-driver/ for more information',
  });
});

test('auto-selection prefers prior state, ignores vfs state, else probes', { skip: overlayHere }, async (t) => {
  const tmp = await tempRoot(t);

  const fresh = path.join(tmp, 'fresh');
  const auto = await selectDriver(fresh);
  assert.equal(auto.driver.name, 'overlay2');
  assert.match(auto.reason, /^auto: overlay2/);

  // Docker does not count vfs state as a prior choice.
  const vfsOnly = path.join(tmp, 'vfs-only');
  await mkdir(path.join(vfsOnly, 'vfs', 'dir', 'x'), { recursive: true });
  assert.equal((await selectDriver(vfsOnly)).driver.name, 'overlay2');

  const prior = path.join(tmp, 'prior');
  await (await drivers.overlay2.open(prior)).prepare('layer');
  const again = await selectDriver(prior);
  assert.equal(again.driver.name, 'overlay2');
  assert.equal(again.reason, `prior state: ${path.join(prior, 'overlay2')} is not empty`);

  // An empty home is no prior state.
  const empty = path.join(tmp, 'empty');
  await mkdir(path.join(empty, 'overlay2'), { recursive: true });
  assert.match((await selectDriver(empty)).reason, /^auto: /);
});

test('without d_type: overlay2 refuses with Docker message, auto picks vfs', { skip: privileged }, async (t) => {
  const mnt = await noDTypeRoot(t);
  if (!mnt) return;
  const root = path.join(mnt, 'root');
  const probe = await overlay2.probe(root);
  assert.equal(probe.ok, false);
  assert.match(
    (probe as { reason: string }).reason,
    /^the backing extfs filesystem is formatted without d_type support, which leads to incorrect behavior\./,
  );
  await assert.rejects(selectDriver(root, 'overlay2'), {
    code: 'ERR_NOT_SUPPORTED',
    message: /^error initializing graphdriver: driver not supported: overlay2: the backing extfs filesystem is formatted without d_type/,
  });
  const auto = await selectDriver(root);
  assert.equal(auto.driver.name, 'vfs');
  assert.match(auto.reason, /^auto: vfs .*skipped overlay2: the backing extfs filesystem/);
  // Probes leave no scratch dirs behind.
  assert.deepEqual((await readdir(root)).sort(), ['vfs']);

  // Prior overlay2 state on such a filesystem is fatal, never a silent switch to vfs.
  await mkdir(path.join(root, 'overlay2', 'l'), { recursive: true });
  await writeFile(path.join(root, 'overlay2', 'l', 'x'), '');
  await assert.rejects(selectDriver(root), { code: 'ERR_NOT_SUPPORTED', message: /^error initializing graphdriver: driver not supported: overlay2: / });
});
