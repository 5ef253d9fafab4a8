/**
 * The image service on a real data root (overlay2, and vfs where noted): load/save round
 * trips, tag/untag/rmi semantics and messages, parents, history, inspect, prune, import and
 * the cleanup after failed loads.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, createWriteStream, openSync } from 'node:fs';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';

import { Engine } from '../../src/engine/engine.js';
import type { ImageUser } from '../../src/engine/images.js';
import { ConflictError, DigestMismatchError, InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import {
  buildTar, chainIdsOf, dockerArchive, hex, imageFromLayers, readArchive, sha256,
} from '../helpers/fixtures.js';
import { releaseTempRoot } from '../helpers/strata-cli.js';

const rootOnly = process.getuid?.() === 0 ? undefined : 'needs root (overlay2, device nodes)';

async function setup(t: TestContext, o: { driver?: string; imageUsers?: (id: string) => Promise<ImageUser[]> } = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'strata-eng-'));
  t.after(() => releaseTempRoot(dir));
  const engine = await Engine.open({ dataRoot: path.join(dir, 'root'), storageDriver: o.driver, imageUsers: o.imageUsers });
  const write = async (name: string, bytes: Buffer) => {
    const p = path.join(dir, name);
    await writeFile(p, bytes);
    return p;
  };
  return { dir, engine, write };
}

async function layerdb(engine: Engine): Promise<string[]> {
  return (await readdir(path.join(engine.imageRoot, 'layerdb', 'sha256'))).filter((n) => /^[0-9a-f]{64}$/.test(n)).sort();
}

async function saveTo(engine: Engine, names: string[], file: string): Promise<void> {
  const out = createWriteStream(file);
  try {
    await engine.save(names, out);
  } finally {
    out.end();
    await finished(out).catch(() => undefined);
  }
}

const l1 = buildTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/os', data: 'strata\n' }, { name: 'bin/', type: 'dir' }, { name: 'bin/tool', data: Buffer.alloc(4000, 1), mode: 0o755 }]);
const l2 = buildTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/.wh.os', data: '', mode: 0o600 }, { name: 'app', data: 'app\n' }]);
const l3 = buildTar([{ name: 'more', data: Buffer.alloc(1234, 3) }]);

for (const driver of ['overlay2', 'vfs']) {
  test(`load → save → load into a fresh root keeps IDs and layer bytes (${driver})`, { skip: rootOnly }, async (t) => {
    const { engine, write, dir } = await setup(t, { driver });
    const a = imageFromLayers([l1, l2], ['fx/a:1', 'fx/a:latest']);
    const b = imageFromLayers([l1, l3], ['fx-b:2'], { created: '2023-11-14T22:13:21Z' });
    const loaded = await engine.load(await write('in.tar', dockerArchive([a, b])));
    assert.deepEqual(loaded, [
      { id: a.id, tags: ['fx/a:1', 'fx/a:latest'], replaced: [] },
      { id: b.id, tags: ['fx-b:2'], replaced: [] },
    ]);
    assert.deepEqual(await layerdb(engine), [...new Set([...a.chainIds, ...b.chainIds])].map(hex).sort());

    const file = path.join(dir, 'saved.tar');
    await saveTo(engine, ['fx/a', b.id], file);
    const arch = readArchive(file);
    assert.deepEqual(arch.images.map((i) => sha256(i.config)), [a.id, b.id]);
    assert.deepEqual(arch.images[0]!.repoTags, ['fx/a:1', 'fx/a:latest'], 'a name alone saves every tag');
    assert.equal(arch.images[1]!.repoTags, null, 'an ID saves the image untagged');
    arch.images.forEach((img, k) => img.layers.forEach((bytes, i) => assert.ok(bytes.equals([a, b][k]!.layers[i]!.tar), `image ${k} layer ${i}`)));

    const other = await Engine.open({ dataRoot: path.join(dir, 'root2'), storageDriver: driver });
    const again = await other.load(file);
    assert.deepEqual(again.map((l) => l.id), [a.id, b.id]);
    assert.deepEqual((await other.inspect('fx/a:1')).RootFS.Layers, a.diffIds);
  });
}

test('inspect, list and history have Docker’s shapes and values', { skip: rootOnly }, async (t) => {
  const { engine, write } = await setup(t);
  const created = '2023-11-14T22:13:20.500000000Z';
  const img = imageFromLayers([l1, l2], ['shape:1'], {
    created,
    history: [
      { created, created_by: '/bin/sh -c #(nop) ADD file:x in /' },
      { created, created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true },
      { created, created_by: 'RUN echo <b>', comment: 'c' },
    ],
    extra: { config: { Env: ['A=1'], Cmd: 'sh', Labels: { z: '1', a: '2' }, Unknown: true } },
  });
  await engine.load(await write('in.tar', dockerArchive([img])));
  const ins = await engine.inspect('shape:1');
  assert.deepEqual(Object.keys(ins), ['Id', 'RepoTags', 'RepoDigests', 'Parent', 'Comment', 'Created', 'Container',
    'ContainerConfig', 'DockerVersion', 'Author', 'Config', 'Architecture', 'Os', 'Size', 'VirtualSize', 'GraphDriver', 'RootFS', 'Metadata']);
  assert.equal(ins.Id, img.id);
  assert.equal(ins.Created, '2023-11-14T22:13:20.5Z', 'Go RFC3339Nano: trailing zeros trimmed');
  assert.deepEqual(ins.Config!.Cmd, ['sh'], 'a string Cmd is a one-element list');
  assert.deepEqual(Object.keys(ins.Config!.Labels!), ['a', 'z'], 'maps in Go key order');
  assert.ok(!('Unknown' in ins.Config!));
  assert.equal(ins.ContainerConfig.Env, null);
  assert.equal(ins.Metadata.LastTagTime, '0001-01-01T00:00:00Z', 'load does not stamp lastUpdated');
  const sizes = await Promise.all(img.chainIds.map(async (c) => Number(await readFile(path.join(engine.imageRoot, 'layerdb', 'sha256', hex(c), 'size'), 'utf8'))));
  assert.equal(ins.Size, sizes[0]! + sizes[1]!);
  assert.equal(ins.GraphDriver.Name, 'overlay2');
  assert.deepEqual(Object.keys(ins.GraphDriver.Data!), ['LowerDir', 'MergedDir', 'UpperDir', 'WorkDir']);

  await engine.tag('shape:1', 'other/name');
  assert.match((await engine.inspect(img.id)).Metadata.LastTagTime, /^\d{4}-\d\d-\d\dT/);
  // Docker sorts references by their full name: docker.io/library/shape < docker.io/other/name.
  assert.deepEqual((await engine.inspect(img.id.slice(7, 15))).RepoTags, ['shape:1', 'other/name:latest']);

  const list = await engine.images();
  assert.equal(list.length, 1);
  assert.deepEqual(list[0]!.RepoTags, ['shape:1', 'other/name:latest']);
  assert.equal(list[0]!.Created, 1_699_999_999 + 1);
  assert.equal(list[0]!.Size, ins.Size);

  const h = await engine.history('shape:1');
  assert.deepEqual(h.map((x) => x.Id), [img.id, '<missing>', '<missing>']);
  assert.deepEqual(h.map((x) => x.Size), [sizes[1], 0, sizes[0]]);
  assert.deepEqual(h[0]!.Tags, ['shape:1', 'other/name:latest']);
  assert.equal(h[0]!.Comment, 'c');

  await assert.rejects(engine.inspect('nosuch'), (e: unknown) => e instanceof NotFoundError && e.message === 'No such image: nosuch:latest');
  await assert.rejects(engine.inspect('BAD'), (e: unknown) => e instanceof InvalidArgumentError && /must be lowercase/.test(e.message));
});

test('tags move on load with Docker’s message data, and the old image stays untagged', { skip: rootOnly }, async (t) => {
  const { engine, write } = await setup(t);
  const a = imageFromLayers([l1], ['moving:1']);
  const b = imageFromLayers([l1, l3], ['moving:1']);
  await engine.load(await write('a.tar', dockerArchive([a])));
  const [res] = await engine.load(await write('b.tar', dockerArchive([b])));
  assert.deepEqual(res!.replaced, [{ tag: 'moving:1', oldId: a.id }]);
  const list = await engine.images();
  assert.deepEqual(list.map((s) => [s.Id, s.RepoTags]).sort(), [[a.id, ['<none>:<none>']], [b.id, ['moving:1']]].sort());
  assert.deepEqual((await engine.images({ filters: { dangling: ['true'] } })).map((s) => s.Id), [a.id]);
  await assert.rejects(engine.images({ filters: { dangling: ['maybe'] } }), /^InvalidArgumentError: Invalid filter 'dangling=\[maybe\]'$/);
  await assert.rejects(engine.images({ filters: { colour: ['red'] } }), /Invalid filter 'colour'/);
  assert.deepEqual((await engine.images({ filters: { reference: ['mov*'] } })).map((s) => s.Id), [b.id]);
  assert.deepEqual((await engine.images({ filters: { reference: ['nomatch*'] } })), []);
});

test('a failed load registers nothing, and earlier images of the archive stay', { skip: rootOnly }, async (t) => {
  const { engine, write } = await setup(t);
  const good = imageFromLayers([l1], ['good:1']);
  await engine.load(await write('good.tar', dockerArchive([good])));
  const before = await layerdb(engine);

  // Second layer's bytes do not match the config's diffID; its base layer is shared.
  const wrong = imageFromLayers([l1, l2], ['bad:1']);
  const bad = dockerArchive([wrong], { layerBytes: (_img, i) => (i === 0 ? l1 : l3) });
  await assert.rejects(engine.load(await write('bad.tar', bad)), (e: unknown) => e instanceof DigestMismatchError && /invalid diffID for layer 1/.test(e.message));
  assert.deepEqual(await layerdb(engine), before);
  assert.deepEqual((await engine.images()).map((s) => s.Id), [good.id]);
  assert.deepEqual(await readdir(path.join(engine.imageRoot, 'layerdb', 'tmp')), []);
  assert.deepEqual(await readdir(path.join(engine.dataRoot, 'tmp')), [], 'temp dirs removed');

  const first = imageFromLayers([l3], ['first:1']);
  const mixed = dockerArchive([first, wrong], { layerBytes: (img, i) => (img.id === wrong.id && i === 1 ? l3 : img.layers[i]!.tar) });
  await assert.rejects(engine.load(await write('mixed.tar', mixed)), DigestMismatchError);
  assert.deepEqual((await engine.images()).map((s) => s.RepoTags[0]).sort(), ['first:1', 'good:1']);
  assert.deepEqual(await layerdb(engine), [...before, hex(first.chainIds[0]!)].sort());

  const windows = imageFromLayers([l3], ['win:1'], { extra: { os: 'windows' } });
  await assert.rejects(engine.load(await write('win.tar', dockerArchive([windows]))), /^InvalidArgumentError: cannot load windows image on linux$/);
});

test('rmi: untag vs delete, conflicts with Docker’s messages, records in Docker’s order', { skip: rootOnly }, async (t) => {
  const { engine, write } = await setup(t);
  const img = imageFromLayers([l1, l2], ['busy:latest']);
  await engine.load(await write('in.tar', dockerArchive([img])));
  await engine.tag('busy', 'a/b:1');
  await engine.tag('busy', 'c:2');
  const short = hex(img.id).slice(0, 12);
  await assert.rejects(engine.remove(short), (e: unknown) => e instanceof ConflictError &&
    e.message === `conflict: unable to delete ${short} (must be forced) - image is referenced in multiple repositories`);
  assert.deepEqual(await engine.remove('busy'), [{ Untagged: 'busy:latest' }]);
  assert.deepEqual(await engine.remove('c:2'), [{ Untagged: 'c:2' }]);
  await assert.rejects(engine.remove('c:2'), (e: unknown) => e instanceof NotFoundError && e.message === 'No such image: c:2');
  // One tag left: removing by ID untags it and deletes image and layers (top layer first).
  assert.deepEqual(await engine.remove(short), [
    { Untagged: 'a/b:1' },
    { Deleted: img.id },
    { Deleted: img.chainIds[1]! },
    { Deleted: img.chainIds[0]! },
  ]);
  assert.deepEqual(await layerdb(engine), []);
  assert.deepEqual(await engine.images(), []);

  await engine.load(await write('in.tar', dockerArchive([img])));
  await engine.tag('busy', 'x:1');
  const forced = await engine.remove(img.id, { force: true });
  assert.deepEqual(forced.slice(0, 3), [{ Untagged: 'busy:latest' }, { Untagged: 'x:1' }, { Deleted: img.id }]);
});

test('parents: child conflicts, history through parents, untagged parents pruned unless --no-prune', { skip: rootOnly }, async (t) => {
  const { engine, write } = await setup(t);
  const h = (by: string) => ({ created: '2023-11-14T22:13:20Z', created_by: by });
  const parent = imageFromLayers([l1], [], { history: [h('base')] });
  const child = imageFromLayers([l1, l2], ['child:1'], { history: [h('base'), h('more')] });
  const archive = dockerArchive([parent, child], {
    manifestOverride: (m) => m.map((x, i) => (i === 1 ? { ...x, Parent: parent.id } : x)),
  });
  const loaded = await engine.load(await write('in.tar', archive));
  assert.deepEqual(loaded.map((l) => l.tags), [[], ['child:1']]);
  assert.deepEqual((await engine.images()).map((s) => s.Id), [child.id], 'untagged parent hidden');
  assert.deepEqual((await engine.images({ all: true })).map((s) => s.Id).sort(), [child.id, parent.id].sort());
  assert.equal((await engine.inspect('child:1')).Parent, parent.id);
  assert.deepEqual((await engine.history('child:1')).map((x) => x.Id), [child.id, parent.id]);
  const short = hex(parent.id).slice(0, 12);
  await assert.rejects(engine.remove(parent.id, { force: true }), (e: unknown) => e instanceof ConflictError &&
    e.message === `conflict: unable to delete ${short} (cannot be forced) - image has dependent child images`);

  assert.deepEqual(await engine.remove('child:1', { noPrune: true }), [
    { Untagged: 'child:1' }, { Deleted: child.id }, { Deleted: child.chainIds[1]! },
  ]);
  assert.deepEqual((await engine.images()).map((s) => s.Id), [parent.id], 'the parent is now dangling');

  await engine.load(await write('in.tar', archive));
  assert.deepEqual(await engine.remove('child:1'), [
    { Untagged: 'child:1' }, { Deleted: child.id }, { Deleted: child.chainIds[1]! }, { Deleted: parent.id }, { Deleted: parent.chainIds[0]! },
  ]);
});

test('containers using an image block rmi as Docker says (imageUsers hook)', { skip: rootOnly }, async (t) => {
  const users: ImageUser[] = [];
  const { engine, write } = await setup(t, { imageUsers: async () => users });
  const img = imageFromLayers([l1], ['used:1']);
  await engine.load(await write('in.tar', dockerArchive([img])));
  const short = hex(img.id).slice(0, 12);
  const ctr = 'c'.repeat(64);
  users.push({ id: ctr, running: false });
  await assert.rejects(engine.remove('used:1'), (e: unknown) => e instanceof ConflictError &&
    e.message === `conflict: unable to remove repository reference "used:1" (must force) - container ${ctr.slice(0, 12)} is using its referenced image ${short}`);
  await assert.rejects(engine.remove(short), new RegExp(`unable to delete ${short} \\(must be forced\\) - image is being used by stopped container cccccccccccc`));
  users[0] = { id: ctr, running: true };
  await assert.rejects(engine.remove(short, { force: true }), /\(cannot be forced\) - image is being used by running container cccccccccccc/);
  // Untagging with force works, the image stays (its container keeps it).
  assert.deepEqual(await engine.remove('used:1', { force: true }), [{ Untagged: 'used:1' }]);
  assert.equal((await engine.images({ all: true })).length, 1);
  const df = await engine.systemDf();
  assert.equal(df.Images[0]!.Containers, 1);
});

test('prune: dangling only by default, everything unused with all; space from removed layers', { skip: rootOnly }, async (t) => {
  const { engine, write } = await setup(t);
  const a = imageFromLayers([l1], ['keep:1']);
  const b = imageFromLayers([l3], []);
  await engine.load(await write('in.tar', dockerArchive([a, b])));
  const size = async (c: string) => Number(await readFile(path.join(engine.imageRoot, 'layerdb', 'sha256', hex(c), 'size'), 'utf8'));
  const bSize = await size(b.chainIds[0]!);
  const aSize = await size(a.chainIds[0]!);
  assert.deepEqual(await engine.prune(), { ImagesDeleted: [{ Deleted: b.id }, { Deleted: b.chainIds[0]! }], SpaceReclaimed: bSize });
  assert.deepEqual(await engine.prune(), { ImagesDeleted: null, SpaceReclaimed: 0 });
  assert.deepEqual(await engine.prune({ all: true, filters: { until: ['2000-01-01'] } }), { ImagesDeleted: null, SpaceReclaimed: 0 });
  await assert.rejects(engine.prune({ filters: { until: ['soon'] } }), /failed to parse value as time or duration: "soon"/);
  await assert.rejects(engine.prune({ filters: { until: ['1h', '2h'] } }), /more than one until filter specified/);
  assert.deepEqual(await engine.prune({ all: true }), {
    ImagesDeleted: [{ Untagged: 'keep:1' }, { Deleted: a.id }, { Deleted: a.chainIds[0]! }], SpaceReclaimed: aSize,
  });
});

test('import: one layer, Docker’s config (sorted keys, Imported from -), changes, tag', { skip: rootOnly }, async (t) => {
  const { engine, write } = await setup(t);
  const rootfs = await write('rootfs.tar', buildTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/hi', data: 'hi\n' }]));
  const { id } = await engine.import(rootfs, {
    repository: 'imp/x:1',
    changes: ['ENV A=b C=d', 'CMD echo hi', 'EXPOSE 80 443/udp', 'LABEL k=v', 'WORKDIR w'],
  });
  const raw = await readFile(path.join(engine.imageRoot, 'imagedb', 'content', 'sha256', hex(id)));
  assert.equal(sha256(raw), id);
  const cfg = JSON.parse(raw.toString()) as Record<string, any>;
  assert.deepEqual(Object.keys(cfg), ['architecture', 'comment', 'config', 'container_config', 'created', 'history', 'os', 'rootfs']);
  assert.equal(cfg.comment, 'Imported from -');
  assert.deepEqual(cfg.history, [{ created: cfg.created, comment: 'Imported from -' }]);
  assert.match(cfg.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  assert.deepEqual(Object.keys(cfg.config), ['Hostname', 'Domainname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr',
    'ExposedPorts', 'Tty', 'OpenStdin', 'StdinOnce', 'Env', 'Cmd', 'Image', 'Volumes', 'WorkingDir', 'Entrypoint', 'OnBuild', 'Labels']);
  assert.deepEqual(cfg.config.ExposedPorts, { '443/udp': {}, '80/tcp': {} });
  assert.deepEqual(cfg.config.Env, ['A=b', 'C=d']);
  assert.deepEqual(cfg.config.Cmd, ['/bin/sh', '-c', 'echo hi']);
  assert.equal(cfg.config.WorkingDir, '/w');
  assert.deepEqual(cfg.rootfs.diff_ids, [sha256(await readFile(rootfs))]);
  assert.deepEqual((await engine.inspect('imp/x:1')).RepoTags, ['imp/x:1']);
  assert.notEqual((await engine.inspect('imp/x:1')).Metadata.LastTagTime, '0001-01-01T00:00:00Z');
  await assert.rejects(engine.import(rootfs, { changes: ['RUN x'] }), /^InvalidArgumentError: run is not a valid change command$/);
  const { id: id2 } = await engine.import(rootfs, { message: 'my msg' });
  assert.equal((await engine.inspect(id2)).Comment, 'my msg');
});

test('save resolves names first: errors as Docker’s, nothing written', { skip: rootOnly }, async (t) => {
  const { engine, write, dir } = await setup(t);
  const img = imageFromLayers([l1], ['s:1']);
  await engine.load(await write('in.tar', dockerArchive([img])));
  const file = path.join(dir, 'out.tar');
  await assert.rejects(saveTo(engine, ['nosuch'], file), /^NotFoundError: No such image: nosuch$/);
  await assert.rejects(saveTo(engine, ['s:2'], file), /^NotFoundError: reference does not exist$/);
  await assert.rejects(saveTo(engine, ['BAD'], file), /must be lowercase/);
  assert.equal((await readFile(file)).length, 0, 'not a byte written');
  await saveTo(engine, [hex(img.id).slice(0, 8), 's:1'], file);
  const arch = readArchive(file);
  assert.equal(arch.images.length, 1, 'one image however many names point at it');
  assert.deepEqual(arch.images[0]!.repoTags, ['s:1']);
  assert.deepEqual(chainIdsOf(img.diffIds), img.chainIds);
});

test('save to a file descriptor (layers written in place by workers) gives the stream’s bytes', { skip: rootOnly }, async (t) => {
  const { engine, write, dir } = await setup(t);
  const img = imageFromLayers([l1, l2, l3], ['s:1']);
  await engine.load(await write('in.tar', dockerArchive([img])));
  const streamed = path.join(dir, 'streamed.tar');
  await saveTo(engine, ['s:1'], streamed);
  const placed = path.join(dir, 'placed.tar');
  const fd = openSync(placed, 'wx');
  const seen = new Map<string, number>();
  try {
    await engine.save(['s:1'], { fd }, { onProgress: (e) => seen.set(e.diffId, e.bytes) });
  } finally {
    closeSync(fd);
  }
  assert.ok((await readFile(placed)).equals(await readFile(streamed)));
  assert.equal(seen.size, 3, 'progress for every layer');
  for (const [i, d] of img.diffIds.entries()) assert.equal(seen.get(d), [l1, l2, l3][i]!.length);
});

test('a vfs root keeps its driver when reopened without one', { skip: rootOnly }, async (t) => {
  const { engine, write, dir } = await setup(t, { driver: 'vfs' });
  await engine.load(await write('in.tar', dockerArchive([imageFromLayers([l1], ['v:1'])])));
  const again = await Engine.open({ dataRoot: path.join(dir, 'root') });
  assert.equal(again.driver.name, 'vfs');
  assert.equal((await again.images()).length, 1);
});

