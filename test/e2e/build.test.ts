/**
 * `strata build` end to end on real storage and runc: seed 000's data-packed image, a
 * multi-stage build with RUN, the cache, hostile contexts, and (against a private real
 * dockerd, classic builder) the same config and history for Dockerfiles without RUN.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Dockerd, dockerSkipReason } from '../helpers/docker.js';
import { busyboxRoot, containerSkipReason, releaseBusyboxRoot, type BusyboxRoot } from '../helpers/containers.js';
import { strata, strataOk } from '../helpers/strata-cli.js';

const skip = containerSkipReason();

let suite: BusyboxRoot | undefined;
let dir: string;
let root: string;
const ok = async (args: string[]) => (await strataOk(args, { root })).stdout.trim();
const s = (args: string[]) => strata(args, { root });

function context(name: string, files: Record<string, string>): string {
  const ctx = join(dir, name);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(ctx, rel, '..'), { recursive: true });
    writeFileSync(join(ctx, rel), text);
    // Fixed times, so docker and strata see identical file metadata.
    utimesSync(join(ctx, rel), 1_700_000_000, 1_700_000_000);
  }
  return ctx;
}

before(async () => {
  if (skip) return;
  suite = await busyboxRoot('build-');
  ({ dir, root } = suite);
});

after(() => releaseBusyboxRoot(suite));

test("seed 000's Dockerfile: data-packed image, created container serves its data via --volumes-from", { skip }, async () => {
  const ctx = context('seed000', {
    'html/index.html': 'huayu\n',
    Dockerfile: 'FROM busybox:latest\nADD html /usr/share/nginx/html\nVOLUME /usr/share/nginx/html\nCMD ["/bin/sh"]\n',
  });
  const out = await ok(['build', '-t', 'cy_hy', ctx]);
  assert.match(out, /^Sending build context to Docker daemon {2}\S+\nStep 1\/4 : FROM busybox:latest\n ---> [0-9a-f]{12}\nStep 2\/4 : ADD html \/usr\/share\/nginx\/html\n/);
  assert.match(out, /Successfully built [0-9a-f]{12}\nSuccessfully tagged cy_hy:latest$/);
  const cfg = JSON.parse(await ok(['image', 'inspect', '-f', '{{json .Config}}', 'cy_hy']));
  assert.deepEqual(cfg.Volumes, { '/usr/share/nginx/html': {} });
  assert.deepEqual(cfg.Cmd, ['/bin/sh']);
  await ok(['create', '--name', 'cy_data123', 'cy_hy']);
  const served = await ok(['run', '--rm', '--network', 'none', '--volumes-from', 'cy_data123', 'busybox', 'cat', '/usr/share/nginx/html/index.html']);
  assert.equal(served, 'huayu');
  await ok(['rm', '-v', 'cy_data123']);
});

test('multi-stage with RUN, COPY --from, ENV, WORKDIR, USER, ENTRYPOINT builds and runs', { skip }, async () => {
  const ctx = context('multi', {
    Dockerfile: [
      'FROM busybox AS builder',
      'WORKDIR /src',
      "RUN printf 'echo hello from $GREETING as $(id -u) in $(pwd)\\n' > app.sh && chmod +x app.sh",
      'RUN echo built > /src/marker',
      'FROM busybox',
      'COPY --from=builder /src/app.sh /usr/local/bin/app.sh',
      'ENV GREETING=stage2',
      'WORKDIR /work',
      'USER 1000',
      'ENTRYPOINT ["/bin/sh", "/usr/local/bin/app.sh"]',
      '',
    ].join('\n'),
  });
  const out = await ok(['build', '-t', 'multi:1', ctx]);
  assert.match(out, /Step 3\/10 : RUN printf/);
  assert.match(out, / ---> Running in [0-9a-f]{12}\nRemoving intermediate container [0-9a-f]{12}\n/);
  assert.equal(await ok(['run', '--rm', '--network', 'none', 'multi:1']), 'hello from stage2 as 1000 in /work');
  // Only the final stage's layers: busybox + the COPY (WORKDIR adds one too, as Docker's).
  const layers = JSON.parse(await ok(['image', 'inspect', '-f', '{{json .RootFS.Layers}}', 'multi:1']));
  assert.equal(layers.length, 3);
  const failing = context('failing', { Dockerfile: 'FROM busybox\nRUN exit 3\n' });
  const r = await s(['build', failing]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /The command '\/bin\/sh -c exit 3' returned a non-zero code: 3/);
  assert.deepEqual(JSON.parse(await ok(['ps', '-a', '--format', '{{json .ID}}']) || '[]'), [], 'no build container left');
});

test('cache: an unchanged rebuild hits the cache at every step; a changed ADD source rebuilds from that step on', { skip }, async () => {
  const ctx = context('cache', {
    'a.txt': 'a\n',
    'b.txt': 'b\n',
    Dockerfile: 'FROM busybox\nENV X=1\nADD a.txt /a.txt\nRUN cat /a.txt > /copy\nADD b.txt /b.txt\nCMD ["cat","/b.txt"]\n',
  });
  const first = await ok(['build', '-t', 'cached:1', ctx]);
  const id1 = /Successfully built ([0-9a-f]{12})/.exec(first)![1];
  const t = Date.now();
  const second = await ok(['build', '-t', 'cached:1', ctx]);
  const ms = Date.now() - t;
  assert.equal((second.match(/Using cache/g) ?? []).length, 5, second);
  assert.equal(/Successfully built ([0-9a-f]{12})/.exec(second)![1], id1);
  assert.ok(ms < 1000, `cached rebuild took ${ms} ms`);
  writeFileSync(join(ctx, 'b.txt'), 'changed\n');
  const third = await ok(['build', '-t', 'cached:1', ctx]);
  assert.equal((third.match(/Using cache/g) ?? []).length, 3, third);
  assert.equal(await ok(['run', '--rm', '--network', 'none', 'cached:1']), 'changed');
  const noCache = await ok(['build', '--no-cache', ctx]);
  assert.equal((noCache.match(/Using cache/g) ?? []).length, 0);
});

test('hostile contexts: sources outside the context are refused, links are not followed out', { skip }, async () => {
  const ctx = context('hostile', { 'in.txt': 'in\n', Dockerfile: 'FROM busybox\nCOPY ../outside.txt /x\n' });
  writeFileSync(join(dir, 'outside.txt'), 'secret\n');
  const r = await s(['build', ctx]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /outside.txt|forbidden path outside the build context|no such file/);
  const ctx2 = context('hostile2', { Dockerfile: 'FROM busybox\nCOPY link /x\n' });
  symlinkSync('/etc/shadow', join(ctx2, 'link'));
  const r2 = await s(['build', '-t', 'linked', ctx2]);
  if (r2.code === 0) {
    const content = await s(['run', '--rm', '--network', 'none', 'linked', 'cat', '/x']);
    assert.ok(!content.stdout.includes('root:'), 'the host file must not be copied through the link');
  }
});

const dockerSkip = skip ?? dockerSkipReason();

test('without RUN: config and history equal docker build (classic builder) for the same input', { skip: dockerSkip }, async () => {
  const docker = await Dockerd.start();
  try {
    await docker.ok(['load', '-i', join(dir, 'busybox.tar')]);
    const ctx = context('compat', {
      'app/conf.txt': 'conf\n',
      'app/bin/run.sh': '#!/bin/sh\necho run\n',
      'data.txt': 'data\n',
      Dockerfile: [
        '# syntax is classic',
        'ARG BASE=busybox',
        'FROM ${BASE}:latest',
        'ARG VERSION=1.0',
        'LABEL org.example.version=$VERSION maintainer="strata team"',
        'ENV APP_HOME=/opt/app PATH=/opt/app/bin:$PATH',
        'WORKDIR $APP_HOME',
        'COPY app/ ./',
        'ADD data.txt /srv/data/',
        'VOLUME ["/srv/data", "/var/log/app"]',
        'EXPOSE 8080/tcp 9090/udp',
        'USER 1000:1000',
        'STOPSIGNAL SIGTERM',
        'HEALTHCHECK --interval=30s --timeout=3s CMD ["true"]',
        'SHELL ["/bin/sh", "-ec"]',
        'ONBUILD RUN echo onbuild',
        'ENTRYPOINT ["/bin/sh"]',
        'CMD ["-c", "echo hi"]',
        '',
      ].join('\n'),
    });
    await ok(['build', '-t', 'compat:1', ctx]);
    await docker.ok(['build', '-t', 'compat:1', ctx], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
    const pick = (inspect: any) => ({
      Config: { ...inspect.Config, Image: '<parent>', Hostname: '' },
      // Layer bytes hold directory mtimes of the moment (WORKDIR, ADD's parents), so two
      // docker builds differ too; the number of layers must match.
      Layers: inspect.RootFS.Layers.length,
      Architecture: inspect.Architecture,
      Os: inspect.Os,
    });
    const mine = JSON.parse(await ok(['image', 'inspect', 'compat:1']))[0];
    const theirs = JSON.parse((await docker.ok(['image', 'inspect', 'compat:1'])).stdout)[0];
    assert.deepEqual(pick(mine), pick(theirs));
    const hist = (h: string) => h.trim().split('\n');
    const fmt = ['history', '--no-trunc', '--format', '{{.CreatedBy}}|{{.Size}}|{{.Comment}}', 'compat:1'];
    assert.deepEqual(hist(await ok(fmt)), hist((await docker.ok(fmt)).stdout));
  } finally {
    await docker.stop();
  }
});
