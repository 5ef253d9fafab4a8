/**
 * Pure container-option logic, table-driven: `-p` parsing (docker's nat.ParsePortSpec rules and
 * messages), env files and `-e NAME`, and how run options merge with the image config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { mergeContainerConfig, mergeEnv, parseEnvFile, resolveEnvFlags } from '../../src/engine/container-config.js';
import { parsePublishFlag } from '../../src/engine/ports.js';

test('-p: docker\'s forms and errors', () => {
  const ok: Array<[string, Array<[string, string, string]>]> = [
    ['80', [['80/tcp', '', '']]],
    ['8080:80', [['80/tcp', '', '8080']]],
    ['127.0.0.1:8080:80', [['80/tcp', '127.0.0.1', '8080']]],
    ['127.0.0.1::80', [['80/tcp', '127.0.0.1', '']]],
    ['53:53/udp', [['53/udp', '', '53']]],
    ['[::1]:8080:80', [['80/tcp', '::1', '8080']]],
    ['8000-8001:80-81', [['80/tcp', '', '8000'], ['81/tcp', '', '8001']]],
  ];
  for (const [raw, expected] of ok) {
    assert.deepEqual(parsePublishFlag(raw).map((b) => [b.containerPort, b.hostIp, b.hostPort]), expected, raw);
  }
  const bad: Array<[string, RegExp]> = [
    ['abc', /Invalid containerPort: abc/],
    ['x:80', /Invalid hostPort: x/],
    ['80/xyz', /Invalid proto: xyz/],
    ['999.1.1.1:80:80', /Invalid ip address: 999.1.1.1/],
    ['70000:80', /Invalid hostPort: 70000/],
    ['8000-8002:80-81', /Invalid ranges specified for container and host Ports/],
    ['1:2:3:4', /Invalid port specification/],
  ];
  for (const [raw, expected] of bad) assert.throws(() => parsePublishFlag(raw), expected, raw);
});

test('env: files, -e NAME from the environment, merge by name', () => {
  const environ = { FROM_HOST: 'h' };
  assert.deepEqual(parseEnvFile('# comment\n\nA=1\n  B=two words\nFROM_HOST\nMISSING\n', 'env', environ), ['A=1', 'B=two words', 'FROM_HOST=h']);
  assert.throws(() => parseEnvFile('BAD NAME=1\n', 'env', environ), /variable 'BAD NAME' contains whitespaces/);
  assert.deepEqual(resolveEnvFlags(['X=1', 'FROM_HOST', 'MISSING'], environ), ['X=1', 'FROM_HOST=h']);
  assert.throws(() => resolveEnvFlags(['=x'], environ), /invalid environment variable: =x/);
  assert.deepEqual(mergeEnv(['PATH=/bin', 'A=1'], ['A=2', 'B=3']), ['PATH=/bin', 'A=2', 'B=3']);
});

test('config merge: Cmd replaced by arguments, --entrypoint resets Cmd, ports and volumes unioned', () => {
  const image = {
    Cmd: ['sh'], Entrypoint: null, Env: ['PATH=/bin'], WorkingDir: '/app', User: 'nobody',
    ExposedPorts: { '80/tcp': {} as Record<string, never> }, Volumes: { '/data': {} as Record<string, never> }, Labels: { a: '1' },
  };
  const base = { hostname: 'abcdef012345', imageName: 'img' };
  const plain = mergeContainerConfig(image, { image: 'img' }, base);
  assert.deepEqual([plain.Cmd, plain.Entrypoint, plain.WorkingDir, plain.User, plain.Hostname], [['sh'], null, '/app', 'nobody', 'abcdef012345']);
  const args = mergeContainerConfig(image, { image: 'img', cmd: ['echo', 'hi'], env: ['X=1'], labels: { b: '2' } }, base);
  assert.deepEqual(args.Cmd, ['echo', 'hi']);
  assert.deepEqual(args.Env, ['PATH=/bin', 'X=1']);
  assert.deepEqual(args.Labels, { a: '1', b: '2' });
  const ep = mergeContainerConfig(image, { image: 'img', entrypoint: 'cat' }, base);
  assert.deepEqual([ep.Entrypoint, ep.Cmd], [['cat'], null]);
  const ports = mergeContainerConfig(image, { image: 'img', publish: [{ containerPort: '443/tcp', hostIp: '', hostPort: '8443' }], exposedPorts: ['53/udp'] }, base);
  assert.deepEqual(Object.keys(ports.ExposedPorts ?? {}), ['443/tcp', '53/udp', '80/tcp']);
  assert.deepEqual(ports.Volumes, { '/data': {} });
  assert.throws(() => mergeContainerConfig(image, { image: 'img', workdir: 'rel' }, base), /the working directory 'rel' is invalid, it needs to be an absolute path/);
});
