#!/usr/bin/env node
// Container benchmark: strata vs a private real dockerd (Debian's 20.10), measured in the same run.
//
//   npm run build && node bench/containers.js [--runs 5] [--quick]
//
// Measures (median of --runs; warm page cache — these are latency figures):
//   run --rm IMG true                 CLI to CLI (target <= 0.5x docker)
//   diff, one changed file, >=500 MB  (target <= 0.1x docker)
//   commit after one changed file     on a ~100 MB and a ~500 MB image (target <= 1.0x, flat in size)
//   create + rm                       CLI and library API (target <= 0.25x docker's CLI), with
//                                     where strata's CLI time goes (node start, module loading, work)
//   100 containers from one image     total time and extra disk per container
// Both sides use --network none (the private dockerd runs with --bridge=none).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { benchDir, cli, dk, f2, fx, largeImage, measure, median, parseOptions, ratio, repo, requireTools, timed, workDir } from './lib.js';

const opt = parseOptions({ runs: 5, quick: false });
requireTools(dk.dockerSkipReason(), cli.strataSkipReason(), fx.buildBusyboxSkipReason());

const work = workDir('containers');
const root = join(work, 'strata-root');
const S = (a) => cli.strata(a, { root });
const SOK = (a) => cli.strataOk(a, { root });
const docker = await dk.Dockerd.start({ base: benchDir });
const D = (a) => docker.run(a);
const DOK = (a) => docker.ok(a);
const rows = [];
const row = (what, d, s, target) => {
  rows.push({ what, docker: d, strata: s, ratio: s / d, target });
  process.stderr.write(`${what}: docker ${f2(d)} s, strata ${f2(s)} s (${ratio(s, d)})\n`);
};
const warm = { cold: false };
const none = async () => undefined;

try {
  const bb = join(work, 'busybox.tar');
  fx.buildBusybox(bb);
  await SOK(['load', '-i', bb]);
  await DOK(['load', '-i', bb]);

  // ---- run --rm true
  const runS = await measure('strata run --rm', opt.runs, none, () => S(['run', '--rm', '--network', 'none', 'busybox', 'true']), warm);
  const runD = await measure('docker run --rm', opt.runs, none, () => D(['run', '--rm', '--network', 'none', 'busybox', 'true']), warm);
  row('run --rm busybox true (CLI)', runD, runS, 0.5);

  // ---- create + rm (CLI) and where the CLI time goes
  // bin/strata starts node without NODE_EXTRA_CA_CERTS (see docs/ARCHITECTURE.md, Start-up),
  // so that is the bare start to compare with; the environment's own figure is shown too.
  const leanEnv = { ...process.env };
  delete leanEnv.NODE_EXTRA_CA_CERTS;
  const nodeBare = await measure('node -e 0 (as bin/strata starts it)', opt.runs, none, async () => spawnSync(process.execPath, ['-e', '0'], { env: leanEnv }), warm);
  const nodeEnv = process.env.NODE_EXTRA_CA_CERTS
    ? await measure('node -e 0 (this environment, NODE_EXTRA_CA_CERTS set)', opt.runs, none, async () => spawnSync(process.execPath, ['-e', '0']), warm)
    : nodeBare;
  const cliBare = await measure('strata --version', opt.runs, none, () => S(['--version']), warm);
  let sid = '';
  const createS = await measure('strata create', opt.runs, none, async () => {
    const r = await S(['create', '--network', 'none', 'busybox', 'true']);
    sid = r.stdout.trim();
    return r;
  }, warm);
  const rmS = await measure('strata rm', 1, none, () => S(['rm', sid]), warm);
  const crS = await repeat(opt.runs, async () => S(['rm', (await SOK(['create', '--network', 'none', 'busybox', 'true'])).stdout.trim()]));
  const crD = await repeat(opt.runs, async () => D(['rm', (await DOK(['create', '--network', 'none', 'busybox', 'true'])).stdout.trim()]));
  row('create + rm (CLI)', crD, crS, undefined);

  // Library API: one engine, create + rm in-process.
  const { Engine } = await import(join(repo, 'dist', 'src', 'engine', 'engine.js'));
  const engine = await Engine.open({ dataRoot: root });
  const containers = await engine.containers();
  const api = await repeat(Math.max(5, opt.runs), async () => {
    const { Id } = await containers.create({ image: 'busybox', cmd: ['true'], network: 'none' });
    await containers.remove(Id);
  });
  row('create + rm (library API vs docker CLI)', crD, api, 0.25);
  const runApi = await repeat(opt.runs, async () => {
    const { Id } = await containers.create({ image: 'busybox', cmd: ['true'], network: 'none', autoRemove: true });
    await (await containers.start(Id, { attach: true })).wait();
  });
  row('run --rm busybox true (library API vs docker CLI)', runD, runApi, 0.5);

  // ---- 100 containers from one image
  const duS0 = du(root);
  const hundredS = await timed(async () => {
    for (let i = 0; i < 100; i++) await containers.create({ image: 'busybox', cmd: ['true'], network: 'none' });
  });
  const perS = (du(root) - duS0) / 100;
  const duD0 = du(docker.dataRoot);
  const hundredD = await timed(async () => {
    for (let i = 0; i < 100; i++) await DOK(['create', '--network', 'none', 'busybox', 'true']);
  });
  const perD = (du(docker.dataRoot) - duD0) / 100;
  row('100 creates (strata API, docker CLI)', hundredD, hundredS, undefined);
  const hundredCli = await timed(async () => {
    for (let i = 0; i < 100; i++) await SOK(['create', '--network', 'none', 'busybox', 'true']);
  });
  row('100 creates (both CLI)', hundredD, hundredCli, undefined);
  await SOK(['container', 'prune', '-f']);
  await DOK(['container', 'prune', '-f']);

  // ---- diff and commit on big images
  const big = largeImage(false);
  const small = largeImage(true);
  for (const img of [small, big]) {
    await SOK(['load', '-i', img.file]);
    await DOK(['load', '-i', img.file]);
    const sc = (await SOK(['create', '--network', 'none', img.tag, '/none'])).stdout.trim();
    const dc = (await DOK(['create', '--network', 'none', img.tag, '/none'])).stdout.trim();
    const changed = join(work, 'changed.txt');
    writeFileSync(changed, 'one changed file\n');
    await SOK(['cp', changed, `${sc}:/changed.txt`]);
    await DOK(['cp', changed, `${dc}:/changed.txt`]);
    const mb = Math.round(img.bytes / 1e6);
    if (img === big) {
      const dS = await measure('strata diff', opt.runs, none, () => S(['diff', sc]), warm);
      const dA = await measure('strata diff (API)', opt.runs, none, () => containers.changes(sc), warm);
      const dD = await measure('docker diff', opt.runs, none, () => D(['diff', dc]), warm);
      row(`diff, one changed file, ${mb} MB image (CLI)`, dD, dS, 0.1);
      row(`diff, one changed file, ${mb} MB image (library API vs docker CLI)`, dD, dA, 0.1);
    }
    const cS = await measure('strata commit', opt.runs, none, () => S(['commit', sc]), warm);
    const cA = await measure('strata commit (API)', opt.runs, none, () => containers.commit(sc), warm);
    const cD = await measure('docker commit', opt.runs, none, () => D(['commit', dc]), warm);
    row(`commit, one changed file, ${mb} MB image (CLI)`, cD, cS, 1.0);
    row(`commit, one changed file, ${mb} MB image (library API vs docker CLI)`, cD, cA, 1.0);
  }

  // ---- report
  const lines = [
    '| measurement | docker s | strata s | strata/docker | target |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.what} | ${f2(r.docker)} | ${f2(r.strata)} | ${r.ratio.toFixed(2)}x | ${r.target === undefined ? '-' : `<= ${r.target}x: ${r.ratio <= r.target ? 'met' : 'MISSED'}`} |`),
    '',
    `strata CLI create: ${f2(createS)} s = node start ${f2(nodeBare)} s + CLI bundle load ${f2(cliBare - nodeBare)} s + engine open and create ${f2(createS - cliBare)} s; rm ${f2(rmS)} s` +
      (nodeEnv !== nodeBare ? ` (a bare node start in this environment: ${f2(nodeEnv)} s, because NODE_EXTRA_CA_CERTS is set)` : ''),
    `extra disk per container: strata ${(perS / 1024).toFixed(1)} KiB, docker ${(perD / 1024).toFixed(1)} KiB`,
  ];
  const report = lines.join('\n');
  console.log(report);
  writeFileSync(join(benchDir, `containers-${Date.now()}.json`), JSON.stringify({ rows, report }, null, 2));
} finally {
  await S(['container', 'prune', '-f']).catch(() => undefined);
  await docker.stop();
  cli.removeTree(work);
}

/** Median seconds of `n` runs of `fn`. */
async function repeat(n, fn) {
  const xs = [];
  for (let i = 0; i < n; i++) xs.push(await timed(fn));
  return median(xs);
}

function du(dir) {
  const r = spawnSync('du', ['-sb', '--exclude=*.log', dir], { encoding: 'utf8' });
  return Number(r.stdout.split('\t')[0]);
}
