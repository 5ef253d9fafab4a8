import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { parseNormalizedNamed as ref } from '../../src/images/reference.js';
import { ReferenceStore } from '../../src/images/reference-store.js';
import type { Digest } from '../../src/digest.js';

const ID1 = ('sha256:' + '1'.repeat(64)) as Digest;
const ID2 = ('sha256:' + '2'.repeat(64)) as Digest;
const M1 = 'sha256:' + 'a'.repeat(64);

async function tempRoot(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'strata-refs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'image', 'vfs');
}

test('a new store writes {"Repositories":{}} with mode 0600 and no newline', async (t) => {
  const root = await tempRoot(t);
  const store = await ReferenceStore.open({ imageRoot: root });
  const file = path.join(root, 'repositories.json');
  assert.equal(store.file, file);
  assert.equal(await readFile(file, 'utf8'), '{"Repositories":{}}');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await stat(root)).mode & 0o777, 0o700);
});

test('repositories.json bytes match Docker: familiar keys, Go key order, digest-only for tag+digest', async (t) => {
  const root = await tempRoot(t);
  const store = await ReferenceStore.open({ imageRoot: root });
  await store.addTag(ref('localhost:5000/app:v1'), ID2);
  await store.addTag(ref('user/app'), ID2);
  await store.addDigest(ref(`busybox:1.36@${M1}`), ID1);
  await store.addTag(ref('docker.io/library/busybox:latest'), ID1);
  const expected =
    '{"Repositories":{' +
    `"busybox":{"busybox:latest":"${ID1}","busybox@${M1}":"${ID1}"},` +
    `"localhost:5000/app":{"localhost:5000/app:v1":"${ID2}"},` +
    `"user/app":{"user/app:latest":"${ID2}"}}}`;
  assert.equal(await readFile(store.file, 'utf8'), expected);
  assert.equal((await stat(store.file)).mode & 0o777, 0o600);

  assert.equal(await store.get(ref('busybox')), ID1);
  assert.equal(await store.get(ref(`busybox@${M1}`)), ID1);
  assert.equal(await store.get(ref('busybox:nope')), undefined);
  assert.deepEqual(
    (await store.references(ID1)).map((r) => r.toString()),
    [`docker.io/library/busybox:latest`, `docker.io/library/busybox@${M1}`],
  );
  assert.equal((await store.list()).length, 4);
});

test('tag and digest errors are Docker\'s', async (t) => {
  const store = await ReferenceStore.open({ imageRoot: await tempRoot(t) });
  await assert.rejects(store.addTag(ref(`busybox@${M1}`), ID1), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'refusing to create a tag with a digest reference',
  });
  await assert.rejects(store.addTag(ref('sha256:' + 'c'.repeat(64)), ID1), {
    message: 'refusing to create an ambiguous tag using digest algorithm as name',
  });
  await store.addTag(ref('app:1'), ID1);
  await store.addTag(ref('app:1'), ID1); // same target: no-op
  await assert.rejects(store.addTag(ref('app:1'), ID2), {
    code: 'ERR_CONFLICT',
    message: `tag app:1 is already set to image ${ID1}, use the force option to replace it`,
  });
  await store.addTag(ref('app:1'), ID2, { force: true });
  assert.equal(await store.get(ref('app:1')), ID2);

  await store.addDigest(ref(`app@${M1}`), ID1);
  await assert.rejects(store.addDigest(ref(`app@${M1}`), ID2, { force: true }), {
    code: 'ERR_CONFLICT',
    message: `cannot overwrite digest ${M1}`,
  });
});

test('delete removes the ref and the repository with its last ref', async (t) => {
  const store = await ReferenceStore.open({ imageRoot: await tempRoot(t) });
  await store.addTag(ref('app:1'), ID1);
  await store.addTag(ref('app'), ID1);
  await store.delete(ref('app')); // means app:latest
  assert.equal(await readFile(store.file, 'utf8'), `{"Repositories":{"app":{"app:1":"${ID1}"}}}`);
  await store.delete(ref('app:1'));
  assert.equal(await readFile(store.file, 'utf8'), '{"Repositories":{}}');
  await assert.rejects(store.delete(ref('app:1')), { code: 'ERR_NOT_FOUND', message: 'reference does not exist' });
});

test('concurrent writers through separate instances lose no tag', async (t) => {
  const root = await tempRoot(t);
  const a = await ReferenceStore.open({ imageRoot: root });
  const b = await ReferenceStore.open({ imageRoot: root });
  const jobs: Promise<void>[] = [];
  for (let i = 0; i < 20; i++) jobs.push((i % 2 ? a : b).addTag(ref(`app:t${i}`), i % 3 ? ID1 : ID2));
  await Promise.all(jobs);
  const repos = JSON.parse(await readFile(root + '/repositories.json', 'utf8')) as { Repositories: Record<string, Record<string, string>> };
  assert.equal(Object.keys(repos.Repositories.app!).length, 20);
});

test('entries it cannot parse survive a rewrite', async (t) => {
  const root = await tempRoot(t);
  const store = await ReferenceStore.open({ imageRoot: root });
  const { writeFile } = await import('node:fs/promises');
  await writeFile(store.file, `{"Repositories":{"Weird":{"Weird:x":"${ID1}"}}}`);
  await store.addTag(ref('app:1'), ID2);
  assert.equal(
    await readFile(store.file, 'utf8'),
    `{"Repositories":{"Weird":{"Weird:x":"${ID1}"},"app":{"app:1":"${ID2}"}}}`,
  );
  assert.equal((await store.list()).length, 1);
});

test('recover deletes atomic-write leftovers of repositories.json', async (t) => {
  const root = await tempRoot(t);
  const store = await ReferenceStore.open({ imageRoot: root });
  const { readdir, writeFile } = await import('node:fs/promises');
  await writeFile(path.join(root, '.tmp-repositories.json0123456789ab'), '{"Repositories":');
  await store.recover();
  assert.deepEqual((await readdir(root)).sort(), ['.repositories.lock', 'repositories.json']);
});
