#!/usr/bin/env node
// Load/save benchmark: strata vs a private real dockerd (Debian's 20.10) vs plain GNU tar.
//
//   npm run build && npm run bench            # or: node bench/load-save.js [--runs 3] [--quick] [--only large|many] [--keep-docker]
//
// Images (generated once and cached under $STRATA_BENCH_DIR, default /tmp/strata-bench):
//   large: 5 layers, >= 500 MB, >= 20,000 files (varied sizes, nested dirs, symlinks, hard links,
//          whiteouts and an opaque dir in upper layers)
//   many:  100 small layers
// For each image, each measurement runs --runs times (default 3) and the median is reported.
// The page cache is dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before every measured run.
//   docker load : private dockerd, image removed (rmi) between runs
//   strata load : fresh data root each run
//   tar -xf     : GNU tar extracting every layer tar into its own fresh dir (the floor for an unpack)
//   save        : strata save vs docker save of the loaded image
// Targets: cold load of large <= 0.5x docker, load of many <= 0.2x docker, save <= 0.25x docker.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { benchDir, cacheDropFailed, cached as cachedImage, cli, dk, fx, largeImage, measure, ratio } from './lib.js';

// ------------------------------------------------------------------------------------------ args
const args = process.argv.slice(2);
const opt = { runs: 3, quick: false, only: undefined, keepDocker: false };
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--runs') opt.runs = Math.max(1, Number(args[++i]));
  else if (args[i] === '--quick') opt.quick = true;
  else if (args[i] === '--only') opt.only = args[++i];
  else if (args[i] === '--keep-docker') opt.keepDocker = true;
  else {
    console.error(`bench: unknown argument ${args[i]}`);
    process.exit(2);
  }
}
const GEN_VERSION = 2;
const cached = (name, make) => cachedImage(name, GEN_VERSION, make);

const images = [];
if (!opt.only || opt.only === 'large') images.push(largeImage(opt.quick));
if (!opt.only || opt.only === 'many') {
  images.push(cached(opt.quick ? 'many-quick' : 'many', (dir) => {
    const count = opt.quick ? 30 : 100;
    const img = fx.manyLayerImage(count, 'bench:many', 7);
    const file = join(dir, 'image.tar');
    writeFileSync(file, fx.dockerArchive([img]));
    mkdirSync(join(dir, 'layers'), { recursive: true });
    const layerFiles = img.layers.map((l, i) => {
      const p = join(dir, 'layers', `layer-${i}.tar`);
      writeFileSync(p, l.tar);
      return p;
    });
    const bytes = img.layers.reduce((n, l) => n + l.tar.length, 0);
    return { name: 'many', file, id: img.id, tag: 'bench:many', layers: count, bytes, files: undefined, layerFiles };
  }));
}

function dirRemove(p) {
  cli.removeTree(p);
}

// ------------------------------------------------------------------------------------------ run
const dockerSkip = dk.dockerSkipReason();
const strataSkip = cli.strataSkipReason();
let docker;
const rows = [];
try {
  if (!dockerSkip) docker = await dk.Dockerd.start({ base: benchDir });
  for (const img of images) {
    process.stderr.write(`\n${img.name}: ${img.layers} layers, ${(img.bytes / 1e6).toFixed(0)} MB payload${img.files ? `, ${img.files} files` : ''}\n`);
    const work = join(benchDir, 'work');
    const res = { image: img.name };
    // tar baseline
    res.tar = await measure('tar -xf', opt.runs, async () => {
      dirRemove(work);
      mkdirSync(work, { recursive: true });
    }, async () => {
      for (const [i, f] of img.layerFiles.entries()) {
        const d = join(work, `l${i}`);
        mkdirSync(d);
        const r = await cli.run('tar', ['-xf', f, '-C', d]);
        if (r.code !== 0) return r;
      }
      return { code: 0 };
    });
    dirRemove(work);
    // strata load (fresh root each run), then save
    if (!strataSkip) {
      const sroot = join(benchDir, 'strata-root');
      res.strataLoad = await measure('strata load', opt.runs, async () => dirRemove(sroot),
        () => cli.strata(['load', '-q', '-i', img.file], { root: sroot, timeoutMs: 3_600_000 }));
      const sout = join(benchDir, 'strata-save.tar');
      res.strataSave = await measure('strata save', opt.runs, async () => rmSync(sout, { force: true }),
        () => cli.strata(['save', '-o', sout, img.tag], { root: sroot, timeoutMs: 3_600_000 }));
      rmSync(sout, { force: true });
      dirRemove(sroot);
    }
    if (docker) {
      res.dockerLoad = await measure('docker load', opt.runs, async () => {
        await docker.run(['rmi', '-f', img.id]);
        await docker.run(['image', 'prune', '-f']);
      }, () => docker.run(['load', '-q', '-i', img.file], { timeoutMs: 3_600_000 }));
      const dout = join(benchDir, 'docker-save.tar');
      res.dockerSave = await measure('docker save', opt.runs, async () => rmSync(dout, { force: true }),
        () => docker.run(['save', '-o', dout, img.tag], { timeoutMs: 3_600_000 }));
      rmSync(dout, { force: true });
      await docker.run(['rmi', '-f', img.id]);
    }
    rows.push(res);
  }
} finally {
  if (docker && !opt.keepDocker) await docker.stop();
  dirRemove(join(benchDir, 'work'));
}

// ------------------------------------------------------------------------------------------ report
const targets = { large: { load: 0.5, save: 0.25 }, many: { load: 0.2, save: 0.25 } };
const f2 = (x) => (x === undefined ? '-' : x.toFixed(2)); // seconds, as the load/save table has always shown them
const lines = [];
lines.push(`strata load/save benchmark — median of ${opt.runs} runs, page cache dropped before each${cacheDropFailed() ? ' (FAILED: warm cache)' : ''}`);
lines.push(`host: ${process.arch}, node ${process.version}, ${new Date().toISOString()}${opt.quick ? ', QUICK sizes' : ''}`);
lines.push('');
lines.push('| image | op   | docker s | strata s | tar -xf s | strata/docker | strata/tar | target (strata/docker) |');
lines.push('|-------|------|---------:|---------:|----------:|--------------:|-----------:|------------------------|');
const verdicts = [];
for (const r of rows) {
  const t = targets[r.image] ?? {};
  const lv = r.dockerLoad === undefined || r.strataLoad === undefined ? 'n/a' : r.strataLoad / r.dockerLoad <= t.load ? 'met' : 'MISSED';
  const sv = r.dockerSave === undefined || r.strataSave === undefined ? 'n/a' : r.strataSave / r.dockerSave <= t.save ? 'met' : 'MISSED';
  verdicts.push(lv, sv);
  lines.push(`| ${r.image} | load | ${f2(r.dockerLoad)} | ${f2(r.strataLoad)} | ${f2(r.tar)} | ${ratio(r.strataLoad, r.dockerLoad)} | ${ratio(r.strataLoad, r.tar)} | <= ${t.load}x: ${lv} |`);
  lines.push(`| ${r.image} | save | ${f2(r.dockerSave)} | ${f2(r.strataSave)} | - | ${ratio(r.strataSave, r.dockerSave)} | - | <= ${t.save}x: ${sv} |`);
}
if (dockerSkip) lines.push(`\ndocker columns skipped: ${dockerSkip}`);
if (strataSkip) lines.push(`\nstrata columns skipped: ${strataSkip}`);
const report = lines.join('\n');
console.log(report);
writeFileSync(join(benchDir, `results-${Date.now()}.json`), JSON.stringify({ rows, runs: opt.runs, quick: opt.quick, report }, null, 2));
