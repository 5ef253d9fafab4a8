// Shared by the bench scripts: the test helpers (built into dist/), timing, medians, the
// page-cache drop, cached generated images and the private dockerd the comparisons use.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = fileURLToPath(new URL('..', import.meta.url));
const helpers = join(repo, 'dist', 'test', 'helpers');
if (!existsSync(join(helpers, 'fixtures.js'))) {
  console.error('bench: build first (npm run build)');
  process.exit(2);
}
export const fx = await import(join(helpers, 'fixtures.js'));
export const dk = await import(join(helpers, 'docker.js'));
export const cli = await import(join(helpers, 'strata-cli.js'));

export const benchDir = process.env.STRATA_BENCH_DIR ?? '/tmp/strata-bench';
mkdirSync(benchDir, { recursive: true });

let dropWarned = false;
/** sync + drop the page cache (root only); warns once when it cannot. */
export function dropCaches() {
  const r = spawnSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' });
  if (r.status !== 0 && !dropWarned) {
    dropWarned = true;
    console.error('bench: could not drop the page cache (needs root); figures are warm-cache');
  }
}

/** Whether a cache drop failed (figures are then warm-cache). */
export function cacheDropFailed() {
  return dropWarned;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Seconds `fn` took; throws when it resolves to a failed command result. */
export async function timed(fn) {
  const t = process.hrtime.bigint();
  const r = await fn();
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (r && typeof r === 'object' && 'code' in r && r.code !== 0) throw new Error(`command failed (${r.code}): ${r.stderr}`);
  return s;
}

/** Median of `runs` timings of `op`, each after `prepare(i)` (and a cache drop when `cold`). */
export async function measure(label, runs, prepare, op, o = { cold: true }) {
  const xs = [];
  for (let i = 0; i < runs; i++) {
    await prepare(i);
    if (o.cold) dropCaches();
    xs.push(await timed(op));
    process.stderr.write(`  ${label} run ${i + 1}: ${xs.at(-1).toFixed(3)} s\n`);
  }
  return median(xs);
}

/** A generated input kept under $STRATA_BENCH_DIR/images/<name> between runs. */
export function cached(name, version, make) {
  const dir = join(benchDir, 'images', name);
  const meta = join(dir, 'meta.json');
  if (existsSync(meta)) {
    const m = JSON.parse(readFileSync(meta, 'utf8'));
    if (m.version === version && existsSync(m.file) && (m.layerFiles ?? []).every((f) => existsSync(f))) return m;
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const t = Date.now();
  process.stderr.write(`generating ${name} in ${dir} ... `);
  const m = { version, ...make(dir) };
  writeFileSync(meta, JSON.stringify(m, null, 2));
  process.stderr.write(`${((Date.now() - t) / 1000).toFixed(1)} s\n`);
  return m;
}

/** The `large` image of load-save.js (5 layers, >= 500 MB, >= 20,000 files) or its quick variant. */
export function largeImage(quick = false) {
  return cached(quick ? 'large-quick' : 'large', 2, (dir) => {
    const file = join(dir, 'image.tar');
    const layers = 5;
    const img = fx.writeBigImage(file, {
      layers, filesPerLayer: quick ? 1000 : 4200, bytesPerLayer: quick ? 20 << 20 : 105 << 20,
      seed: 2024, tag: 'bench:large', work: join(dir, 'layers'),
    });
    return {
      name: 'large', file, id: img.id, tag: 'bench:large', layers, bytes: img.totalBytes, files: img.totalFiles,
      layerFiles: img.layers.map((l) => l.file),
    };
  });
}

export const f2 = (x) => (x === undefined ? '-' : x.toFixed(3));
export const ratio = (a, b) => (a === undefined || b === undefined ? '-' : (a / b).toFixed(2) + 'x');

/**
 * The script's options: `--name value` for number/string defaults, `--name` for booleans;
 * an unknown one exits with status 2.
 */
export function parseOptions(defaults) {
  const opt = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!argv[i].startsWith('--') || !(key in defaults)) {
      console.error(`bench: unknown argument ${argv[i]}`);
      process.exit(2);
    }
    const d = defaults[key];
    opt[key] = typeof d === 'boolean' ? true : typeof d === 'number' ? Math.max(1, Number(argv[++i])) : argv[++i];
  }
  return opt;
}

/** Exits with status 2 and the first reason given (a missing tool), if any. */
export function requireTools(...reasons) {
  const reason = reasons.find((r) => r !== undefined);
  if (reason) {
    console.error(`bench: ${reason}`);
    process.exit(2);
  }
}

/** An empty work directory `<bench dir>/<name>`. */
export function workDir(name) {
  const dir = join(benchDir, name);
  cli.removeTree(dir);
  mkdirSync(dir, { recursive: true });
  return dir;
}
