/**
 * docker-archive medium: reading Docker 20.10 and Docker 25 layouts without extraction,
 * hostile manifests, and the writer's Docker 25 layout (members, headers, JSON bytes).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { spawnSync } from 'node:child_process';

import type { Digest } from '../../src/digest.js';
import { InvalidArchiveError } from '../../src/errors.js';
import { parseNormalizedNamed, withDefaultTag } from '../../src/images/reference.js';
import * as dockerArchive from '../../src/transfer/docker-archive.js';
import { openTarTree } from '../../src/transfer/file-tree.js';
import type { TargetImage } from '../../src/transfer/image-source.js';
import { readSource } from '../../src/transfer/input.js';
import {
  buildTar, dockerArchive as buildArchive, hex, imageFromLayers, ociArchive, parseTar, sha256, type FixtureImage,
} from '../helpers/fixtures.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'strata-da-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function treeOf(t: TestContext, bytes: Buffer) {
  const file = path.join(await tempDir(t), 'archive.tar');
  await writeFile(file, bytes);
  return openTarTree(file);
}

async function bytesOf(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const layerA = buildTar([{ name: 'a/', type: 'dir' }, { name: 'a/one', data: 'one\n' }]);
const layerB = buildTar([{ name: 'b/', type: 'dir' }, { name: 'b/two', data: Buffer.alloc(5000, 2) }]);

function twoImages(): [FixtureImage, FixtureImage] {
  return [
    imageFromLayers([layerA, layerB], ['first:1', 'first:latest']),
    imageFromLayers([layerA], [], { created: '2023-01-01T00:00:00Z' }),
  ];
}

test('reads a Docker 20.10 archive: configs, tags and layers as byte ranges of the file', async (t) => {
  const [a, b] = twoImages();
  const source = await readSource(await treeOf(t, buildArchive([a, b])));
  assert.equal(source.format, 'docker-archive');
  assert.equal(source.images.length, 2);
  const [sa, sb] = source.images;
  assert.ok(sa!.config.equals(a.config));
  assert.deepEqual(sa!.repoTags, ['first:1', 'first:latest']);
  assert.deepEqual(sb!.repoTags, []);
  assert.equal(sa!.layers.length, 2);
  assert.ok((await bytesOf(sa!.layers[0]!.open())).equals(layerA));
  assert.ok((await bytesOf(sa!.layers[1]!.open())).equals(layerB));
  assert.ok((await bytesOf(sb!.layers[0]!.open())).equals(layerA));
});

test('reads a Docker 25 (OCI-combined) archive by its manifest.json', async (t) => {
  const [a] = twoImages();
  const source = await readSource(await treeOf(t, ociArchive([a], { withDockerManifest: true })));
  assert.equal(source.format, 'docker-archive');
  assert.equal(sha256(source.images[0]!.config), a.id);
  assert.deepEqual(source.images[0]!.repoTags, ['first:1', 'first:latest']);
});

test('follows layer symlinks inside the archive (legacy shared layers)', async (t) => {
  const [a] = twoImages();
  const cfg = `${hex(a.id)}.json`;
  const archive = buildTar([
    { name: 'l1/', type: 'dir' },
    { name: 'l1/layer.tar', data: layerA },
    { name: 'l2/', type: 'dir' },
    { name: 'l2/layer.tar', data: layerB },
    { name: 'l3/', type: 'dir' },
    { name: 'l3/layer.tar', type: 'symlink', linkname: '../l1/layer.tar' },
    { name: cfg, data: a.config },
    { name: 'manifest.json', data: JSON.stringify([{ Config: cfg, RepoTags: null, Layers: ['l3/layer.tar', 'l2/layer.tar'] }]) },
  ]);
  const source = await readSource(await treeOf(t, archive));
  assert.ok((await bytesOf(source.images[0]!.layers[0]!.open())).equals(layerA));
});

test('hostile or broken manifests are refused with clear messages', async (t) => {
  const [a] = twoImages();
  const cases: Array<[string, Buffer, RegExp]> = [
    ['no manifest', buildArchive([a], { omit: (n) => n === 'manifest.json' }), /^invalid archive: does not contain a manifest\.json$/],
    ['null manifest', buildArchive([a], { manifestOverride: () => null }), /^invalid manifest, manifest cannot be null \(but can be \[\]\)$/],
    ['not an array', buildArchive([a], { manifestOverride: () => ({}) }), /not a JSON array/],
    ['layers mismatch', buildArchive([a], { manifestOverride: (m) => m.map((x) => ({ ...x, Layers: [(x.Layers as string[])[0]] })) }),
      /^invalid manifest, layers length mismatch: expected 1, got 2$/],
    ['traversal', buildArchive([a], { manifestOverride: (m) => m.map((x) => ({ ...x, Layers: ['../../x/layer.tar', 'y'] })) }), /outside the archive/],
    ['absolute', buildArchive([a], { manifestOverride: (m) => m.map((x) => ({ ...x, Config: '/etc/passwd' })) }), /is absolute/],
    ['missing layer', buildArchive([a], { omit: (n) => n.endsWith('layer.tar') }), /not found in/],
    ['config not json', buildArchive([{ ...a, config: Buffer.from('{"rootfs": nope') }]), /invalid image config/],
    ['bad diff_ids', buildArchive([{ ...a, config: Buffer.from('{"rootfs":{"diff_ids":["x"]}}') }]), /rootfs\.diff_ids/],
    ['Config not a string', buildArchive([a], { manifestOverride: (m) => m.map((x) => ({ ...x, Config: 7 })) }), /Config must be a string/],
  ];
  for (const [name, bytes, re] of cases) {
    await assert.rejects(readSource(await treeOf(t, bytes)), (err: unknown) => {
      assert.ok(err instanceof InvalidArchiveError, `${name}: ${String(err)}`);
      assert.match(err.message, re, name);
      return true;
    });
  }
  // An empty manifest is valid: nothing to load.
  assert.deepEqual((await readSource(await treeOf(t, buildArchive([a], { manifestOverride: () => [] })))).images, []);
});

function target(img: FixtureImage, tags: string[], created?: number): TargetImage {
  const out: TargetImage = {
    id: img.id,
    config: img.config,
    tags: tags.map((s) => withDefaultTag(parseNormalizedNamed(s))),
    layers: img.layers.map((l) => ({ diffId: l.diffId, size: l.tar.length, open: async () => Readable.from([l.tar]) })),
  };
  if (created !== undefined) out.created = created;
  return out;
}

async function written(images: TargetImage[]): Promise<Buffer> {
  const out = new PassThrough();
  const collected = bytesOf(out);
  await dockerArchive.write(images, out);
  out.end();
  return collected;
}

test('writes Docker 25 layout: members in path order, Go headers, exact JSON files', async () => {
  const [a, b] = twoImages();
  const bytes = await written([target(a, ['first:1', 'localhost:5000/x/y:v2'], 1_700_000_123), target(b, [])]);
  assert.equal(bytes.length % 512, 0);
  assert.ok(bytes.subarray(-1024).equals(Buffer.alloc(1024)), 'ends with two zero blocks');
  const entries = parseTar(bytes);
  const names = entries.map((e) => e.name);
  const manifestA = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: a.id, size: a.config.length },
    layers: a.layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.diffId, size: l.tar.length })),
  }));
  assert.deepEqual(names.slice(0, 2), ['blobs/', 'blobs/sha256/']);
  const blobNames = names.filter((n) => n.startsWith('blobs/sha256/') && n !== 'blobs/sha256/');
  assert.deepEqual(blobNames, [...blobNames].sort(), 'blobs in path order');
  assert.equal(blobNames.length, 6, 'two configs, two layers (layerA once), two manifests');
  assert.deepEqual(names.slice(-4), ['index.json', 'manifest.json', 'oci-layout', 'repositories']);
  for (const e of entries) {
    assert.equal(e.uid, 0);
    assert.equal(e.gid, 0);
    assert.equal(e.mode, e.typeflag === '5' ? 0o755 : 0o644, e.name);
  }
  const byName = new Map(entries.map((e) => [e.name, e]));
  assert.ok(byName.get(`blobs/sha256/${hex(sha256(manifestA))}`)!.data.equals(manifestA), 'OCI manifest bytes');
  assert.equal(byName.get(`blobs/sha256/${hex(a.id)}`)!.mtime, 1_700_000_123, 'config mtime = created');
  assert.equal(byName.get(`blobs/sha256/${hex(a.diffIds[1]!)}`)!.mtime, 1_700_000_123, 'layer mtime = created');
  assert.equal(byName.get('manifest.json')!.mtime, 0);
  assert.ok(byName.get(`blobs/sha256/${hex(a.diffIds[1]!)}`)!.data.equals(layerB));
  assert.equal(byName.get('oci-layout')!.data.toString(), '{"imageLayoutVersion": "1.0.0"}');

  const manifest = byName.get('manifest.json')!.data.toString();
  assert.ok(manifest.endsWith('\n'));
  const items = JSON.parse(manifest) as Array<Record<string, unknown>>;
  assert.deepEqual(Object.keys(items[0]!), ['Config', 'RepoTags', 'Layers', 'LayerSources']);
  assert.equal(items[0]!.Config, `blobs/sha256/${hex(a.id)}`);
  assert.deepEqual(items[0]!.RepoTags, ['first:1', 'localhost:5000/x/y:v2']);
  assert.equal(items[1]!.RepoTags, null, 'an image saved by ID has no tags');
  assert.deepEqual(items[0]!.LayerSources, Object.fromEntries(a.layers.map((l) => [l.diffId, {
    mediaType: 'application/vnd.oci.image.layer.v1.tar', size: l.tar.length, digest: l.diffId,
  }])));
  assert.equal(byName.get('repositories')!.data.toString(),
    `{"first":{"1":"${hex(a.diffIds[1]!)}"},"localhost:5000/x/y":{"v2":"${hex(a.diffIds[1]!)}"}}\n`);
  const index = JSON.parse(byName.get('index.json')!.data.toString()) as { manifests: Array<{ annotations?: Record<string, string> }> };
  assert.deepEqual(index.manifests.map((m) => m.annotations?.['io.containerd.image.name']),
    ['docker.io/library/first:1', 'localhost:5000/x/y:v2', undefined]);
  assert.deepEqual(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']), ['1', 'v2', undefined]);
});

test('written archives read back, are reproducible, and GNU tar agrees with the layout', async (t) => {
  const [a, b] = twoImages();
  const images = [target(a, ['first:1']), target(b, [])];
  const one = await written(images);
  const two = await written(images);
  assert.ok(one.equals(two), 'same images, same bytes');
  const source = await readSource(await treeOf(t, one));
  assert.deepEqual(source.images.map((i) => sha256(i.config)), [a.id, b.id]);
  assert.ok((await bytesOf(source.images[0]!.layers[1]!.open())).equals(layerB));
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'x.tar'), one);
  const r = spawnSync('tar', ['-tvf', path.join(dir, 'x.tar')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^drwxr-xr-x 0\/0 +0 1970-01-01 00:00 blobs\/$/m);
});

test('a layer stream of the wrong length fails the write', async () => {
  const [a] = twoImages();
  const bad = target(a, []);
  bad.layers[0] = { ...bad.layers[0]!, size: bad.layers[0]!.size + 1 };
  await assert.rejects(written([bad]), /instead of the announced/);
});

test('LayerSources descriptors are handed on with the layers', async (t) => {
  const [a] = twoImages();
  const bytes = await written([target(a, ['first:1'])]);
  const source = await readSource(await treeOf(t, bytes));
  const d = source.images[0]!.layers[0]!.descriptor!;
  assert.deepEqual(d, { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: a.diffIds[0] as Digest, size: layerA.length });
});
