/**
 * Acceptance (b), (c): images loaded into strata are saved by `strata save`; the archive must
 * hold every layer tar byte-identical to the input's (tar-split reassembly), load into a fresh
 * real dockerd with the same image IDs, and be readable by skopeo (and umoci for OCI layouts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  FIXTURE_NAMES, buildBusyboxSkipReason, buildFixtures, diffTrees, hex, layerTar, mountView, readArchive,
  readXattrs, sha256, snapshotTree, walkLayout, type Fixture, type FixtureName,
} from '../helpers/fixtures.js';
import { Dockerd, dockerSkipReason } from '../helpers/docker.js';
import { STRATA_BIN, makeTempRoot, releaseTempRoot, rootSkipReason, run, strata, strataSkipReason, type RunResult } from '../helpers/strata-cli.js';

const skip = rootSkipReason() ?? strataSkipReason();
const busyboxSkip = buildBusyboxSkipReason();
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skopeoSkip = has('skopeo') ? undefined : 'skopeo is not installed; run scripts/setup.sh';
const umociSkip = has('umoci') ? undefined : 'umoci is not installed; run scripts/setup.sh';

/** References to save: tags when the fixture carries them, else image IDs. */
function refsOf(f: Fixture): string[] {
  return f.checkTags ? f.images.flatMap((i) => i.tags) : f.images.map((i) => i.id);
}

describe('docker compatibility: save', { skip }, () => {
  let tmp: string;
  let root: string;
  let fixtures: Fixture[] = [];
  const loads = new Map<string, RunResult>();
  const saves = new Map<string, { result: RunResult; file: string }>();

  before(async () => {
    tmp = makeTempRoot('e2e-save-');
    fixtures = buildFixtures(join(tmp, 'fx'));
    root = join(tmp, 'strata');
    mkdirSync(join(tmp, 'out'), { recursive: true });
    for (const f of fixtures) {
      loads.set(f.name, await strata(['load', '-i', f.file], { root }));
      const file = join(tmp, 'out', `${f.name}.tar`);
      saves.set(f.name, { result: await strata(['save', '-o', file, ...refsOf(f)], { root }), file });
    }
  });

  after(() => releaseTempRoot(tmp));

  const saved = (name: string) => {
    const l = loads.get(name);
    assert.ok(l, `fixture ${name} missing`);
    assert.equal(l.code, 0, `strata load: ${l.stderr}`);
    const s = saves.get(name)!;
    assert.equal(s.result.code, 0, `strata save: ${s.result.stderr}`);
    assert.ok(existsSync(s.file), 'strata save wrote no file');
    return s.file;
  };

  for (const name of FIXTURE_NAMES) {
    const fxSkip = name === 'busybox' ? busyboxSkip : undefined;
    describe(`fixture ${name}`, { skip: fxSkip }, () => {
      const fixture = () => fixtures.find((f) => f.name === name)!;

      it('every layer tar in the saved archive is byte-identical to the input layer tar', () => {
        const file = saved(name);
        const arch = readArchive(file);
        const f = fixture();
        for (const img of f.images) {
          const si = arch.images.find((x) => sha256(x.config) === img.id);
          assert.ok(si, `saved archive lacks image ${img.id} (has ${arch.images.map((x) => sha256(x.config)).join(', ')})`);
          assert.ok(si.config.equals(img.config), 'config bytes unchanged');
          assert.equal(si.layers.length, img.layers.length, 'layer count');
          si.layers.forEach((b, i) => {
            const want = layerTar(img.layers[i]!);
            assert.equal(sha256(b), sha256(want), `layer ${i} (${si.layerPaths[i]}) differs from the input's uncompressed tar`);
            assert.equal(sha256(b), img.diffIds[i]);
          });
          if (f.checkTags) {
            assert.deepEqual([...(si.repoTags ?? [])].map((t) => t.replace(/^docker\.io\/(library\/)?/, '')).sort(), [...img.tags].sort());
          }
        }
      });

      it('a fresh dockerd loads the saved archive with the same IDs, layers and chainIDs', { skip: dockerSkipReason() }, async () => {
        const file = saved(name);
        const docker = await Dockerd.start();
        try {
          const r = await docker.run(['load', '-i', file]);
          assert.equal(r.code, 0, `docker load of strata's archive: ${r.stderr}`);
          for (const img of fixture().images) {
            const ins = await docker.run(['image', 'inspect', img.id]);
            assert.equal(ins.code, 0, `docker has no image ${img.id} after load:\n${r.stdout}`);
            const d = JSON.parse(ins.stdout)[0];
            assert.deepEqual(d.RootFS.Layers, img.diffIds);
            if (fixture().checkTags) assert.deepEqual([...d.RepoTags].sort(), [...img.tags].sort());
            for (const c of img.chainIds) assert.ok(existsSync(join(docker.imageRoot, 'layerdb', 'sha256', hex(c))), `docker layerdb lacks ${c}`);
          }
          // docker's own save of what it loaded carries the same layer bytes
          const again = join(tmp, 'out', `${name}-docker.tar`);
          await docker.ok(['save', '-o', again, ...fixture().images.map((i) => i.id)]);
          for (const img of readArchive(again).images) {
            img.layers.forEach((b, i) => {
              const cfg = JSON.parse(img.config.toString()) as { rootfs: { diff_ids: string[] } };
              assert.equal(sha256(b), cfg.rootfs.diff_ids[i], `docker re-save layer ${i}`);
            });
          }
        } finally {
          await docker.stop();
        }
      });

      it('skopeo inspects the saved archive and reports the same layers', { skip: skopeoSkip }, async () => {
        const file = saved(name);
        const arch = readArchive(file);
        for (const img of fixture().images) {
          const idx = arch.images.findIndex((x) => sha256(x.config) === img.id);
          assert.ok(idx >= 0);
          const transports: string[] = [];
          if (arch.members.has('manifest.json')) transports.push(`docker-archive:${file}${arch.images.length > 1 ? `:@${idx}` : ''}`);
          if (arch.members.has('index.json')) {
            // oci-archive:<file>[:<ref.name>] — only when the ref name picks exactly this image
            const index = JSON.parse(arch.members.get('index.json')!.data.toString()) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
            const configOf = (d: { digest: string }) => (JSON.parse(arch.members.get(`blobs/sha256/${hex(d.digest)}`)!.data.toString()) as { config: { digest: string } }).config.digest;
            const refs = index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']);
            if (index.manifests.length === 1) transports.push(`oci-archive:${file}`);
            else {
              const mine = index.manifests.find((m, i) => configOf(m) === img.id && refs[i] && refs.filter((r) => r === refs[i]).length === 1);
              const ref = mine?.annotations?.['org.opencontainers.image.ref.name'];
              if (ref) transports.push(`oci-archive:${file}:${ref}`);
            }
          }
          assert.ok(transports.length > 0, 'archive has neither manifest.json nor a usable index.json');
          for (const t of transports) {
            const raw = await run('skopeo', ['inspect', '--config', '--raw', t]);
            assert.equal(raw.code, 0, `skopeo inspect --config ${t}: ${raw.stderr}`);
            assert.equal(sha256(Buffer.from(raw.stdout)), img.id, `${t}: config bytes`);
            const r = await run('skopeo', ['inspect', t]);
            assert.equal(r.code, 0, `skopeo inspect ${t}: ${r.stderr}`);
            const j = JSON.parse(r.stdout) as { Layers: string[]; Architecture: string; Os: string };
            assert.equal(j.Os, 'linux');
            // skopeo reports blob digests: for uncompressed layers these are the diffIDs
            assert.deepEqual(j.Layers, img.diffIds, `${t}: layers`);
          }
        }
      });

      it('umoci unpacks the saved OCI layout to the same tree as strata’s merged view', { skip: umociSkip }, async (t) => {
        const file = saved(name);
        const arch = readArchive(file);
        if (!arch.members.has('index.json')) {
          t.skip('strata save wrote a docker-archive without an OCI index (umoci needs OCI layout)');
          return;
        }
        const index = JSON.parse(arch.members.get('index.json')!.data.toString()) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
        const refs = index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']);
        const pick = index.manifests.find((m, i) => refs[i] && refs.filter((r) => r === refs[i]).length === 1);
        const refName = pick?.annotations?.['org.opencontainers.image.ref.name'];
        if (!pick || !refName) {
          t.skip('no index.json entry has a unique org.opencontainers.image.ref.name (images saved by ID have none)');
          return;
        }
        const manifest = JSON.parse(arch.members.get(`blobs/sha256/${hex(pick.digest)}`)!.data.toString()) as { config: { digest: string } };
        const img = fixture().images.find((i) => i.id === manifest.config.digest);
        assert.ok(img, `index entry ${refName} names config ${manifest.config.digest}, not a fixture image`);
        const layoutDir = join(tmp, 'umoci', name, 'layout');
        mkdirSync(layoutDir, { recursive: true });
        const x = await run('tar', ['-xf', file, '-C', layoutDir]);
        assert.equal(x.code, 0, x.stderr);
        const bundle = join(tmp, 'umoci', name, 'bundle');
        const u = await run('umoci', ['unpack', '--image', `${layoutDir}:${refName}`, bundle]);
        assert.equal(u.code, 0, `umoci unpack: ${u.stderr}`);
        const layout = walkLayout(root, 'overlay2', img.id);
        const m = mountView(root, 'overlay2', layout, join(tmp, 'mnt', `umoci-${name}`));
        try {
          const want = snapshotTree(m.path, { xattr: readXattrs });
          const got = snapshotTree(join(bundle, 'rootfs'), { xattr: readXattrs });
          const diffs = diffTrees(want, got, { ignoreDirMtime: true, ignoreXattrs: true });
          assert.deepEqual(diffs, [], diffs.slice(0, 30).join('\n'));
        } finally {
          m.release();
        }
      });
    });
  }

  describe('archive properties', () => {
    it('saving the same images twice gives byte-identical archives', async () => {
      for (const name of ['multi', 'shared'] as FixtureName[]) {
        const f = fixtures.find((x) => x.name === name)!;
        const again = join(tmp, 'out', `${name}-again.tar`);
        const r = await strata(['save', '-o', again, ...refsOf(f)], { root });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(sha256(readFileSync(again)), sha256(readFileSync(saved(name))), `${name}: second save differs`);
      }
    });

    it('an image saved by ID has no RepoTags', async () => {
      const f = fixtures.find((x) => x.name === 'single')!;
      const out = join(tmp, 'out', 'by-id.tar');
      const r = await strata(['save', '-o', out, f.images[0]!.id], { root });
      assert.equal(r.code, 0, r.stderr);
      const arch = readArchive(out);
      if (arch.format === 'docker') assert.equal(arch.images[0]!.repoTags, null);
      assert.equal(sha256(arch.images[0]!.config), f.images[0]!.id);
    });

    it('shared layers are stored once in an archive of two images', () => {
      const file = saved('shared');
      const arch = readArchive(file);
      const payloads = [...arch.members.values()].filter((e) => e.typeflag === '0' && e.data.length > 0).map((e) => sha256(e.data));
      const base = fixtures.find((x) => x.name === 'shared')!.images[0]!.diffIds[0]!;
      assert.equal(payloads.filter((d) => d === base).length, 1, 'the shared base layer is written once');
    });

    it('save writes to stdout when no -o is given', async () => {
      const f = fixtures.find((x) => x.name === 'single')!;
      const r = await run(STRATA_BIN, ['--data-root', root, 'save', f.images[0]!.tags[0]!], { timeoutMs: 120_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.length > 1024, 'archive bytes on stdout');
    });

    it('round trip: save → load into a fresh strata root → same image ID and layers', async () => {
      const root2 = join(tmp, 'strata2');
      for (const f of fixtures) {
        const r = await strata(['load', '-i', saved(f.name)], { root: root2 });
        assert.equal(r.code, 0, `${f.name}: ${r.stderr}`);
        for (const img of f.images) {
          const s = await strata(['image', 'inspect', '--format', '{{json .RootFS}}', img.id], { root: root2 });
          assert.equal(s.code, 0, s.stderr);
          assert.deepEqual(JSON.parse(s.stdout).Layers, img.diffIds);
        }
      }
    });

    it('save of an unknown image fails with docker’s message and writes nothing', async () => {
      const out = join(tmp, 'out', 'nope.tar');
      const r = await strata(['save', '-o', out, 'no-such-image:latest'], { root });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /No such image|reference does not exist|not found/i);
      assert.ok(!existsSync(out), 'no partial archive left behind');
    });
  });
});
