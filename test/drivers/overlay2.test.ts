// overlay2: the shared conformance suite, then what only overlay2 promises — Docker's exact
// on-disk layout, mount options, GraphDriver.Data and `docker info` status.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';

import type { Driver } from '../../src/drivers/driver.js';
import { OVERLAY_MAX_DEPTH, overlay2 } from '../../src/drivers/overlay2.js';
import { cases, runDriverSuite } from '../../src/drivers/testsuite/index.js';
import { backingFilesystem } from '../../src/sys/fs.js';
import { randomId } from '../../src/sys/ids.js';
import { mountAll, mountsUnder, unmount } from '../../src/sys/mount.js';

/** Why overlay2 cannot be tested here (not root, no kernel overlay on the temp fs), or false. */
async function overlayGap(): Promise<string | false> {
  if (process.getuid?.() !== 0) return 'needs root (real overlay mounts)';
  const probe = await overlay2.probe(os.tmpdir());
  return probe.ok ? false : `overlay2 is not supported under ${os.tmpdir()}: ${probe.reason}`;
}
const privileged = await overlayGap();

runDriverSuite({
  name: 'overlay2',
  open: (root) => overlay2.open(root),
  skip: privileged ? [{ reason: privileged, tests: cases.map((c) => c.name) }] : [],
});

/** A driver on a fresh data root; everything is unmounted and deleted after the test. */
async function fresh(t: TestContext): Promise<{ driver: Driver; root: string; tmp: string }> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'strata-overlay2-'));
  t.after(async () => {
    for (const m of await mountsUnder(tmp)) await unmount(m, { detach: true });
    await rm(tmp, { recursive: true, force: true });
  });
  const root = path.join(tmp, 'root');
  return { driver: await overlay2.open(root), root, tmp };
}

async function mode(p: string): Promise<number> {
  return (await lstat(p)).mode & 0o7777;
}

const LID = /^[A-Z2-7]{26}$/;

test('on-disk layout is Docker overlay2', { skip: privileged }, async (t) => {
  const { driver } = await fresh(t);
  const home = driver.home;
  assert.equal(await mode(home), 0o710);
  assert.equal(await mode(path.join(home, 'l')), 0o700);

  const base = randomId();
  const mid = randomId();
  const top = `${randomId()}-init`;
  await driver.prepare(base);
  const baseDir = path.join(home, base);
  assert.deepEqual((await readdir(baseDir)).sort(), ['diff', 'link']);
  assert.equal(await mode(baseDir), 0o710);
  assert.equal(await mode(path.join(baseDir, 'diff')), 0o755);
  assert.equal(await mode(path.join(baseDir, 'link')), 0o644);
  const baseLid = await readFile(path.join(baseDir, 'link'), 'utf8');
  assert.match(baseLid, LID);
  assert.equal(await readlink(path.join(home, 'l', baseLid)), `../${base}/diff`);

  await driver.commit(base);
  assert.deepEqual((await readdir(baseDir)).sort(), ['committed', 'diff', 'link']);
  assert.equal(await mode(path.join(baseDir, 'committed')), 0o600);
  assert.equal((await lstat(path.join(baseDir, 'committed'))).size, 0);

  await driver.prepare(mid, base);
  const midDir = path.join(home, mid);
  assert.deepEqual((await readdir(midDir)).sort(), ['diff', 'link', 'lower', 'work']);
  assert.equal(await readFile(path.join(midDir, 'lower'), 'utf8'), `l/${baseLid}`);
  assert.equal(await mode(path.join(midDir, 'lower')), 0o644);
  assert.equal(await mode(path.join(midDir, 'work')), 0o700);
  const midLid = await readFile(path.join(midDir, 'link'), 'utf8');
  await driver.commit(mid);

  await driver.prepare(top, mid);
  assert.equal(await readFile(path.join(home, top, 'lower'), 'utf8'), `l/${midLid}:l/${baseLid}`);
  assert.deepEqual((await readdir(path.join(home, 'l'))).length, 3);
  assert.deepEqual(await driver.list(), [base, mid, top].sort());
  assert.equal(driver.layerDir(mid), path.join(home, mid, 'diff'));
  assert.equal(driver.mountpoint(top), path.join(home, top, 'merged'));
});

test('a parent Docker never marked committed gets the marker when a child is prepared', { skip: privileged }, async (t) => {
  const { driver } = await fresh(t);
  const base = randomId();
  await driver.prepare(base);
  assert.equal(existsSync(path.join(driver.home, base, 'committed')), false);
  await driver.prepare(randomId(), base);
  assert.equal(await mode(path.join(driver.home, base, 'committed')), 0o600);
});

test('mount options: index=off, absolute l/ paths, diff first in views', { skip: privileged }, async (t) => {
  const { driver } = await fresh(t);
  const home = driver.home;
  const prefix = existsSync('/sys/module/overlay/parameters/index') ? ['index=off'] : [];
  const [a, b, c] = [randomId(), randomId(), randomId()];
  await driver.prepare(a);
  assert.deepEqual(await driver.mounts(a), [{ type: 'bind', source: path.join(home, a, 'diff'), options: ['bind'] }]);
  await driver.commit(a);
  assert.deepEqual(await driver.view(a), [{ type: 'bind', source: path.join(home, a, 'diff'), options: ['bind', 'ro'] }]);
  await driver.prepare(b, a);
  await driver.commit(b);
  await driver.prepare(c, b);
  const lidA = await readFile(path.join(home, a, 'link'), 'utf8');
  const lidB = await readFile(path.join(home, b, 'link'), 'utf8');
  assert.deepEqual(await driver.mounts(c), [
    {
      type: 'overlay',
      source: 'overlay',
      options: [
        ...prefix,
        `lowerdir=${home}/l/${lidB}:${home}/l/${lidA}`,
        `upperdir=${home}/${c}/diff`,
        `workdir=${home}/${c}/work`,
      ],
    },
  ]);
  const roB = [{ type: 'overlay', source: 'overlay', options: [...prefix, `lowerdir=${home}/${b}/diff:${home}/l/${lidA}`] }];
  assert.deepEqual(await driver.view(b), roB);
  // Like Docker's Get, a committed snapshot only ever mounts read-only.
  assert.deepEqual(await driver.mounts(b), roB);
  // mounts()/view() make the mount point, as Docker's Get does.
  assert.equal(await mode(path.join(home, c, 'merged')), 0o700);
});

test('128 lowers exceed a page of options and still mount; 129 are refused', { skip: privileged }, async (t) => {
  const { driver, tmp } = await fresh(t);
  let parent: string | undefined;
  for (let i = 0; i <= OVERLAY_MAX_DEPTH; i++) {
    const id = randomId();
    await driver.prepare(id, parent);
    await writeFile(path.join(driver.layerDir(id), `f${i}`), String(i));
    await driver.commit(id);
    parent = id;
  }
  const lower = await readFile(path.join(driver.home, parent!, 'lower'), 'utf8');
  assert.equal(lower.split(':').length, OVERLAY_MAX_DEPTH);
  const view = await driver.view(parent!);
  assert.ok(view[0]!.options.join(',').length > 4095, 'absolute options exceed one page');
  const target = path.join(tmp, 'mnt');
  await mkdir(target);
  await mountAll(view, target);
  try {
    assert.equal((await readdir(target)).length, OVERLAY_MAX_DEPTH + 1);
    assert.equal(await readFile(path.join(target, 'f0'), 'utf8'), '0');
  } finally {
    await unmount(target);
  }
  const before = (await readdir(path.join(driver.home, 'l'))).length;
  const tooDeep = randomId();
  await assert.rejects(driver.prepare(tooDeep, parent), { message: 'max depth exceeded' });
  assert.equal(existsSync(path.join(driver.home, tooDeep)), false);
  assert.equal((await readdir(path.join(driver.home, 'l'))).length, before);
});

test('metadata() is GraphDriver.Data with resolved lower dirs', { skip: privileged }, async (t) => {
  const { driver } = await fresh(t);
  const home = driver.home;
  const [a, b, c] = [randomId(), randomId(), randomId()];
  await driver.prepare(a);
  await driver.commit(a);
  await driver.prepare(b, a);
  await driver.commit(b);
  await driver.prepare(c, b);
  const base = await driver.metadata(a);
  assert.deepEqual(Object.keys(base), ['MergedDir', 'UpperDir', 'WorkDir']);
  assert.deepEqual(base, { MergedDir: `${home}/${a}/merged`, UpperDir: `${home}/${a}/diff`, WorkDir: `${home}/${a}/work` });
  const top = await driver.metadata(c);
  assert.deepEqual(Object.keys(top), ['LowerDir', 'MergedDir', 'UpperDir', 'WorkDir']);
  assert.equal(top.LowerDir, `${home}/${b}/diff:${home}/${a}/diff`);
  assert.equal(top.UpperDir, `${home}/${c}/diff`);
});

test('status() lists Docker 20.10 pairs in order', { skip: privileged }, async (t) => {
  const { driver } = await fresh(t);
  const status = await driver.status();
  assert.deepEqual(
    status.map(([k]) => k),
    ['Backing Filesystem', 'Supports d_type', 'Native Overlay Diff', 'userxattr'],
  );
  assert.deepEqual(status[0], ['Backing Filesystem', await backingFilesystem(driver.home)]);
  assert.deepEqual(status[1], ['Supports d_type', 'true']);
  assert.deepEqual(status[2], ['Native Overlay Diff', String(driver.capabilities.nativeDiff)]);
  assert.deepEqual(status[3], ['userxattr', 'false']);
  // Without redirect_dir, renaming a lower dir gives EXDEV and upper dirs are plain diffs.
  const redirect = await readFile('/sys/module/overlay/parameters/redirect_dir', 'utf8').catch(() => '');
  if (redirect.trim() === 'N') assert.equal(driver.capabilities.nativeDiff, true);
  // The probes clean up after themselves.
  assert.deepEqual((await readdir(driver.home)).filter((n) => n.startsWith('.')), []);
});

test('remove finds the short link of a snapshot whose link file is gone', { skip: privileged }, async (t) => {
  const { driver } = await fresh(t);
  const [keep, broken] = [randomId(), randomId()];
  await driver.prepare(keep);
  await driver.prepare(broken);
  const keepLid = await readFile(path.join(driver.home, keep, 'link'), 'utf8');
  await unlink(path.join(driver.home, broken, 'link'));
  await driver.remove(broken);
  assert.deepEqual(await readdir(path.join(driver.home, 'l')), [keepLid]);
  // A link file naming someone else's short link must not take it down.
  const liar = randomId();
  await driver.prepare(liar);
  await writeFile(path.join(driver.home, liar, 'link'), keepLid);
  await driver.remove(liar);
  assert.deepEqual(await readdir(path.join(driver.home, 'l')), [keepLid]);
  assert.equal(await readlink(path.join(driver.home, 'l', keepLid)), `../${keep}/diff`);
});
