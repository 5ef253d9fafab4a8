#!/usr/bin/env node
// Pull benchmark: a >= 500 MB multi-layer image from Debian's docker-registry on loopback,
// strata vs a private real dockerd vs `skopeo copy` to a directory, in the same run.
//
//   npm run build && node bench/pull.js [--runs 3] [--quick]
//
// The image is load-save.js's `large` one (5 layers, >= 500 MB, >= 20,000 files), pushed once
// by strata. Every run pulls into an empty store (fresh strata root; docker rmi; fresh dir).
// The page cache is dropped before each run.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { benchDir, cli, dk, f2, largeImage, measure, parseOptions, ratio, repo, requireTools, workDir } from './lib.js';

const opt = parseOptions({ runs: 3, quick: false });
const { TestRegistry, registrySkipReason } = await import(join(repo, 'dist', 'test', 'helpers', 'registry.js'));
requireTools(registrySkipReason({ skopeo: true }), cli.strataSkipReason());

const work = workDir('pull');
const img = largeImage(opt.quick);
const registry = await TestRegistry.start();
const docker = dk.dockerSkipReason() ? undefined : await dk.Dockerd.start({ base: benchDir });
const ref = `${registry.host}/bench/large:1`;
const rows = [];
try {
  const seed = join(work, 'seed-root');
  await cli.strataOk(['load', '-i', img.file], { root: seed });
  await cli.strataOk(['tag', img.tag, ref], { root: seed });
  await cli.strataOk(['push', ref], { root: seed });
  process.stderr.write(`pushed ${ref} (${(img.bytes / 1e6).toFixed(0)} MB, ${img.layers} layers)\n`);

  let n = 0;
  let root;
  const strataPull = await measure('strata pull', opt.runs, async () => {
    if (root) cli.removeTree(root);
    root = join(work, `strata-${n++}`);
  }, () => cli.strata(['pull', '-q', ref], { root }));
  let dockerPull;
  if (docker) {
    dockerPull = await measure('docker pull', opt.runs, async () => {
      await docker.run(['rmi', '-f', ref]);
      await docker.run(['image', 'prune', '-f']);
    }, () => docker.run(['pull', '-q', ref]));
  }
  let dest;
  const skopeo = await measure('skopeo copy', opt.runs, async () => {
    if (dest) cli.removeTree(dest);
    dest = join(work, `skopeo-${n++}`);
  }, async () => {
    const r = spawnSync('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `dir:${dest}`], { encoding: 'utf8' });
    return { code: r.status, stderr: r.stderr };
  });
  rows.push({ what: `pull ${(img.bytes / 1e6).toFixed(0)} MB, ${img.layers} layers`, strata: strataPull, docker: dockerPull, skopeo });
  const lines = [
    '| measurement | docker s | skopeo copy (dir) s | strata s | strata/docker | strata/skopeo |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.what} | ${f2(r.docker)} | ${f2(r.skopeo)} | ${f2(r.strata)} | ${ratio(r.strata, r.docker)} | ${ratio(r.strata, r.skopeo)} |`),
    '',
    'strata and docker pull, decompress and unpack into a store; skopeo only downloads to a directory (no unpack).',
  ];
  console.log(lines.join('\n'));
} finally {
  await docker?.stop();
  await registry.stop();
  cli.removeTree(work);
}
