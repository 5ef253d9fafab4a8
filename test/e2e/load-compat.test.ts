/**
 * Acceptance (a), (d), (e): every fixture is loaded by a private real dockerd (20.10) and by
 * `strata load`; both must agree on image IDs, diffIDs, chainIDs and the files under the data
 * root (layerdb records, tar-split, overlay2 layer dirs, merged views), and strata's layout must
 * be walkable the way seed 003 walks Docker's. The vfs driver is checked against Docker's
 * merged view too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  FIXTURE_NAMES, buildBusyboxSkipReason, buildFixtures, chainIdsOf, diffTrees, expectedOverlayLayer, hex,
  isWhiteoutNode, layerTar, mountView, parseTar, readFileSyncSafe, readXattrs, snapshotTree, treeFromTar, walkLayout,
  type Fixture, type FixtureName, type LayoutImage, type Tree,
} from '../helpers/fixtures.js';
import { Dockerd, dockerSkipReason, listHex } from '../helpers/docker.js';
import {
  makeTempRoot, releaseTempRoot, rootSkipReason, strata, strataSkipReason, type RunResult,
} from '../helpers/strata-cli.js';

const skip = rootSkipReason() ?? strataSkipReason() ?? dockerSkipReason();
const busyboxSkip = buildBusyboxSkipReason();

/** Paths Docker's init layer adds to every container (facts §2.12); absent from image views. */
const INIT_PATHS = ['.dockerenv', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'etc/mtab', 'dev/console', 'dev/pts', 'dev/shm', 'proc', 'sys'];

interface Loaded {
  fixture: Fixture;
  strata: RunResult;
  docker: RunResult;
}

function fmt(lines: string[], max = 40): string {
  return lines.length > max ? [...lines.slice(0, max), `… ${lines.length - max} more`].join('\n') : lines.join('\n');
}

function xattrTree(dir: string): Tree {
  return snapshotTree(dir, { xattr: readXattrs });
}

/**
 * tar-split 0.11.2 (Docker 20.10–24) ends with an empty segment for the final zero-length
 * read; Docker ≥ 25 does not (facts §4.3). strata writes the ≥ 25 form (docs/ARCHITECTURE.md);
 * both reassemble to the same bytes, so that one line is not compared.
 */
function normalizeTarSplit(text: string): string {
  const lines = text.split('\n');
  const last = lines.length - (lines.at(-1) === '' ? 2 : 1);
  if (last >= 0 && /^\{"type":2,"payload":"","position":\d+\}$/.test(lines[last]!)) lines.splice(last, 1);
  return lines.join('\n');
}

/** The layerdb files Docker writes for a read-only layer, as name → content (tar-split decompressed). */
function layerRecord(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    if (name === 'cache-id') { out[name] = '<random>'; continue; }
    const b = readFileSync(join(dir, name));
    out[name] = name.endsWith('.gz') ? normalizeTarSplit(gunzipSync(b).toString()) : b.toString();
  }
  return out;
}

/** Concise differences between two layer records (first differing line per file). */
function recordDiffs(want: Record<string, string>, got: Record<string, string>): string[] {
  const out: string[] = [];
  for (const k of [...new Set([...Object.keys(want), ...Object.keys(got)])].sort()) {
    if (!(k in got)) { out.push(`${k}: missing`); continue; }
    // strata's one documented addition (the tar's length, for save); checked in layer-store tests.
    if (!(k in want) && k === 'strata-tar-size') continue;
    if (!(k in want)) { out.push(`${k}: not written by docker`); continue; }
    if (want[k] === got[k]) continue;
    const a = want[k]!.split('\n');
    const b = got[k]!.split('\n');
    const i = a.findIndex((line, j) => line !== b[j]);
    const at = i < 0 ? a.length : i;
    const clip = (x: string | undefined) => (x === undefined ? '<none>' : x.length > 300 ? `${x.slice(0, 300)}…` : x);
    out.push(`${k}: line ${at + 1} of ${a.length} (strata has ${b.length}):\n  docker: ${clip(a[at])}\n  strata: ${clip(b[at])}`);
  }
  return out;
}

function driverDirEntries(dataRoot: string, cacheId: string): string[] {
  // `committed` is written at commit time by strata, at first child by Docker (docs/ARCHITECTURE.md)
  return readdirSync(join(dataRoot, 'overlay2', cacheId)).filter((n) => n !== 'merged' && n !== 'committed').sort();
}

describe('docker compatibility: load (overlay2)', { skip }, () => {
  let tmp: string;
  let docker: Dockerd | undefined;
  let root: string;
  const loaded = new Map<FixtureName, Loaded>();
  let fixtures: Fixture[] = [];

  before(async () => {
    tmp = makeTempRoot('e2e-load-');
    fixtures = buildFixtures(join(tmp, 'fx'));
    root = join(tmp, 'strata');
    docker = await Dockerd.start();
    for (const f of fixtures) {
      // gzarchive goes through stdin on both sides; oci through `-i -` on strata's
      let s: RunResult;
      let d: RunResult;
      if (f.name === 'gzarchive') {
        s = await strata(['load'], { root, input: readFileSync(f.file) });
        d = await docker.run(['load'], { input: readFileSync(f.dockerFile) });
      } else if (f.name === 'oci') {
        s = await strata(['load', '-i', '-'], { root, input: readFileSync(f.file) });
        d = await docker.run(['load', '-i', f.dockerFile]);
      } else {
        s = await strata(['load', '-i', f.file], { root });
        d = await docker.run(['load', '-i', f.dockerFile]);
      }
      loaded.set(f.name as FixtureName, { fixture: f, strata: s, docker: d });
    }
  });

  after(async () => {
    await docker?.stop();
    releaseTempRoot(tmp);
  });

  for (const name of FIXTURE_NAMES) {
    const fxSkip = name === 'busybox' ? busyboxSkip : undefined;
    describe(`fixture ${name}`, { skip: fxSkip }, () => {
      const get = (): Loaded => {
        const l = loaded.get(name);
        assert.ok(l, `fixture ${name} was not built`);
        return l;
      };
      const strataLoaded = (): Loaded => {
        const l = get();
        assert.equal(l.docker.code, 0, `docker load failed (fixture problem): ${l.docker.stderr}`);
        assert.equal(l.strata.code, 0, `strata load failed:\nstdout: ${l.strata.stdout}\nstderr: ${l.strata.stderr}`);
        return l;
      };

      it('strata load succeeds and prints what docker prints', () => {
        const l = strataLoaded();
        if (l.fixture.checkTags) assert.equal(l.strata.stdout.trim(), l.docker.stdout.trim());
        else assert.match(l.strata.stdout, /Loaded image/);
      });

      it('same image IDs and RootFS.Layers (image inspect) as docker', async () => {
        const l = strataLoaded();
        for (const img of l.fixture.images) {
          const s = await strata(['image', 'inspect', img.id], { root });
          assert.equal(s.code, 0, `strata image inspect ${img.id}: ${s.stderr}`);
          const d = JSON.parse((await docker!.ok(['image', 'inspect', img.id])).stdout)[0];
          const si = JSON.parse(s.stdout)[0];
          assert.equal(si.Id, d.Id);
          assert.equal(si.Id, img.id);
          assert.deepEqual(si.RootFS, d.RootFS);
          assert.deepEqual(si.RootFS.Layers, img.diffIds);
          if (l.fixture.checkTags) assert.deepEqual([...si.RepoTags].sort(), [...d.RepoTags].sort());
          const f = await strata(['image', 'inspect', '--format', '{{json .RootFS}}', img.id], { root });
          assert.equal(f.code, 0, f.stderr);
          assert.deepEqual(JSON.parse(f.stdout), d.RootFS);
        }
      });

      it('image inspect fields match docker (Config, Created, Size, Architecture, Os, GraphDriver)', async () => {
        const l = strataLoaded();
        for (const img of l.fixture.images) {
          const si = JSON.parse((await strata(['image', 'inspect', img.id], { root })).stdout)[0];
          const d = JSON.parse((await docker!.ok(['image', 'inspect', img.id])).stdout)[0];
          for (const k of ['Id', 'Parent', 'Comment', 'Created', 'Container', 'ContainerConfig', 'DockerVersion', 'Author', 'Config', 'Architecture', 'Os', 'Size', 'VirtualSize', 'RootFS', 'RepoDigests']) {
            assert.deepEqual(si[k], d[k], `image inspect .${k} differs for ${img.id}`);
          }
          assert.deepEqual(Object.keys(si).sort(), Object.keys(d).sort(), 'top-level inspect keys');
          assert.equal(si.GraphDriver?.Name, d.GraphDriver.Name);
          assert.deepEqual(Object.keys(si.GraphDriver?.Data ?? {}).sort(), Object.keys(d.GraphDriver.Data).sort());
        }
      });

      it('same chainIDs and layerdb records (diff, parent, size, tar-split) as docker', () => {
        const l = strataLoaded();
        for (const img of l.fixture.images) {
          assert.deepEqual(img.chainIds, chainIdsOf(img.diffIds));
          for (const c of img.chainIds) {
            const sdir = join(root, 'image', 'overlay2', 'layerdb', 'sha256', hex(c));
            const ddir = join(docker!.imageRoot, 'layerdb', 'sha256', hex(c));
            assert.ok(existsSync(ddir), `docker has no layer ${c}`);
            assert.ok(existsSync(sdir), `strata has no layerdb dir for chainID ${c}`);
            const diffs = recordDiffs(layerRecord(ddir), layerRecord(sdir));
            assert.deepEqual(diffs, [], `layerdb/sha256/${hex(c)} differs:\n${diffs.join('\n')}`);
            assert.equal(statSync(sdir).mode & 0o777, statSync(ddir).mode & 0o777, 'layerdb dir mode');
          }
        }
      });

      it('seed 003 walk: imagedb → diff_ids → layerdb → cache-id → overlay2/<id>/diff holds the layer', () => {
        const l = strataLoaded();
        for (const img of l.fixture.images) {
          const layout = walkLayout(root, 'overlay2', img.id);
          assert.deepEqual(layout.diffIds, img.diffIds);
          assert.ok(layout.config.equals(img.config), 'imagedb content is the config bytes as received');
          layout.layers.forEach((layer, i) => {
            const want = expectedOverlayLayer(layerTar(img.layers[i]!));
            const got = xattrTree(layer.layerDir);
            const diffs = diffTrees(want, got, {
              ignoreMtime: (_p, n) => isWhiteoutNode(n),
              ignoreField: (_p, n, f) => isWhiteoutNode(n) && (f === 'mode' || f === 'uid' || f === 'gid'),
            });
            assert.deepEqual(diffs, [], `layer ${i} (${layer.diffId}) dir ${layer.layerDir}:\n${fmt(diffs)}`);
          });
        }
      });

      it('overlay2 layer dirs equal docker’s (whiteouts, opaque dirs, modes, owners, times, xattrs)', () => {
        const l = strataLoaded();
        for (const img of l.fixture.images) {
          const s = walkLayout(root, 'overlay2', img.id);
          const d = walkLayout(docker!.dataRoot, 'overlay2', img.id);
          s.layers.forEach((sl, i) => {
            const dl = d.layers[i]!;
            assert.equal(sl.size, dl.size, `layerdb size of layer ${i}`);
            assert.deepEqual(driverDirEntries(root, sl.cacheId), driverDirEntries(docker!.dataRoot, dl.cacheId), `overlay2/<cache-id> entries of layer ${i}`);
            const diffs = diffTrees(xattrTree(dl.layerDir), xattrTree(sl.layerDir), { ignoreMtime: (_p, n) => isWhiteoutNode(n) });
            assert.deepEqual(diffs, [], `layer ${i} (${sl.diffId}) docker ${dl.layerDir} vs strata ${sl.layerDir}:\n${fmt(diffs)}`);
          });
        }
      });

      it('merged view of the top layer equals docker’s merged view and docker export', async () => {
        const l = strataLoaded();
        for (const [k, img] of l.fixture.images.entries()) {
          const s = walkLayout(root, 'overlay2', img.id);
          const d = walkLayout(docker!.dataRoot, 'overlay2', img.id);
          const sm = mountView(root, 'overlay2', s, join(tmp, 'mnt', `${name}-${k}-strata`));
          const dm = mountView(docker!.dataRoot, 'overlay2', d, join(tmp, 'mnt', `${name}-${k}-docker`));
          let st: Tree;
          let dt: Tree;
          try {
            st = xattrTree(sm.path);
            dt = xattrTree(dm.path);
          } finally {
            sm.release();
            dm.release();
          }
          const diffs = diffTrees(dt, st, { ignoreMtime: (_p, n) => isWhiteoutNode(n) });
          assert.deepEqual(diffs, [], `merged views differ:\n${fmt(diffs)}`);
          for (const p of st.keys()) assert.ok(!p.split('/').pop()!.startsWith('.wh.'), `whiteout file visible: ${p}`);
          // docker export of a container made from the image: an independent read path
          const ctr = `x-${name}-${k}`;
          await docker!.ok(['create', '--name', ctr, img.id, 'true']);
          const out = join(tmp, `${ctr}.tar`);
          await docker!.ok(['export', '-o', out, ctr]);
          await docker!.ok(['rm', ctr]);
          const exported = treeFromTar(parseTar(readFileSync(out)));
          const ediffs = diffTrees(exported, st, {
            ignoreDirMtime: true,
            ignoreXattrs: true,
            ignorePath: (p) => INIT_PATHS.some((i) => p === i || p.startsWith(i + '/')) || (INIT_PATHS.some((i) => i.startsWith(p + '/')) && !st.has(p)),
          });
          assert.deepEqual(ediffs, [], `docker export vs strata merged view:\n${fmt(ediffs)}`);
        }
      });
    });
  }

  describe('whole data root', () => {
    it('layerdb holds exactly docker’s chainIDs', () => {
      assert.deepEqual(listHex(join(root, 'image', 'overlay2', 'layerdb', 'sha256')), docker!.chainIds());
    });

    it('imagedb content holds docker’s configs byte for byte (mode 0600)', () => {
      const dir = (r: string) => join(r, 'image', 'overlay2', 'imagedb', 'content', 'sha256');
      const ids = listHex(dir(root));
      assert.deepEqual(ids, listHex(dir(docker!.dataRoot)));
      for (const id of ids) {
        assert.ok(readFileSync(join(dir(root), id)).equals(readFileSync(join(dir(docker!.dataRoot), id))), `config ${id}`);
        assert.equal(statSync(join(dir(root), id)).mode & 0o777, 0o600, `mode of imagedb content ${id}`);
      }
    });

    it('repositories.json matches docker’s', () => {
      const s = readFileSyncSafe(join(root, 'image', 'overlay2', 'repositories.json'));
      const d = readFileSync(join(docker!.imageRoot, 'repositories.json'), 'utf8');
      assert.ok(s !== undefined, 'strata wrote no repositories.json');
      const strip = (txt: string) => {
        const j = JSON.parse(txt) as { Repositories: Record<string, unknown> };
        delete j.Repositories['fx-oci']; // pure OCI naming is the loader's choice
        return j;
      };
      assert.deepEqual(strip(s), strip(d));
      assert.ok(!s.endsWith('\n'), 'no trailing newline, as Go writes it');
      if (loaded.get('oci-pure')?.strata.stdout.includes('fx-oci:v1')) assert.equal(s, d);
    });

    it('strata images lists the same IDs and table as docker images', async () => {
      const sIds = await strata(['images', '-q', '--no-trunc'], { root });
      assert.equal(sIds.code, 0, sIds.stderr);
      const dIds = await docker!.ok(['images', '-q', '--no-trunc']);
      const set = (t: string) => [...new Set(t.split('\n').map((x) => x.trim()).filter(Boolean))].sort();
      assert.deepEqual(set(sIds.stdout), set(dIds.stdout));
      const sFmt = await strata(['images', '--format', '{{.ID}}'], { root });
      assert.equal(sFmt.code, 0, sFmt.stderr);
      assert.deepEqual(set(sFmt.stdout), set((await docker!.ok(['images', '--format', '{{.ID}}'])).stdout));
      const table = async (r: RunResult) => r.stdout.split('\n').filter((x) => x && !x.startsWith('fx-oci ')).sort();
      const st = await strata(['images'], { root });
      assert.equal(st.code, 0, st.stderr);
      assert.deepEqual(await table(st), await table(await docker!.ok(['images'])));
    });

    it('image history matches docker', async () => {
      for (const f of fixtures) {
        for (const img of f.images) {
          const s = await strata(['image', 'history', '--no-trunc', img.id], { root });
          assert.equal(s.code, 0, s.stderr);
          const d = await docker!.ok(['image', 'history', '--no-trunc', img.id]);
          assert.equal(s.stdout, d.stdout, `history of ${f.name} ${img.id}`);
        }
      }
    });

    it('loading every fixture again changes nothing (idempotent, dedup by chainID)', async () => {
      const before = listHex(join(root, 'image', 'overlay2', 'layerdb', 'sha256'));
      const cache = before.map((c) => readFileSync(join(root, 'image', 'overlay2', 'layerdb', 'sha256', c, 'cache-id'), 'utf8'));
      for (const f of fixtures) {
        const r = await strata(['load', '-q', '-i', f.file], { root });
        assert.equal(r.code, 0, `${f.name}: ${r.stderr}`);
      }
      assert.deepEqual(listHex(join(root, 'image', 'overlay2', 'layerdb', 'sha256')), before);
      assert.deepEqual(before.map((c) => readFileSync(join(root, 'image', 'overlay2', 'layerdb', 'sha256', c, 'cache-id'), 'utf8')), cache);
      const dirs = readdirSync(join(root, 'overlay2')).filter((n) => n !== 'l').sort();
      assert.deepEqual(dirs, [...cache].sort(), 'overlay2 holds exactly the layers’ cache dirs');
    });
  });
});

describe('docker compatibility: load (vfs)', { skip }, () => {
  let tmp: string;
  let docker: Dockerd | undefined;
  let root: string;
  let fixtures: Fixture[] = [];
  const results = new Map<string, RunResult>();

  before(async () => {
    tmp = makeTempRoot('e2e-vfs-');
    fixtures = buildFixtures(join(tmp, 'fx'), ['single', 'multi', 'shared', 'gzlayers', 'busybox']);
    root = join(tmp, 'strata');
    docker = await Dockerd.start();
    for (const f of fixtures) {
      await docker.ok(['load', '-i', f.dockerFile]);
      results.set(f.name, await strata(['load', '-i', f.file], { root, driver: 'vfs' }));
    }
  });

  after(async () => {
    await docker?.stop();
    releaseTempRoot(tmp);
  });

  for (const name of ['single', 'multi', 'shared', 'gzlayers', 'busybox'] as const) {
    it(`${name}: same IDs and layerdb; vfs/dir/<top cache-id> equals docker’s merged view`, { skip: name === 'busybox' ? busyboxSkip : undefined }, () => {
      const f = fixtures.find((x) => x.name === name);
      assert.ok(f, `fixture ${name} missing`);
      const r = results.get(name)!;
      assert.equal(r.code, 0, `strata --storage-driver vfs load: ${r.stderr}`);
      for (const [k, img] of f.images.entries()) {
        const s: LayoutImage = walkLayout(root, 'vfs', img.id);
        for (const layer of s.layers) {
          const ddir = join(docker!.imageRoot, 'layerdb', 'sha256', hex(layer.chainId));
          const want = layerRecord(ddir);
          const got = layerRecord(layer.layerdbDir);
          delete want.size; // vfs computes size by the naive rule, overlay2 by the native one
          delete got.size;
          const diffs = recordDiffs(want, got);
          assert.deepEqual(diffs, [], `layerdb record of ${layer.chainId}:\n${diffs.join('\n')}`);
        }
        const d = walkLayout(docker!.dataRoot, 'overlay2', img.id);
        const dm = mountView(docker!.dataRoot, 'overlay2', d, join(tmp, 'mnt', `${name}-${k}`));
        let dt: Tree;
        try {
          dt = xattrTree(dm.path);
        } finally {
          dm.release();
        }
        const st = xattrTree(s.layers.at(-1)!.layerDir);
        // a naive (vfs) apply legitimately touches directory times when it deletes entries
        const diffs = diffTrees(dt, st, { ignoreDirMtime: true });
        assert.deepEqual(diffs, [], `vfs top layer vs docker merged view:\n${fmt(diffs)}`);
      }
    });
  }

  it('no overlay2 directory is created for a vfs root', () => {
    assert.ok(!existsSync(join(root, 'overlay2')) || readdirSync(join(root, 'overlay2')).length === 0);
    assert.ok(existsSync(join(root, 'vfs', 'dir')), 'vfs/dir exists');
  });
});
