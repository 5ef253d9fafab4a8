/**
 * Acceptance (f): hostile archives. Each must make `strata load` exit non-zero with a clear
 * message (no stack trace), write nothing outside the data root (sentinel dir, cwd, TMPDIR,
 * host paths), and leave the store exactly as it was: same images, no new layerdb entries,
 * no driver dirs, no staging leftovers, no mounts — for both drivers.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildFixtures, buildHostileFixtures, readFileSyncSafe, snapshotTree, type Fixture, type HostileFixture,
} from '../helpers/fixtures.js';
import {
  makeTempRoot, mountsUnder, releaseTempRoot, rootSkipReason, strata, strataSkipReason,
} from '../helpers/strata-cli.js';

const skip = rootSkipReason() ?? strataSkipReason();

/** Names fixed here so the test list is known before the fixtures are built. */
const HOSTILE = [
  'manifest-traversal', 'config-traversal', 'manifest-absolute', 'layer-dotdot', 'layer-absolute',
  'symlink-absolute', 'symlink-relative', 'hardlink-passwd', 'hardlink-escape', 'whiteout-device',
  'overlay-xattr', 'diffid-mismatch', 'truncated-layer', 'second-layer-truncated', 'corrupt-gzip-layer',
  'bad-header-checksum', 'missing-layer', 'missing-manifest', 'config-not-json', 'truncated-archive', 'layer-count-mismatch',
];

interface StoreState {
  images: string;
  layers: string[];
  imagedb: string[];
  driverDirs: string[];
  links: string[];
  repositories: string | undefined;
  staging: string[];
}

function ls(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

for (const driver of ['overlay2', 'vfs'] as const) {
  describe(`hostile archives (${driver})`, { skip }, () => {
    let tmp: string;
    let root: string;
    let sentinel: string;
    let cwd: string;
    let tmpdir: string;
    let good: Fixture;
    let hostile: HostileFixture[] = [];
    let baseline: StoreState;
    let topLevel: string[];
    let passwdLinks: number;

    const state = async (): Promise<StoreState> => {
      const r = await strata(['images', '-q', '--no-trunc'], { root, driver });
      assert.equal(r.code, 0, `strata images failed: ${r.stderr}`);
      const imageRoot = join(root, 'image', driver);
      const home = driver === 'overlay2' ? join(root, 'overlay2') : join(root, 'vfs', 'dir');
      return {
        images: r.stdout.split('\n').filter(Boolean).sort().join('\n'),
        layers: ls(join(imageRoot, 'layerdb', 'sha256')),
        imagedb: ls(join(imageRoot, 'imagedb', 'content', 'sha256')),
        driverDirs: ls(home).filter((n) => n !== 'l'),
        links: driver === 'overlay2' ? ls(join(home, 'l')) : [],
        repositories: readFileSyncSafe(join(imageRoot, 'repositories.json')),
        staging: ls(join(imageRoot, 'layerdb', 'tmp')),
      };
    };

    before(async () => {
      tmp = makeTempRoot(`e2e-hostile-${driver}-`);
      root = join(tmp, 'root');
      sentinel = join(tmp, 'sentinel');
      cwd = join(tmp, 'cwd');
      tmpdir = join(tmp, 'tmpdir');
      for (const d of [sentinel, cwd, tmpdir]) mkdirSync(d, { recursive: true });
      writeFileSync(join(sentinel, 'secret'), 'do not link me\n');
      [good] = buildFixtures(join(tmp, 'good'), ['multi']) as [Fixture];
      hostile = buildHostileFixtures(join(tmp, 'hostile'), sentinel, good.images[0]!);
      const r = await strata(['load', '-i', good.file], { root, driver });
      assert.equal(r.code, 0, `loading the good fixture failed: ${r.stderr}`);
      baseline = await state();
      topLevel = ls(tmp);
      passwdLinks = statSync('/etc/passwd').nlink;
    });

    after(() => releaseTempRoot(tmp));

    for (const name of HOSTILE) {
      it(`${name}: refused cleanly, nothing written outside the root, store unchanged`, async () => {
        const h = hostile.find((x) => x.name === name);
        assert.ok(h, `hostile fixture ${name} was not built`);
        const sentinelBefore = snapshotTree(sentinel);
        const stateBefore = await state();
        const r = await strata(['load', '-i', h.file], { root, driver, cwd, env: { ...process.env, TMPDIR: tmpdir } });
        assert.equal(r.signal, null, `strata died from ${r.signal}`);
        assert.notEqual(r.code, 0, `strata accepted a hostile archive:\n${r.stdout}`);
        assert.ok(r.stderr.trim().length > 0, 'an error message on stderr');
        assert.doesNotMatch(r.stderr, /\n\s+at .+[:(]\d+/, `stack trace instead of a clear message:\n${r.stderr}`);
        assert.match(r.stderr, h.message, `message does not say what is wrong:\n${r.stderr}`);
        // nothing outside the data root
        assert.deepEqual(snapshotTree(sentinel), sentinelBefore, 'sentinel dir changed');
        assert.equal(statSync(join(sentinel, 'secret')).nlink, 1, 'a hard link to the sentinel file was made');
        assert.equal(statSync('/etc/passwd').nlink, passwdLinks, 'a hard link to /etc/passwd was made');
        for (const p of h.mustNotExist) assert.ok(!existsSync(p), `${p} was created`);
        assert.deepEqual(ls(cwd), [], 'files written into the working directory');
        assert.deepEqual(ls(tmpdir), [], 'files left in TMPDIR');
        assert.deepEqual(ls(tmp), topLevel, 'new entries next to the data root');
        assert.deepEqual(mountsUnder(root), [], 'mounts left under the data root');
        // the store is exactly as before, without waiting for a later cleanup
        const layerdbTmp = ls(join(root, 'image', driver, 'layerdb', 'tmp'));
        assert.deepEqual(layerdbTmp, [], 'staging left in layerdb/tmp');
        const now = await state();
        assert.deepEqual(now, stateBefore, 'store changed');
        // the good image is intact (its base layer may have been shared with the hostile one)
        const ins = await strata(['image', 'inspect', good.images[0]!.id], { root, driver });
        assert.equal(ins.code, 0, ins.stderr);
        const save = await strata(['save', '-o', join(tmpdir, 'check.tar'), good.images[0]!.id], { root, driver });
        assert.equal(save.code, 0, `the good image can no longer be saved: ${save.stderr}`);
        const bytes = readFileSync(join(tmpdir, 'check.tar'));
        assert.ok(bytes.length > 0);
        for (const n of ls(tmpdir)) rmSync(join(tmpdir, n), { recursive: true, force: true });
      });
    }

    it('an archive on stdin that is not a tar is refused cleanly', async () => {
      const r = await strata(['load'], { root, driver, cwd, input: Buffer.from('this is not an archive at all\n'.repeat(100)) });
      assert.notEqual(r.code, 0);
      assert.ok(r.stderr.trim().length > 0);
      assert.doesNotMatch(r.stderr, /\n\s+at .+[:(]\d+/);
      assert.deepEqual(await state(), baseline, 'store changed (compared with the state after loading the good image)');
    });
  });
}
