/**
 * Checks the yardsticks themselves against the real dockerd, without strata: the fixtures
 * written by our own tar/archive writer load into Docker with the IDs we compute, our model
 * of what a layer tar leaves in an overlay2 `diff` dir matches Docker's dirs exactly, the
 * merged overlay view we mount matches `docker export`, and the hostile archives are hostile
 * in the way we claim (Docker rejects or confines each). If these fail, the strata
 * comparisons would be meaningless.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  T0, buildFixtures, buildHostileFixtures, buildTar, diffTrees, expectedOverlayLayer, isWhiteoutNode, layerTar,
  mountView, parseTar, readXattrs, sha256, snapshotTree, treeFromTar, walkLayout, type Fixture, type HostileFixture,
} from '../helpers/fixtures.js';
import { Dockerd, dockerSkipReason } from '../helpers/docker.js';
import { makeTempRoot, releaseTempRoot, rootSkipReason, run } from '../helpers/strata-cli.js';

const INIT_PATHS = ['.dockerenv', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'etc/mtab', 'dev/console', 'dev/pts', 'dev/shm', 'proc', 'sys'];

/** What Docker 20.10 does with each hostile archive: refuse it, or load it with paths confined. */
const DOCKER_CONFINES = new Set(['layer-dotdot', 'layer-absolute', 'whiteout-device', 'overlay-xattr']);

describe('tar writer and reader', () => {
  it('GNU tar lists what buildTar wrote (ustar, PAX long names, GNU long names, links)', { skip: rootSkipReason() }, async () => {
    const tmp = makeTempRoot('fx-tar-');
    try {
      const long = 'd/' + 'x'.repeat(120) + '/file-' + 'y'.repeat(90);
      for (const format of ['ustar', 'gnu'] as const) {
        const tar = buildTar([
          { name: 'd/', type: 'dir' },
          { name: 'd/' + 'x'.repeat(120) + '/', type: 'dir' },
          { name: long, data: 'long\n' },
          { name: 'd/s', type: 'symlink', linkname: 'x'.repeat(150) },
          { name: 'd/h', type: 'hardlink', linkname: long },
          { name: 'd/é', data: 'unicode', mtime: T0 + 5, uid: 7, gid: 8 },
        ], { format, blockingFactor: 20 });
        assert.equal(tar.length % 10240, 0);
        const file = join(tmp, `${format}.tar`);
        writeFileSync(file, tar);
        const r = await run('tar', ['--numeric-owner', '-tvf', file]);
        assert.equal(r.code, 0, r.stderr);
        const names = parseTar(tar).map((e) => e.name);
        assert.deepEqual(names, ['d/', `d/${'x'.repeat(120)}/`, long, 'd/s', 'd/h', 'd/é']);
        for (const n of names) assert.ok(r.stdout.includes(n), `${format}: GNU tar does not list ${n}:\n${r.stdout}`);
        assert.match(r.stdout, /7\/8\s+7 /);
        const x = await run('tar', ['-xf', file, '-C', tmp]);
        assert.equal(x.code, 0, x.stderr);
        assert.equal(readFileSync(join(tmp, 'd/h'), 'utf8'), 'long\n');
      }
    } finally {
      releaseTempRoot(tmp);
    }
  });

  it('sha256 of a buildTar output is stable (fixtures are deterministic)', () => {
    const tmp = makeTempRoot('fx-det-');
    try {
      const a = buildFixtures(join(tmp, 'a'), ['multi', 'gzlayers']);
      const b = buildFixtures(join(tmp, 'b'), ['multi', 'gzlayers']);
      assert.deepEqual(a.map((f) => f.images.map((i) => i.id)), b.map((f) => f.images.map((i) => i.id)));
      assert.equal(sha256(readFileSync(a[0]!.file)), sha256(readFileSync(b[0]!.file)));
    } finally {
      releaseTempRoot(tmp);
    }
  });
});

describe('fixtures against the real dockerd', { skip: rootSkipReason() ?? dockerSkipReason() }, () => {
  let tmp: string;
  let docker: Dockerd | undefined;
  let fixtures: Fixture[] = [];
  let hostile: HostileFixture[] = [];

  before(async () => {
    tmp = makeTempRoot('e2e-fx-');
    fixtures = buildFixtures(join(tmp, 'fx'));
    mkdirSync(join(tmp, 'sentinel'));
    hostile = buildHostileFixtures(join(tmp, 'hostile'), join(tmp, 'sentinel'), fixtures.find((f) => f.name === 'multi')!.images[0]!);
    docker = await Dockerd.start();
  });

  after(async () => {
    await docker?.stop();
    releaseTempRoot(tmp);
  });

  it('every fixture loads with the image IDs, diffIDs and chainIDs we compute', async () => {
    for (const f of fixtures) {
      const r = await docker!.run(['load', '-i', f.dockerFile]);
      assert.equal(r.code, 0, `${f.name}: ${r.stderr}`);
      for (const img of f.images) {
        const d = JSON.parse((await docker!.ok(['image', 'inspect', img.id])).stdout)[0];
        assert.equal(d.Id, img.id);
        assert.deepEqual(d.RootFS.Layers, img.diffIds);
        const chains = docker!.chainIds();
        for (const c of img.chainIds) assert.ok(chains.includes(c.slice(7)), `${f.name}: docker lacks chain ${c}`);
      }
    }
  });

  it('our model of a layer dir matches docker’s overlay2 diff dirs exactly', () => {
    for (const f of fixtures) {
      for (const img of f.images) {
        const layout = walkLayout(docker!.dataRoot, 'overlay2', img.id);
        layout.layers.forEach((layer, i) => {
          const want = expectedOverlayLayer(layerTar(img.layers[i]!));
          const got = snapshotTree(layer.layerDir, { xattr: readXattrs });
          const diffs = diffTrees(want, got, {
            ignoreMtime: (_p, n) => isWhiteoutNode(n),
            ignoreField: (_p, n, field) => isWhiteoutNode(n) && (field === 'mode' || field === 'uid' || field === 'gid'),
          });
          assert.deepEqual(diffs, [], `${f.name} layer ${i}:\n${diffs.slice(0, 30).join('\n')}`);
        });
      }
    }
  });

  it('the merged overlay view we mount equals docker export', async () => {
    for (const f of fixtures) {
      for (const [k, img] of f.images.entries()) {
        const layout = walkLayout(docker!.dataRoot, 'overlay2', img.id);
        const m = mountView(docker!.dataRoot, 'overlay2', layout, join(tmp, 'mnt', `${f.name}-${k}`));
        let view;
        try {
          view = snapshotTree(m.path);
        } finally {
          m.release();
        }
        const ctr = `fx-${f.name}-${k}`;
        await docker!.ok(['create', '--name', ctr, img.id, 'true']);
        const out = join(tmp, `${ctr}.tar`);
        await docker!.ok(['export', '-o', out, ctr]);
        await docker!.ok(['rm', ctr]);
        const exported = treeFromTar(parseTar(readFileSync(out)));
        const diffs = diffTrees(exported, view, {
          ignoreDirMtime: true,
          ignorePath: (p) => INIT_PATHS.some((i) => p === i || p.startsWith(i + '/')) || (INIT_PATHS.some((i) => i.startsWith(p + '/')) && !view.has(p)),
        });
        assert.deepEqual(diffs, [], `${f.name}:\n${diffs.slice(0, 30).join('\n')}`);
        for (const p of view.keys()) assert.ok(!p.split('/').pop()!.startsWith('.wh.'), `${f.name}: whiteout visible at ${p}`);
      }
    }
  });

  it('hostile archives: docker refuses each, or loads it with the paths confined', async () => {
    for (const h of hostile) {
      const r = await docker!.run(['load', '-i', h.file]);
      if (DOCKER_CONFINES.has(h.name)) assert.equal(r.code, 0, `${h.name}: expected docker to load it (confined): ${r.stderr}`);
      else assert.notEqual(r.code, 0, `${h.name}: docker accepted it:\n${r.stdout}`);
      for (const p of h.mustNotExist) assert.ok(!readable(p), `${h.name}: docker wrote ${p}`);
    }
  });
});

function readable(p: string): boolean {
  try {
    readFileSync(p);
    return true;
  } catch {
    return false;
  }
}
