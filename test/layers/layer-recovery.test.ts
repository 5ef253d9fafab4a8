/**
 * Crash recovery: leftovers of dead processes are reaped, live ones are not, and a process
 * SIGKILLed at any point of a registration never leaves a listed-but-broken layer.
 *
 * This file is also the crashing child: run with STRATA_LAYERS_CHILD set, it registers the
 * tars named on its command line and reports progress on stdout.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import { overlay2 } from '../../src/drivers/overlay2.js';
import { vfs } from '../../src/drivers/vfs.js';
import type { Driver, DriverFactory } from '../../src/drivers/driver.js';
import { LayerStore } from '../../src/layers/layer-store.js';
import { WriteSet } from '../../src/sys/atomic.js';
import { FileLock } from '../../src/sys/lock.js';
import { randomId } from '../../src/sys/ids.js';
import { Rng, TarFileWriter, sha256, type Digest } from '../helpers/fixtures.js';

const FACTORIES: Record<string, DriverFactory> = { overlay2, vfs };

async function openStore(dataRoot: string, driverName: string): Promise<{ driver: Driver; store: LayerStore; imageRoot: string }> {
  const driver = await FACTORIES[driverName]!.open(dataRoot);
  const imageRoot = path.join(dataRoot, 'image', driver.name);
  return { driver, imageRoot, store: await LayerStore.open({ imageRoot, driver }) };
}

async function child(): Promise<void> {
  const [dataRoot, driverName, mode, ...tars] = process.argv.slice(2);
  const { store } = await openStore(dataRoot!, driverName!);
  process.stdout.write('open\n');
  const diffIds = JSON.parse(process.env.STRATA_DIFF_IDS!) as Digest[];
  if (mode === 'chain') {
    await store.registerChain(
      tars.map((t, i) => ({ diffId: diffIds[i]!, open: async () => createReadStream(t) })),
      { onProgress: (i, b) => process.stdout.write(`progress ${i} ${b}\n`) },
    );
  } else {
    let parent: Digest | undefined;
    for (const t of tars) parent = (await store.register(createReadStream(t), parent)).chainId;
  }
  process.stdout.write('done\n');
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function pick(t: TestContext): Promise<DriverFactory[]> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'strata-probe-'));
  try {
    const ok = (await overlay2.probe(root)).ok;
    if (!ok) t.diagnostic('overlay2 unavailable here; vfs only');
    return ok ? [overlay2, vfs] : [vfs];
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function assertClean(store: LayerStore, driver: Driver, imageRoot: string): Promise<void> {
  assert.deepEqual(await readdir(path.join(imageRoot, 'layerdb', 'tmp')), [], 'no staging leftovers');
  const names = await readdir(path.join(imageRoot, 'layerdb', 'sha256'));
  assert.deepEqual(names.filter((n) => !/^[0-9a-f]{64}$/.test(n)), [], 'no -removing dirs');
  const layers = await store.list();
  assert.equal(layers.length, names.length, 'every committed dir loads');
  assert.deepEqual((await driver.list()).sort(), layers.map((l) => l.cacheId).sort(), 'driver dirs = layers');
}

if (process.env.STRATA_LAYERS_CHILD) {
  await child();
} else {
  test('recover reaps dead write-sets, -removing and broken dirs, orphans; keeps live and mounted', async (t) => {
    for (const factory of await pick(t)) {
      const dataRoot = await mkdtemp(path.join(os.tmpdir(), 'strata-recover-'));
      t.after(() => rm(dataRoot, { recursive: true, force: true }));
      const { driver, store, imageRoot } = await openStore(dataRoot, factory.name);
      const db = path.join(imageRoot, 'layerdb');
      const kept = await store.register(Readable.from([Buffer.alloc(1024)]), undefined);

      // A write-set whose owner died (no flock) and the driver dir it had created.
      const dead = randomId();
      await mkdir(path.join(db, 'tmp', 'write-set-dead01'));
      await writeFile(path.join(db, 'tmp', 'write-set-dead01', 'cache-id'), dead);
      await driver.prepare(dead);
      // A dead one that died before recording anything.
      await mkdir(path.join(db, 'tmp', 'write-set-dead02'));
      // A live one: its owner (this process) holds the flock.
      const live = await WriteSet.create(path.join(db, 'tmp'));
      const liveId = randomId();
      await live.writeFile('cache-id', liveId);
      await driver.prepare(liveId);
      // An interrupted deletion.
      const removing = randomId();
      const rdir = path.join(db, 'sha256', `${sha256('gone').slice(7)}-${randomId()}-removing`);
      await mkdir(rdir);
      await writeFile(path.join(rdir, 'cache-id'), removing);
      await driver.prepare(removing);
      // A committed dir with files missing.
      const broken = randomId();
      const bdir = path.join(db, 'sha256', sha256('broken').slice(7));
      await mkdir(bdir);
      await writeFile(path.join(bdir, 'cache-id'), broken);
      await driver.prepare(broken);
      // A driver dir nothing names, and an RW layer's dirs that mounts/ names.
      const orphan = randomId();
      await driver.prepare(orphan);
      const mountId = randomId();
      await driver.prepare(`${mountId}-init`);
      await driver.prepare(mountId, `${mountId}-init`);
      await mkdir(path.join(db, 'mounts', 'ctr'));
      await writeFile(path.join(db, 'mounts', 'ctr', 'mount-id'), mountId);
      await writeFile(path.join(db, 'mounts', 'ctr', 'init-id'), `${mountId}-init`);
      await writeFile(path.join(db, 'mounts', 'ctr', 'parent'), kept.chainId);

      // Busy (another holder of the store lock): recover does nothing and does not wait.
      const holder = await FileLock.acquire(path.join(db, '.lock'), { mode: 'shared' });
      await store.recover();
      await holder.release();
      assert.equal((await driver.list()).length, 8, `${factory.name}: nothing reaped while busy`);

      await store.recover();
      assert.deepEqual(
        (await driver.list()).sort(),
        [kept.cacheId, liveId, mountId, `${mountId}-init`].sort(),
        factory.name,
      );
      assert.deepEqual(await readdir(path.join(db, 'tmp')), [path.basename(live.path)]);
      assert.deepEqual(await readdir(path.join(db, 'sha256')), [kept.chainId.slice(7)]);
      assert.deepEqual(await store.list(), [kept]);
      // The mount keeps its parent from gc, too.
      assert.deepEqual(await store.gc(new Set()), []);

      await live.cancel();
      await driver.remove(liveId);
    }
  });

  test('SIGKILL at any point of a registration: nothing half-made is listed, recover leaves no orphans', async (t) => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'strata-crash-'));
    t.after(() => rm(work, { recursive: true, force: true }));
    // Three layers of many small files plus a few large ones: long enough to kill mid-way.
    const rng = new Rng(7);
    const tars: string[] = [];
    const diffIds: Digest[] = [];
    for (let l = 0; l < 3; l++) {
      const w = new TarFileWriter(path.join(work, `l${l}.tar`));
      w.add({ name: `d${l}/`, type: 'dir', mode: 0o755 });
      for (let f = 0; f < 500; f++) w.add({ name: `d${l}/f${f}`, data: rng.bytes(rng.int(8192)) });
      for (let f = 0; f < 2; f++) w.add({ name: `d${l}/big${f}`, data: rng.bytes(2 << 20) });
      const r = w.finish();
      tars.push(r.path);
      diffIds.push(r.digest);
    }
    const originals = await Promise.all(tars.map((p) => readFile(p)));
    const self = fileURLToPath(import.meta.url);

    const runChild = (dataRoot: string, driverName: string, mode: string, killAfterMs?: number) =>
      new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number; out: string }>((resolve, reject) => {
        const p = spawn(process.execPath, [self, dataRoot, driverName, mode, ...tars], {
          env: { ...process.env, STRATA_LAYERS_CHILD: '1', STRATA_DIFF_IDS: JSON.stringify(diffIds) },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        let started = 0;
        p.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (!started && out.includes('open\n')) {
            started = Date.now();
            if (killAfterMs !== undefined) setTimeout(() => p.kill('SIGKILL'), killAfterMs);
          }
        });
        p.on('error', reject);
        p.on('exit', (code, signal) => resolve({ code, signal, ms: started ? Date.now() - started : 0, out }));
      });

    for (const factory of await pick(t)) {
      for (const mode of ['chain', 'sequential']) {
        const calib = await mkdtemp(path.join(work, 'root-'));
        const full = await runChild(calib, factory.name, mode);
        assert.equal(full.code, 0, full.out);
        await rm(calib, { recursive: true, force: true });
        const kills: string[] = [];
        for (const fraction of [0.15, 0.5, 0.8, 0.95]) {
          const dataRoot = await mkdtemp(path.join(work, 'root-'));
          const r = await runChild(dataRoot, factory.name, mode, Math.floor(full.ms * fraction));
          kills.push(`${Math.floor(full.ms * fraction)}ms:${r.signal ?? r.code}`);
          const { driver, store, imageRoot } = await openStore(dataRoot, factory.name);
          // Before any cleanup: whatever is listed is complete and byte-exact.
          const listed = await store.list();
          for (const l of listed) {
            const i = diffIds.indexOf(l.diffId);
            assert.ok(i >= 0);
            assert.deepEqual(await collect(await store.tarStream(l.chainId)), originals[i], `${factory.name} ${mode} layer ${i}`);
          }
          await store.recover();
          assert.deepEqual(await store.list(), listed, 'recover keeps committed layers');
          await assertClean(store, driver, imageRoot);
          // And the store still works: registering the rest completes the chain.
          const chain = await store.registerChain(
            tars.map((p, i) => ({ diffId: diffIds[i]!, open: async () => createReadStream(p) })),
          );
          assert.equal(chain.length, 3);
          await assertClean(store, driver, imageRoot);
          await rm(dataRoot, { recursive: true, force: true });
        }
        t.diagnostic(`${factory.name}/${mode}: full run ${full.ms}ms; kills ${kills.join(' ')}`);
      }
    }
  });
}
