#!/usr/bin/env node
// Build benchmark: a 10-step Dockerfile (COPY of a few MB of sources, RUN steps, metadata),
// cold (--no-cache) and cached rebuild, strata vs a private real dockerd's classic builder
// (DOCKER_BUILDKIT=0), in the same run. Warm page cache; median of --runs.
//
//   npm run build && node bench/build.js [--runs 3]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { benchDir, cli, dk, f2, fx, measure, parseOptions, ratio, requireTools, workDir } from './lib.js';

const opt = parseOptions({ runs: 3 });
requireTools(dk.dockerSkipReason(), cli.strataSkipReason(), fx.buildBusyboxSkipReason());

const work = workDir('build');
const ctx = join(work, 'ctx');
mkdirSync(join(ctx, 'src'), { recursive: true });
const rng = new fx.Rng(7);
for (let i = 0; i < 200; i++) writeFileSync(join(ctx, 'src', `file${i}.txt`), rng.text(20_000));
writeFileSync(join(ctx, 'Dockerfile'), [
  'FROM busybox:latest',
  'ENV APP=/app MODE=bench',
  'WORKDIR /app',
  'COPY src/ ./src/',
  'RUN cat src/*.txt | wc -c > /app/size',
  'RUN mkdir -p /app/out && cp src/file1*.txt /app/out/',
  'LABEL bench=build',
  'EXPOSE 8080',
  'USER 1000',
  'CMD ["cat", "/app/size"]',
  '',
].join('\n'));

const root = join(work, 'strata-root');
const docker = await dk.Dockerd.start({ base: benchDir });
const denv = { env: { ...process.env, DOCKER_BUILDKIT: '0' } };
const warm = { cold: false };
const none = async () => undefined;
try {
  const bb = join(work, 'busybox.tar');
  fx.buildBusybox(bb);
  await cli.strataOk(['load', '-i', bb], { root });
  await docker.ok(['load', '-i', bb]);
  const coldS = await measure('strata build --no-cache', opt.runs, none, () => cli.strata(['build', '-q', '--no-cache', '-t', 'b:1', ctx], { root }), warm);
  const coldD = await measure('docker build --no-cache', opt.runs, none, () => docker.run(['build', '-q', '--no-cache', '-t', 'b:1', ctx], denv), warm);
  const hotS = await measure('strata build (cached)', opt.runs, none, () => cli.strata(['build', '-q', '-t', 'b:1', ctx], { root }), warm);
  const hotD = await measure('docker build (cached)', opt.runs, none, () => docker.run(['build', '-q', '-t', 'b:1', ctx], denv), warm);
  console.log([
    '| measurement | docker s | strata s | strata/docker |',
    '|---|---|---|---|',
    `| cold build, 10 steps, 4 MB context | ${f2(coldD)} | ${f2(coldS)} | ${ratio(coldS, coldD)} |`,
    `| cached rebuild | ${f2(hotD)} | ${f2(hotS)} | ${ratio(hotS, hotD)} |`,
  ].join('\n'));
} finally {
  await docker.stop();
  cli.removeTree(work);
}
