import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { ImageStore } from '../../src/images/image-store.js';
import type { Digest } from '../../src/digest.js';

const DIFF1 = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';
const DIFF2 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
// facts §9: the chainID of [DIFF1, DIFF2]
const CHAIN2 = 'sha256:33b3e894f3d840843a86495314bf58ac707860d3553f5535922e180a451dc751';

function id(raw: Buffer): Digest {
  return `sha256:${createHash('sha256').update(raw).digest('hex')}`;
}

function config(extra: Record<string, unknown> = {}, diffIds = [DIFF1, DIFF2]): Buffer {
  return Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, ...extra }));
}

async function open(t: { after: (fn: () => Promise<void>) => void }, layers = new Set([CHAIN2, DIFF1])) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'strata-imgs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const imageRoot = path.join(dir, 'image', 'overlay2');
  const asked: string[] = [];
  const store = await ImageStore.open({
    imageRoot,
    hasLayer: async (c) => {
      asked.push(c);
      return layers.has(c);
    },
  });
  return { store, imageRoot, asked };
}

test('create stores the exact bytes (0600) under content/sha256 and is idempotent', async (t) => {
  const { store, imageRoot, asked } = await open(t);
  // Key order and spacing that a re-serialisation would change.
  const raw = Buffer.from(`{"rootfs":{"type":"layers","diff_ids":["${DIFF1}","${DIFF2}"]},  "os":"linux"}`);
  const imageId = await store.create(raw);
  assert.equal(imageId, id(raw));
  assert.deepEqual(asked, [CHAIN2], 'the top chainID is checked');
  const file = path.join(imageRoot, 'imagedb', 'content', 'sha256', imageId.slice(7));
  assert.deepEqual(await readFile(file), raw);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  for (const d of ['imagedb', 'imagedb/content/sha256', 'imagedb/metadata/sha256']) {
    assert.equal((await stat(path.join(imageRoot, d))).mode & 0o777, 0o700, d);
  }
  assert.equal(await store.create(raw), imageId);
  const rec = await store.get(imageId);
  assert.ok(rec);
  assert.deepEqual(rec.raw, raw);
  assert.equal(rec.topLayer, CHAIN2);
  assert.equal(rec.config.os, 'linux');
  assert.deepEqual((await store.list()).map((r) => r.id), [imageId]);
});

test('create refuses what Docker refuses and writes nothing', async (t) => {
  const { store, imageRoot } = await open(t, new Set());
  await assert.rejects(store.create(Buffer.alloc(0)), { message: 'invalid empty data' });
  await assert.rejects(store.create(Buffer.from('{"os":"linux"}')), { message: 'invalid image JSON, no RootFS key' });
  await assert.rejects(
    store.create(config({ history: [{}, { empty_layer: true }, {}, {}] })),
    { message: 'too many non-empty layers in History section' },
  );
  await assert.rejects(store.create(config()), {
    code: 'ERR_INVALID_ARGUMENT',
    message: `failed to get layer ${CHAIN2}: layer does not exist`,
  });
  assert.deepEqual(await readdir(path.join(imageRoot, 'imagedb', 'content', 'sha256')), []);
  // An image without layers needs none.
  await store.create(config({}, []));
});

test('get re-hashes the bytes: a modified config fails to verify', async (t) => {
  const { store, imageRoot } = await open(t);
  const imageId = await store.create(config());
  await writeFile(path.join(imageRoot, 'imagedb', 'content', 'sha256', imageId.slice(7)), config({ os: 'evil' }));
  await assert.rejects(store.get(imageId), { code: 'ERR_DIGEST_MISMATCH', message: `failed to verify: ${imageId}` });
  assert.deepEqual(await store.list(), [], 'list leaves out images that fail to verify');
});

test('resolveId: full, sha256:-prefixed, unique prefix, ambiguous, unknown', async (t) => {
  const { store } = await open(t);
  // Find two configs whose ids share a first hex digit, and a third that differs.
  const byFirst = new Map<string, Digest[]>();
  let i = 0;
  while (![...byFirst.values()].some((v) => v.length >= 2)) {
    const d = await store.create(config({ comment: `c${i++}` }));
    const list = byFirst.get(d[7]!) ?? [];
    list.push(d);
    byFirst.set(d[7]!, list);
  }
  const [a, b] = [...byFirst.values()].find((v) => v.length >= 2)!;
  assert.equal(await store.resolveId(a!), a);
  assert.equal(await store.resolveId(a!.slice(7)), a);
  assert.equal(await store.resolveId(a!.slice(0, 19)), a);
  let n = 1;
  while (a!.slice(7, 7 + n) === b!.slice(7, 7 + n)) n++;
  assert.equal(await store.resolveId(a!.slice(7, 7 + n)), a);
  await assert.rejects(store.resolveId(a!.slice(7, 8)), /ambiguous digest string/);
  assert.equal(await store.resolveId('zz'), undefined, 'not hex');
  assert.equal(await store.resolveId(''), undefined);
  assert.equal(await store.resolveId('f'.repeat(64)), undefined, 'full id of nothing stored');
});

test('parent metadata, children, lastUpdated and delete', async (t) => {
  const { store, imageRoot } = await open(t);
  const parent = await store.create(config({ comment: 'parent' }));
  const child = await store.create(config({ comment: 'child' }));
  await store.setParent(child, parent);
  const meta = (i: Digest, k: string) => path.join(imageRoot, 'imagedb', 'metadata', 'sha256', i.slice(7), k);
  assert.equal(await readFile(meta(child, 'parent'), 'utf8'), parent);
  assert.equal((await stat(meta(child, 'parent'))).mode & 0o777, 0o600);
  assert.equal((await stat(path.dirname(meta(child, 'parent')))).mode & 0o777, 0o700);
  assert.deepEqual(await store.children(parent), [child]);
  assert.equal((await store.get(child))?.parent, parent);
  await assert.rejects(store.setParent(child, ('sha256:' + '9'.repeat(64)) as Digest), /unknown parent image ID/);

  await store.setLastUpdated(parent);
  const stamp = await readFile(meta(parent, 'lastUpdated'), 'utf8');
  assert.match(stamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/);
  assert.ok(Math.abs(Date.parse(stamp) - Date.now()) < 60_000);

  await store.delete(parent);
  assert.equal(await store.get(parent), undefined);
  await assert.rejects(stat(path.dirname(meta(parent, 'x'))), { code: 'ENOENT' });
  await assert.rejects(stat(meta(child, 'parent')), { code: 'ENOENT' }, 'the child lost its parent link');
  assert.equal((await store.get(child))?.parent, undefined);
  await assert.rejects(store.delete(parent), { code: 'ERR_NOT_FOUND', message: `unrecognized image ID ${parent}` });
});

test('recover deletes atomic-write leftovers and nothing else', async (t) => {
  const { store, imageRoot } = await open(t);
  const imageId = await store.create(config());
  await store.setLastUpdated(imageId);
  const content = path.join(imageRoot, 'imagedb', 'content', 'sha256');
  const meta = path.join(imageRoot, 'imagedb', 'metadata', 'sha256', imageId.slice(7));
  await writeFile(path.join(content, `.tmp-${imageId.slice(7)}0123456789ab`), 'partial');
  await writeFile(path.join(meta, '.tmp-parent0123456789ab'), 'partial');
  await store.recover();
  assert.deepEqual(await readdir(content), [imageId.slice(7)]);
  assert.deepEqual(await readdir(meta), ['lastUpdated']);
});
