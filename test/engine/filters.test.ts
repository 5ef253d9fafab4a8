/** Filter helpers: Go's path.Match, durations, `until` values, label matching; import changes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { emptyContainerConfig, parseGoTime, toContainerConfig } from '../../src/engine/api-types.js';
import { applyChanges } from '../../src/engine/changes.js';
import { matchLabels, matchNoLabels, parseGoDuration, parseUntil, pathMatch } from '../../src/engine/filters.js';

test('pathMatch follows Go path.Match', () => {
  const cases: Array<[string, string, boolean]> = [
    ['busy*', 'busybox', true],
    ['busy*', 'busybox:latest', true],
    ['*', 'user/app', false],
    ['*/*', 'user/app', true],
    ['user/app:?', 'user/app:1', true],
    ['user/app:?', 'user/app:10', false],
    ['[a-c]x', 'bx', true],
    ['[^a-c]x', 'bx', false],
    ['[^a-c]x', 'dx', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['[z-a]', 'q', false],
    ['a.b', 'axb', false],
    ['', '', true],
  ];
  for (const [p, n, want] of cases) assert.equal(pathMatch(p, n), want, `${p} ~ ${n}`);
  for (const bad of ['[', '[a', 'a\\', '[]a]', '[a-]']) assert.throws(() => pathMatch(bad, 'a'), /syntax error in pattern/, bad);
});

test('Go durations and until values', () => {
  assert.equal(parseGoDuration('10m'), 600);
  assert.equal(parseGoDuration('1h30m'), 5400);
  assert.equal(parseGoDuration('1.5h'), 5400);
  assert.equal(parseGoDuration('250ms'), 0.25);
  assert.equal(parseGoDuration('10'), undefined);
  assert.equal(parseGoDuration('x'), undefined);
  assert.equal(parseUntil('1h', 10_000), 6400);
  assert.equal(parseUntil('1700000000'), 1_700_000_000);
  assert.equal(parseUntil('2023-11-14T22:13:20Z'), 1_700_000_000);
  assert.equal(parseUntil('2023-11-14T23:13:20+01:00'), 1_700_000_000);
  assert.throws(() => parseUntil('soon'), /failed to parse value as time or duration: "soon"/);
});

test('label filters', () => {
  assert.equal(matchLabels(['a'], { a: '1' }), true);
  assert.equal(matchLabels(['a=1'], { a: '1' }), true);
  assert.equal(matchLabels(['a=2'], { a: '1' }), false);
  assert.equal(matchLabels(['a', 'b'], { a: '1' }), false);
  assert.equal(matchLabels(['a'], null), false);
  assert.equal(matchLabels(undefined, null), true);
  assert.equal(matchNoLabels(['a=1'], { a: '1' }), false);
  assert.equal(matchNoLabels(['a=2'], { a: '1' }), true);
});

test('Go time normalisation', () => {
  assert.deepEqual(parseGoTime('2023-11-14T22:13:20.120000000Z'), { unix: 1_700_000_000, text: '2023-11-14T22:13:20.12Z' });
  assert.deepEqual(parseGoTime('2023-11-14T23:13:20+01:00'), { unix: 1_700_000_000, text: '2023-11-14T23:13:20+01:00' });
  assert.equal(parseGoTime('2023-11-14T22:13:20+00:00')!.text, '2023-11-14T22:13:20Z');
  assert.equal(parseGoTime('yesterday'), undefined);
  assert.equal(parseGoTime(42), undefined);
});

test('import changes as Docker 20.10 applies them', () => {
  const c = toContainerConfig(applyChanges(emptyContainerConfig(), [
    'ENV A 1 2', 'ENV B="x y" C=z', 'CMD ["a","b"]', 'ENTRYPOINT echo hi', 'VOLUME /data /x', 'VOLUME ["/a"]',
    'USER nobody', 'ONBUILD RUN x', 'HEALTHCHECK --interval=5s --retries=3 CMD true', 'LABEL b=2 a=1', 'EXPOSE 8000-8001',
  ]));
  assert.deepEqual(c.Env, ['A=1 2', 'B=x y', 'C=z']);
  assert.deepEqual(c.Cmd, ['a', 'b']);
  assert.deepEqual(c.Entrypoint, ['/bin/sh', '-c', 'echo hi']);
  assert.deepEqual(Object.keys(c.Volumes!), ['/a', '/data', '/x']);
  assert.equal(c.User, 'nobody');
  assert.deepEqual(c.OnBuild, ['RUN x']);
  assert.deepEqual(c.Healthcheck, { Test: ['CMD-SHELL', 'true'], Interval: 5e9, Retries: 3 });
  assert.deepEqual(Object.keys(c.Labels!), ['a', 'b']);
  assert.deepEqual(Object.keys(c.ExposedPorts!), ['8000/tcp', '8001/tcp']);
  const keys = Object.keys(c);
  assert.ok(keys.indexOf('ExposedPorts') === keys.indexOf('AttachStderr') + 1, 'struct order');
  assert.ok(keys.indexOf('Healthcheck') === keys.indexOf('Cmd') + 1, 'struct order');
  assert.throws(() => applyChanges(emptyContainerConfig(), ['STOPSIGNAL 9']), /^InvalidArgumentError: stopsignal is not a valid change command$/);
  assert.throws(() => applyChanges(emptyContainerConfig(), ['ONBUILD ONBUILD RUN x']), /Chaining ONBUILD/);
});
