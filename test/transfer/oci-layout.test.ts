/**
 * OCI layout medium: index.json → manifests → config/layers (gzip layers, nested indexes,
 * tags from annotations), digest checks, hostile digests, and the directory writer.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';

import { DigestMismatchError, InvalidArchiveError } from '../../src/errors.js';
import { parseNormalizedNamed, withDefaultTag } from '../../src/images/reference.js';
import { openDirTree, openTarTree } from '../../src/transfer/file-tree.js';
import { readSource } from '../../src/transfer/input.js';
import * as ociLayout from '../../src/transfer/oci-layout.js';
import { buildTar, hex, imageFromLayers, ociArchive, parseTar, sha256 } from '../helpers/fixtures.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'strata-oci-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function treeOf(t: TestContext, bytes: Buffer) {
  const file = path.join(await tempDir(t), 'layout.tar');
  await writeFile(file, bytes);
  return openTarTree(file);
}

async function bytesOf(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const layer1 = buildTar([{ name: 'x/', type: 'dir' }, { name: 'x/f', data: 'eff\n' }]);
const layer2 = buildTar([{ name: 'y', data: Buffer.alloc(3000, 9) }]);

/** An OCI layout tar built by hand from blobs. */
function layoutTar(blobs: Map<string, Buffer>, index: unknown): Buffer {
  return buildTar([
    { name: 'oci-layout', data: '{"imageLayoutVersion": "1.0.0"}' },
    { name: 'index.json', data: JSON.stringify(index) },
    ...[...blobs].map(([h, data]) => ({ name: `blobs/sha256/${h}`, data })),
  ]);
}

test('reads a pure OCI layout with gzip layers; tags come from io.containerd.image.name', async (t) => {
  const img = imageFromLayers([layer1, layer2], ['fx-oci:v1']);
  const source = await readSource(await treeOf(t, ociArchive([img], { gzipLayers: true })));
  assert.equal(source.format, 'oci-layout');
  assert.equal(source.images.length, 1);
  const s = source.images[0]!;
  assert.ok(s.config.equals(img.config));
  assert.deepEqual(s.repoTags, ['docker.io/library/fx-oci:v1']);
  assert.ok(gunzipSync(await bytesOf(s.layers[1]!.open())).equals(layer2), 'layer bytes as stored (gzip)');
});

test('an index entry without a usable name loads untagged; several tags of one manifest merge', async (t) => {
  const img = imageFromLayers([layer1], []);
  const blobs = new Map<string, Buffer>();
  blobs.set(hex(img.diffIds[0]!), layer1);
  blobs.set(hex(img.id), img.config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: img.id, size: img.config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: img.diffIds[0], size: layer1.length }],
  }));
  blobs.set(hex(sha256(manifest)), manifest);
  const desc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length };
  const index = {
    schemaVersion: 2,
    manifests: [
      { ...desc, annotations: { 'org.opencontainers.image.ref.name': 'v1' } },
      { ...desc, annotations: { 'org.opencontainers.image.ref.name': 'example.com/app:2' } },
      { ...desc, annotations: { 'io.containerd.image.name': 'docker.io/library/app:3' } },
    ],
  };
  const source = await readSource(await treeOf(t, layoutTar(blobs, index)));
  assert.equal(source.images.length, 1);
  assert.deepEqual(source.images[0]!.repoTags, ['example.com/app:2', 'docker.io/library/app:3']);

  // Nested index: the entry for this host's platform is chosen.
  const platform = ociLayout.hostPlatform();
  const nested = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { ...desc, digest: `sha256:${'0'.repeat(64)}`, platform: { os: 'linux', architecture: 'not-this-one' } },
      { ...desc, platform: { os: platform.os, architecture: platform.architecture } },
    ],
  }));
  blobs.set(hex(sha256(nested)), nested);
  const nestedIndex = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256(nested), size: nested.length }] };
  const fromNested = await readSource(await treeOf(t, layoutTar(blobs, nestedIndex)));
  assert.equal(sha256(fromNested.images[0]!.config), img.id);
});

test('digests are checked and must be plain hex (no paths smuggled through them)', async (t) => {
  const img = imageFromLayers([layer1], ['x:1']);
  const good = parseTar(ociArchive([img]));
  const blobs = new Map(good.filter((e) => e.name.startsWith('blobs/sha256/') && e.typeflag === '0').map((e) => [e.name.slice(13), e.data]));
  const index = JSON.parse(good.find((e) => e.name === 'index.json')!.data.toString()) as { manifests: Array<{ digest: string }> };

  const traversal = { ...index, manifests: [{ ...index.manifests[0]!, digest: 'sha256:../../../../etc/passwd' }] };
  await assert.rejects(readSource(await treeOf(t, layoutTar(blobs, traversal))), (err: unknown) =>
    err instanceof InvalidArchiveError && /unsupported digest/.test(err.message));

  const tampered = new Map(blobs);
  tampered.set(hex(img.id), Buffer.from(img.config.toString().replace('amd64', 'arm64')));
  await assert.rejects(readSource(await treeOf(t, layoutTar(tampered, index))), (err: unknown) =>
    err instanceof DigestMismatchError && /config/.test(err.message));

  const noIndex = buildTar([{ name: 'oci-layout', data: '{}' }]);
  await assert.rejects(readSource(await treeOf(t, noIndex)), /does not contain a manifest\.json/);
});

test('writeDirectory writes a layout that reads back, layer blobs checked against their diffIDs', async (t) => {
  const img = imageFromLayers([layer1, layer2], ['app:1']);
  const dir = path.join(await tempDir(t), 'layout');
  const target = {
    id: img.id, config: img.config, tags: [withDefaultTag(parseNormalizedNamed('app:1'))],
    layers: img.layers.map((l) => ({ diffId: l.diffId, size: l.tar.length, open: async () => Readable.from([l.tar]) })),
  };
  await ociLayout.writeDirectory([target], dir);
  assert.equal(await readFile(path.join(dir, 'oci-layout'), 'utf8'), '{"imageLayoutVersion": "1.0.0"}');
  const source = await readSource(openDirTree(dir));
  assert.deepEqual(source.images[0]!.repoTags, ['docker.io/library/app:1']);
  assert.ok((await bytesOf(source.images[0]!.layers[1]!.open())).equals(layer2));

  const wrong = { ...target, layers: [{ ...target.layers[0]!, open: async () => Readable.from([layer2]) }] };
  const dir2 = path.join(await tempDir(t), 'layout2');
  await assert.rejects(ociLayout.writeDirectory([wrong], dir2), DigestMismatchError);
  assert.deepEqual((await readdir(path.join(dir2, 'blobs', 'sha256'))).filter((n) => n.startsWith('.tmp')), [], 'no temp blob left');
});
