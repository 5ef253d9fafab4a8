/**
 * Two processes registering the same image at the same moment both succeed and the store
 * holds each layer once (one layerdb dir, one driver dir, nothing staged).
 *
 * This file is also the child: with STRATA_LAYERS_CHILD set it waits for a start file,
 * registers the tars named on its command line and prints the resulting chain as JSON.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import { overlay2 } from '../../src/drivers/overlay2.js';
import { vfs } from '../../src/drivers/vfs.js';
import type { DriverFactory } from '../../src/drivers/driver.js';
import { LayerStore, type LayerInfo } from '../../src/layers/layer-store.js';
import { Rng, TarFileWriter, type Digest } from '../helpers/fixtures.js';

const FACTORIES: Record<string, DriverFactory> = { overlay2, vfs };

async function openStore(dataRoot: string, driverName: string) {
  const driver = await FACTORIES[driverName]!.open(dataRoot);
  const imageRoot = path.join(dataRoot, 'image', driver.name);
  return { driver, imageRoot, store: await LayerStore.open({ imageRoot, driver }) };
}

async function child(): Promise<void> {
  const [dataRoot, driverName, mode, go, ...tars] = process.argv.slice(2);
  const { store } = await openStore(dataRoot!, driverName!);
  const diffIds = JSON.parse(process.env.STRATA_DIFF_IDS!) as Digest[];
  // Both children are ready before either starts, so their registrations overlap.
  while (!existsSync(go!)) await new Promise((r) => setTimeout(r, 2));
  let chain: LayerInfo[];
  if (mode === 'chain') {
    chain = await store.registerChain(tars.map((t, i) => ({ diffId: diffIds[i]!, open: async () => createReadStream(t) })));
  } else {
    chain = [];
    for (const t of tars) chain.push(await store.register(createReadStream(t), chain.at(-1)?.chainId));
  }
  process.stdout.write(JSON.stringify(chain));
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

if (process.env.STRATA_LAYERS_CHILD) {
  await child();
} else {
  test('two processes registering one image both succeed and store each layer once', async (t) => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'strata-race-'));
    t.after(() => rm(work, { recursive: true, force: true }));
    const rng = new Rng(11);
    const tars: string[] = [];
    const diffIds: Digest[] = [];
    for (let l = 0; l < 4; l++) {
      const w = new TarFileWriter(path.join(work, `l${l}.tar`));
      w.add({ name: `d${l}/`, type: 'dir', mode: 0o755 });
      for (let f = 0; f < 200; f++) w.add({ name: `d${l}/f${f}`, data: rng.bytes(rng.int(32_768)) });
      const r = w.finish();
      tars.push(r.path);
      diffIds.push(r.digest);
    }
    const self = fileURLToPath(import.meta.url);
    const probeRoot = await mkdtemp(path.join(work, 'probe-'));
    const names = (await overlay2.probe(probeRoot)).ok ? ['overlay2', 'vfs'] : ['vfs'];

    const runChild = (dataRoot: string, driverName: string, mode: string, go: string) =>
      new Promise<{ code: number | null; out: string }>((resolve, reject) => {
        const p = spawn(process.execPath, [self, dataRoot, driverName, mode, go, ...tars], {
          env: { ...process.env, STRATA_LAYERS_CHILD: '1', STRATA_DIFF_IDS: JSON.stringify(diffIds) },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.on('error', reject);
        p.on('exit', (code) => resolve({ code, out }));
      });

    for (const driverName of names) {
      for (const [modeA, modeB] of [['chain', 'chain'], ['chain', 'sequential'], ['sequential', 'sequential']]) {
        const dataRoot = await mkdtemp(path.join(work, 'root-'));
        // Create the layout first so both children find it (they would race creating it too,
        // which is fine, but the start file must live somewhere).
        const go = path.join(dataRoot, 'go');
        const a = runChild(dataRoot, driverName, modeA!, go);
        const b = runChild(dataRoot, driverName, modeB!, go);
        await new Promise((r) => setTimeout(r, 600));
        await writeFile(go, '');
        const [ra, rb] = await Promise.all([a, b]);
        const label = `${driverName} ${modeA}/${modeB}`;
        assert.equal(ra.code, 0, label);
        assert.equal(rb.code, 0, label);
        const ca = JSON.parse(ra.out) as LayerInfo[];
        const cb = JSON.parse(rb.out) as LayerInfo[];
        assert.equal(ca.length, 4);
        assert.deepEqual(cb, ca, `${label}: both report the same stored layers`);

        const { driver, store, imageRoot } = await openStore(dataRoot, driverName);
        const listed = await store.list();
        assert.equal(listed.length, 4, label);
        assert.deepEqual((await driver.list()).sort(), listed.map((l) => l.cacheId).sort(), `${label}: one driver dir per layer`);
        assert.deepEqual(await readdir(path.join(imageRoot, 'layerdb', 'tmp')), [], `${label}: nothing staged`);
        for (let i = 0; i < 4; i++) {
          assert.deepEqual(await collect(await store.tarStream(ca[i]!.chainId)), await readFile(tars[i]!), `${label} layer ${i}`);
        }
        await rm(dataRoot, { recursive: true, force: true });
      }
    }
  });
}
