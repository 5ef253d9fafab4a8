// Volume figures: 1,000 named volumes (create, list, create-with-reference as `run -v` does,
// remove), and prepopulating a volume from a 200 MB directory against `cp -a` of the same
// directory. Opt-in (STRATA_BENCH=1): it writes ~600 MB and takes a while. Figures are printed
// as `# bench ...` lines.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { assertSameTree } from '../../src/drivers/testsuite/fs-dsl.js';
import { copyTree } from '../../src/sys/copy-tree.js';
import { mountsUnder, unmount } from '../../src/sys/mount.js';
import { VolumeService } from '../../src/volumes/service.js';

const enabled = process.env['STRATA_BENCH'] === '1';
const skip = !enabled ? 'set STRATA_BENCH=1 to run' : process.getuid?.() !== 0 ? 'needs root' : false;

function report(line: string): void {
  console.log(`# bench ${line}`);
}

async function timed<T>(fn: () => Promise<T> | T): Promise<[T, number]> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return [value, Number(process.hrtime.bigint() - start) / 1e6];
}

async function withTmp(fn: (tmp: string) => Promise<void>): Promise<void> {
  // Under the work tree's filesystem rather than a possible tmpfs /tmp: the figures should be
  // for the disk a data root lives on.
  const base = process.env['STRATA_BENCH_DIR'] ?? os.tmpdir();
  const tmp = await realpath(await mkdtemp(path.join(base, 'strata-volbench-')));
  try {
    await fn(tmp);
  } finally {
    for (const m of await mountsUnder(tmp)) await unmount(m, { detach: true });
    await rm(tmp, { recursive: true, force: true });
  }
}

test('bench: 1,000 named volumes', { skip }, async () => {
  await withTmp(async (tmp) => {
    const svc = await VolumeService.open({ dataRoot: tmp });
    const [, createMs] = await timed(async () => {
      for (let i = 0; i < 1000; i++) await svc.create({ name: `bench-vol-${i}` });
    });
    report(`create 1000 named volumes: ${createMs.toFixed(0)} ms (${(createMs / 1000).toFixed(2)} ms/volume)`);
    const [listed, listMs] = await timed(() => svc.list());
    assert.equal(listed.length, 1000);
    report(`list 1000 volumes: ${listMs.toFixed(0)} ms`);
    const [, refMs] = await timed(async () => {
      for (let i = 0; i < 1000; i++) {
        await svc.create({ name: `bench-vol-${i}`, reference: `ctr${i}` });
        await svc.mount(`bench-vol-${i}`, `ctr${i}`);
      }
    });
    report(`create-or-get with reference + mount, 1000 volumes (run -v name:/x): ${refMs.toFixed(0)} ms`);
    for (let i = 0; i < 1000; i++) await svc.releaseReference(`bench-vol-${i}`, `ctr${i}`);
    const [, rmMs] = await timed(async () => {
      for (let i = 0; i < 1000; i++) await svc.remove(`bench-vol-${i}`);
    });
    report(`remove 1000 volumes (to trash): ${rmMs.toFixed(0)} ms`);
  });
});

/** ~200 MB: 100 directories of 95 files of 20 KiB, plus 10 files of 1 MiB. */
async function buildTree(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const chunk = Buffer.alloc(20 * 1024);
  const big = Buffer.alloc(1024 * 1024);
  for (let d = 0; d < 100; d++) {
    const sub = path.join(dir, `dir${d}`);
    await mkdir(sub, { recursive: true });
    for (let f = 0; f < 95; f++) {
      chunk.fill((d * 95 + f) & 0xff);
      await writeFile(path.join(sub, `file${f}`), chunk);
      files++;
      bytes += chunk.length;
    }
  }
  for (let i = 0; i < 10; i++) {
    big.fill(i);
    await writeFile(path.join(dir, `big${i}`), big);
    files++;
    bytes += big.length;
  }
  return { files, bytes };
}

test('bench: prepopulate from a 200 MB directory vs cp -a', { skip }, async () => {
  await withTmp(async (tmp) => {
    const src = path.join(tmp, 'image-content');
    const { files, bytes } = await buildTree(src);
    execFileSync('sync');
    report(`source: ${files} files, ${(bytes / 1e6).toFixed(0)} MB`);
    const svc = await VolumeService.open({ dataRoot: path.join(tmp, 'root') });
    const runs: Record<string, number[]> = { 'cp -a': [], 'cp -a + sync': [], 'copyTree (no sync)': [], 'prepopulate (copy + syncfs + move)': [] };
    for (let round = 0; round < 3; round++) {
      // Every timed step starts with nothing dirty, so no step pays for another's writeback.
      const dst = path.join(tmp, `cp-${round}`);
      const [, cpMs] = await timed(() => execFileSync('cp', ['-a', src, dst]));
      const [, syncMs] = await timed(() => execFileSync('sync'));
      runs['cp -a']!.push(cpMs);
      runs['cp -a + sync']!.push(cpMs + syncMs);
      await rm(dst, { recursive: true, force: true });
      execFileSync('sync');

      const plain = path.join(tmp, `tree-${round}`);
      const [, treeMs] = await timed(() => copyTree(src, plain));
      runs['copyTree (no sync)']!.push(treeMs);
      await rm(plain, { recursive: true, force: true });
      execFileSync('sync');

      const name = `pop-${round}`;
      await svc.create({ name });
      const [copied, popMs] = await timed(() => svc.prepopulate(name, src));
      assert.equal(copied, true);
      runs['prepopulate (copy + syncfs + move)']!.push(popMs);
      if (round === 0) await assertSameTree(svc.mountpointOf(name), src);
      await svc.remove(name, { trash: false });
      execFileSync('sync');
    }
    for (const [label, xs] of Object.entries(runs)) {
      const sorted = [...xs].sort((a, b) => a - b);
      report(`${label}: best ${sorted[0]!.toFixed(0)} ms, median ${sorted[1]!.toFixed(0)} ms (${xs.map((x) => x.toFixed(0)).join(', ')})`);
    }
  });
});
