#!/usr/bin/env node
// Volume benchmark, strata vs a private real dockerd in the same run (warm cache):
//   - create + mount 1,000 named volumes: strata's library API (create, then mount for a
//     container reference) and CLI (`volume create`), docker's CLI (`docker volume create`);
//   - prepopulating a volume from a 200 MB image directory: strata `create -v NEW:/data`
//     (the copy happens at create, as Docker's) vs `docker create -v NEW:/data`, each minus
//     the same command without the volume (so only the copy is compared).
//
//   npm run build && node bench/volumes.js [--count 1000]
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { benchDir, cli, dk, f2, fx, parseOptions, ratio, repo, requireTools, timed, workDir } from './lib.js';

const opt = parseOptions({ count: 1000 });
requireTools(dk.dockerSkipReason(), cli.strataSkipReason(), fx.buildBusyboxSkipReason());
const work = workDir('volumes');
const root = join(work, 'strata-root');
const docker = await dk.Dockerd.start({ base: benchDir });
try {
  const { Engine } = await import(join(repo, 'dist', 'src', 'engine', 'engine.js'));
  const engine = await Engine.open({ dataRoot: root });
  const volumes = await engine.volumes();
  const api = await timed(async () => {
    for (let i = 0; i < opt.count; i++) {
      const name = `v${i}`;
      await volumes.create({ name });
      await volumes.mount(name, `bench${i}`);
    }
  });
  const cliN = Math.min(opt.count, 100);
  const cliS = await timed(async () => {
    for (let i = 0; i < cliN; i++) await cli.strataOk(['volume', 'create', `c${i}`], { root });
  });
  const dockerS = await timed(async () => {
    for (let i = 0; i < opt.count; i++) await docker.ok(['volume', 'create', `v${i}`]);
  });

  // A 200 MB image directory: /data with 200 files of 1 MB.
  const rng = new fx.Rng(3);
  const layer = fx.buildTar([{ name: 'data/', type: 'dir', mode: 0o755, mtime: fx.T0 }, ...Array.from({ length: 200 }, (_, i) => ({ name: `data/f${i}`, data: rng.bytes(1 << 20), mode: 0o644, mtime: fx.T0 }))]);
  const bigTar = join(work, 'big.tar');
  const img = fx.imageFromLayers([layer], ['big:1']);
  writeFileSync(bigTar, fx.dockerArchive([img]));
  await cli.strataOk(['load', '-i', bigTar], { root });
  await docker.ok(['load', '-i', bigTar]);
  const withVolS = await timed(() => cli.strata(['create', '--network', 'none', '-v', 'fresh1:/data', 'big:1', '/x'], { root }));
  const noVolS = await timed(() => cli.strata(['create', '--network', 'none', 'big:1', '/x'], { root }));
  const withVolD = await timed(() => docker.run(['create', '--network', 'none', '-v', 'fresh1:/data', 'big:1', '/x']));
  const noVolD = await timed(() => docker.run(['create', '--network', 'none', 'big:1', '/x']));
  const popS = withVolS - noVolS;
  const popD = withVolD - noVolD;
  console.log([
    '| measurement | docker s | strata s | strata/docker |',
    '|---|---|---|---|',
    `| create+mount ${opt.count} named volumes (strata library API vs docker CLI) | ${f2(dockerS)} | ${f2(api)} | ${ratio(api, dockerS)} |`,
    `| create ${cliN} named volumes, both CLIs (per volume) | ${f2(dockerS / opt.count)} | ${f2(cliS / cliN)} | ${ratio(cliS / cliN, dockerS / opt.count)} |`,
    `| prepopulate a volume from a 200 MB image dir (create with - without) | ${f2(popD)} | ${f2(popS)} | ${ratio(popS, popD)} |`,
  ].join('\n'));
} finally {
  await docker.stop();
  cli.removeTree(work);
}
