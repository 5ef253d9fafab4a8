import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  familiarName,
  familiarString,
  parseDockerRef,
  parseNormalizedNamed,
  parseReference,
} from '../../src/images/reference.js';

const D64 = 'sha256:' + 'ab'.repeat(32);

// input → [full name, tag, digest, familiar string]
const VALID: Array<[string, string, string | undefined, string | undefined, string]> = [
  ['busybox', 'docker.io/library/busybox', undefined, undefined, 'busybox'],
  ['busybox:1.36', 'docker.io/library/busybox', '1.36', undefined, 'busybox:1.36'],
  ['library/busybox', 'docker.io/library/busybox', undefined, undefined, 'busybox'],
  ['docker.io/busybox:latest', 'docker.io/library/busybox', 'latest', undefined, 'busybox:latest'],
  ['docker.io/library/busybox', 'docker.io/library/busybox', undefined, undefined, 'busybox'],
  ['index.docker.io/library/busybox', 'docker.io/library/busybox', undefined, undefined, 'busybox'],
  ['user/app', 'docker.io/user/app', undefined, undefined, 'user/app'],
  ['docker.io/user/app:v1', 'docker.io/user/app', 'v1', undefined, 'user/app:v1'],
  ['library/a/b', 'docker.io/library/a/b', undefined, undefined, 'library/a/b'],
  ['localhost/foo', 'localhost/foo', undefined, undefined, 'localhost/foo'],
  ['localhost:5000/x:tag', 'localhost:5000/x', 'tag', undefined, 'localhost:5000/x:tag'],
  [`host:5000/a/b@${D64}`, 'host:5000/a/b', undefined, D64, `host:5000/a/b@${D64}`],
  [`busybox:1@${D64}`, 'docker.io/library/busybox', '1', D64, `busybox:1@${D64}`],
  ['registry.example.com/a/b/c:1.0', 'registry.example.com/a/b/c', '1.0', undefined, 'registry.example.com/a/b/c:1.0'],
  ['a.b/c', 'a.b/c', undefined, undefined, 'a.b/c'],
  ['LOCALHOST:5000/foo', 'LOCALHOST:5000/foo', undefined, undefined, 'LOCALHOST:5000/foo'],
  ['[::1]:5000/foo', '[::1]:5000/foo', undefined, undefined, '[::1]:5000/foo'],
  ['foo_bar/baz', 'docker.io/foo_bar/baz', undefined, undefined, 'foo_bar/baz'],
  ['foo__bar', 'docker.io/library/foo__bar', undefined, undefined, 'foo__bar'],
  ['foo--bar.x', 'docker.io/library/foo--bar.x', undefined, undefined, 'foo--bar.x'],
  ['a:' + 'T'.repeat(128), 'docker.io/library/a', 'T'.repeat(128), undefined, 'a:' + 'T'.repeat(128)],
  // No slash, so "localhost" is a repository and 5000 its tag, as in Docker.
  ['localhost:5000', 'docker.io/library/localhost', '5000', undefined, 'localhost:5000'],
  [`sha256:${'c'.repeat(64)}`, 'docker.io/library/sha256', 'c'.repeat(64), undefined, `sha256:${'c'.repeat(64)}`],
];

const INVALID: Array<[string, string]> = [
  ['Busybox', 'invalid reference format: repository name must be lowercase'],
  ['docker.io/Library/busybox', 'invalid reference format: repository name must be lowercase'],
  ['Foo/bar', 'invalid reference format: repository name must be lowercase'],
  ['busybox:', 'invalid reference format'],
  ['busybox:-x', 'invalid reference format'],
  ['a:' + 'T'.repeat(129), 'invalid reference format'],
  ['foo___bar', 'invalid reference format'],
  ['foo.-bar', 'invalid reference format'],
  ['-foo', 'invalid reference format'],
  ['foo/', 'invalid reference format'],
  ['busybox@sha256:abc', 'invalid reference format'],
  [`busybox@sha256:${'a'.repeat(32)}`, 'invalid checksum digest length'],
  [`busybox@md5:${'a'.repeat(32)}`, 'unsupported digest algorithm'],
  [`busybox@sha256:${'A'.repeat(64)}`, 'invalid checksum digest format'],
  ['a'.repeat(64), `invalid repository name (${'a'.repeat(64)}), cannot specify 64-byte hexadecimal strings`],
  ['a/'.repeat(127) + 'abc', 'repository name must not be more than 255 characters'],
  ['my image', 'invalid reference format'],
];

test('valid references normalise like Docker', () => {
  for (const [input, name, tag, digest, familiar] of VALID) {
    const ref = parseNormalizedNamed(input);
    assert.equal(ref.name, name, input);
    assert.equal(ref.tag, tag, input);
    assert.equal(ref.digest, digest, input);
    assert.equal(familiarString(ref), familiar, input);
  }
});

test('invalid references fail with Docker messages', () => {
  for (const [input, message] of INVALID) {
    assert.throws(() => parseNormalizedNamed(input), { code: 'ERR_INVALID_ARGUMENT', message }, input);
  }
});

test('parseDockerRef adds :latest and prefers the digest', () => {
  assert.equal(parseDockerRef('busybox').toString(), 'docker.io/library/busybox:latest');
  assert.equal(parseDockerRef('user/app').toString(), 'docker.io/user/app:latest');
  assert.equal(parseDockerRef('localhost:5000/x').toString(), 'localhost:5000/x:latest');
  assert.equal(parseDockerRef(`busybox:1@${D64}`).toString(), `docker.io/library/busybox@${D64}`);
  assert.equal(parseDockerRef(`busybox@${D64}`).toString(), `docker.io/library/busybox@${D64}`);
});

test('familiarName strips only docker.io and a single-level library/', () => {
  assert.equal(familiarName(parseNormalizedNamed('docker.io/library/busybox:1')), 'busybox');
  assert.equal(familiarName(parseNormalizedNamed('docker.io/library/a/b')), 'library/a/b');
  assert.equal(familiarName(parseNormalizedNamed('quay.io/library/busybox')), 'quay.io/library/busybox');
  assert.equal(familiarName(parseNormalizedNamed('localhost:5000/app')), 'localhost:5000/app');
});

test('parseReference keeps names as written', () => {
  const ref = parseReference('busybox:1');
  assert.equal(ref.domain, '');
  assert.equal(ref.toString(), 'busybox:1');
  assert.throws(() => parseReference(''), { message: 'repository name must have at least one component' });
  assert.throws(() => parseReference('UPPER'), { message: 'invalid reference format: repository name must be lowercase' });
});
