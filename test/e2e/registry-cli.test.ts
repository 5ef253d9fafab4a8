/**
 * pull/push/login/logout through the CLI against Debian's docker-registry on loopback (with
 * and without htpasswd basic auth): round trips keep image IDs, a second push uploads
 * nothing, a pulled image pushes back to the digest it was pulled with, Docker's
 * `distribution/` metadata is written, skopeo interoperates both ways, two concurrent pulls
 * download each layer once, and a tampered blob leaves nothing registered.
 */
import { runcSkipReason } from '../helpers/containers.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { buildBusybox, buildBusyboxSkipReason } from '../helpers/fixtures.js';
import { Dockerd, dockerSkipReason } from '../helpers/docker.js';
import { TestRegistry, registrySkipReason } from '../helpers/registry.js';
import { makeTempRoot, releaseTempRoot, rootSkipReason, strata, strataOk, strataSkipReason } from '../helpers/strata-cli.js';

const skip = strataSkipReason() ?? rootSkipReason() ?? buildBusyboxSkipReason() ?? registrySkipReason({ skopeo: true, htpasswd: true }) ?? runcSkipReason();

let dir: string;
let root: string;
let registry: TestRegistry;
const env = () => ({ ...process.env, STRATA_CONFIG: join(dir, 'config') });
const ok = async (args: string[], r = root) => (await strataOk(args, { root: r, env: env() })).stdout.trim();
const s = (args: string[], r = root) => strata(args, { root: r, env: env() });
let image: string;

before(async () => {
  if (skip) return;
  dir = makeTempRoot('reg-');
  root = join(dir, 'root');
  buildBusybox(join(dir, 'busybox.tar'));
  await ok(['load', '-i', join(dir, 'busybox.tar')]);
  registry = await TestRegistry.start();
  // A three-layer image: busybox plus two committed layers.
  await ok(['run', '--network', 'none', '--name', 'l2', 'busybox', 'sh', '-c', 'head -c 300000 /dev/urandom > /blob1']);
  await ok(['commit', 'l2', 'stage:2']);
  await ok(['run', '--network', 'none', '--name', 'l3', 'stage:2', 'sh', '-c', 'echo third > /third']);
  await ok(['commit', '-c', 'CMD ["cat","/third"]', 'l3', 'stage:3']);
  await ok(['rm', 'l2', 'l3']);
  image = `${registry.host}/team/app:1`;
  await ok(['tag', 'stage:3', image]);
});

after(async () => {
  if (skip) return;
  await registry?.stop();
  releaseTempRoot(dir);
});

/** Blob downloads the registry served, from its access log (one line per request). */
const blobGets = () => registry.logs().split('\n').filter((l) => /"GET \/v2\/[^"]*\/blobs\/sha256:[0-9a-f]{64} HTTP\/1\.1" 20[06]/.test(l)).length;

test('push, second push uploads nothing, rmi, pull back: same ID, layers, distribution metadata', { skip }, async () => {
  const id = await ok(['image', 'inspect', '-f', '{{.Id}}', image]);
  const push1 = await ok(['push', image]);
  assert.match(push1, new RegExp(`^The push refers to repository \\[${registry.host}/team/app\\]\\n`));
  assert.equal((push1.match(/: Pushed/g) ?? []).length, 3, push1);
  const digest = /1: digest: (sha256:[0-9a-f]{64}) size: \d+$/.exec(push1)![1];
  const push2 = await ok(['push', image]);
  assert.equal((push2.match(/Layer already exists/g) ?? []).length, 3, push2);
  assert.equal(/digest: (sha256:[0-9a-f]{64})/.exec(push2)![1], digest, 'same manifest digest');

  await ok(['rmi', image, 'stage:3']);
  const pull = await ok(['pull', image]);
  assert.match(pull, /^1: Pulling from team\/app\n/);
  assert.match(pull, new RegExp(`Digest: ${digest}\\nStatus: Downloaded newer image for ${registry.host}/team/app:1`));
  assert.match(pull, /: Already exists\n/, 'the busybox layer was present');
  assert.equal(await ok(['image', 'inspect', '-f', '{{.Id}}', image]), id);
  assert.deepEqual(JSON.parse(await ok(['image', 'inspect', '-f', '{{json .RepoDigests}}', image])), [`${registry.host}/team/app@${digest}`]);
  assert.equal(await ok(['run', '--rm', '--network', 'none', image]), 'third');
  const dist = join(root, 'image', 'overlay2', 'distribution');
  assert.ok(readdirSync(join(dist, 'diffid-by-digest', 'sha256')).length >= 3);
  assert.ok(readdirSync(join(dist, 'v2metadata-by-diffid', 'sha256')).length >= 3);
  // Pushed again after the pull: the digest it was pulled with.
  const push3 = await ok(['push', image]);
  assert.equal(/digest: (sha256:[0-9a-f]{64})/.exec(push3)![1], digest);
  const again = await ok(['pull', image]);
  assert.match(again, /Status: Image is up to date for/);
});

test('skopeo: an image pushed by skopeo pulls into strata; one pushed by strata reads back in skopeo with the same config digest', { skip }, async () => {
  const tar = join(dir, 'for-skopeo.tar');
  await ok(['save', '-o', tar, 'busybox']);
  const target = `${registry.host}/skopeo/busybox:pushed`;
  const cp = spawnSync('skopeo', ['copy', '--dest-tls-verify=false', `docker-archive:${tar}`, `docker://${target}`], { encoding: 'utf8' });
  assert.equal(cp.status, 0, cp.stderr);
  const fresh = join(dir, 'root-skopeo');
  await ok(['pull', target], fresh);
  assert.equal(await ok(['run', '--rm', '--network', 'none', target, 'echo', 'ok'], fresh), 'ok');
  const inspect = spawnSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${image}`], { encoding: 'utf8' });
  assert.equal(inspect.status, 0, inspect.stderr);
  const manifest = JSON.parse(inspect.stdout);
  assert.equal(manifest.config.digest, await ok(['image', 'inspect', '-f', '{{.Id}}', image]));
  await s(['rm', '-f', ...(await s(['ps', '-aq'], fresh)).stdout.split('\n').filter(Boolean)], fresh);
});

test('two concurrent pulls into one root download each layer once', { skip }, async () => {
  const fresh = join(dir, 'root-concurrent');
  await ok(['images'], fresh);
  const before = blobGets();
  const [a, b] = await Promise.all([s(['pull', image], fresh), s(['pull', image], fresh)]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const layerGets = blobGets() - before;
  // Three layer blobs once each, plus the config blob per pull.
  assert.ok(layerGets <= 3 + 2, `blob GETs: ${layerGets}\n${a.stdout}\n${b.stdout}`);
  assert.equal((await ok(['images', '-q'], fresh)).split('\n').length, 1);
});

test('a tampered blob: clear digest error, nothing registered', { skip }, async () => {
  const fresh = join(dir, 'root-tampered');
  const target = `${registry.host}/team/tampered:1`;
  await ok(['tag', image, target]);
  const out = await ok(['push', target]);
  assert.match(out, /digest: sha256:/);
  const manifest = JSON.parse(spawnSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${target}`], { encoding: 'utf8' }).stdout);
  const top = manifest.layers.at(-1).digest as string;
  const blob = registry.blobPath(top);
  const original = spawnSync('cat', [blob]).stdout as Buffer;
  const evil = Buffer.from(original);
  evil[evil.length - 20] ^= 0xff;
  writeFileSync(blob, evil);
  try {
    const r = await s(['pull', target], fresh);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /digest|verify|mismatch/i);
    assert.equal(await ok(['images', '-q'], fresh), '');
    assert.deepEqual(readdirSync(join(fresh, 'image', 'overlay2', 'layerdb', 'sha256')), []);
  } finally {
    writeFileSync(blob, original);
  }
});

test('login/logout with htpasswd basic auth: push refused without, accepted with', { skip }, async () => {
  const secured = await TestRegistry.start({ users: [{ username: 'alice', password: 's3cret' }] });
  try {
    const target = `${secured.host}/private/app:1`;
    await ok(['tag', 'busybox', target]);
    const denied = await s(['push', target]);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /unauthorized|authentication required|no basic auth credentials/);
    const bad = await s(['login', '-u', 'alice', '-p', 'wrong', secured.host]);
    assert.notEqual(bad.code, 0);
    const login = await strata(['login', '-u', 'alice', '--password-stdin', secured.host], { root, env: env(), input: 's3cret\n' });
    assert.equal(login.code, 0, login.stderr);
    assert.equal(login.stdout, 'Login Succeeded\n');
    assert.match(await ok(['push', target]), /digest: sha256:/);
    assert.equal(await ok(['logout', secured.host]), `Removing login credentials for ${secured.host}`);
    assert.equal(await ok(['logout', secured.host]), `Not logged in to ${secured.host}`);
  } finally {
    await secured.stop();
  }
});

test('docker pulls what strata pushed: same image ID (config digest)', { skip: skip ?? dockerSkipReason() }, async () => {
  const docker = await Dockerd.start();
  try {
    await docker.ok(['pull', image]);
    const theirs = (await docker.ok(['image', 'inspect', '-f', '{{.Id}}', image])).stdout.trim();
    assert.equal(theirs, await ok(['image', 'inspect', '-f', '{{.Id}}', image]));
    const out = (await docker.ok(['run', '--rm', '--network', 'none', image])).stdout;
    assert.equal(out, 'third\n');
  } finally {
    await docker.stop();
  }
});
