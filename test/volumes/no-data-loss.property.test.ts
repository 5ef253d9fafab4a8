// Property: whatever sequence of create / addReference / releaseReference / remove / prune /
// restore runs, a named volume's data is never lost. It only leaves the live set when the user
// removed that volume by name (or pruned with --all), never while a container references it,
// and every removed volume's data is still in the trash and restorable. Random sequences from
// a seeded PRNG, checked against a model after every step.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { VolumeService } from '../../src/volumes/service.js';

/** mulberry32: small, fast, good enough to drive a test, and reproducible from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ModelVolume {
  named: boolean;
  refs: Set<string>;
  /** Content of `_data/data.txt`, unique per creation. */
  generation: string;
}

const NAMES = ['db', 'web', 'cache', 'logs', 'media', 'conf'];
const CONTAINERS = ['c0', 'c1', 'c2', 'c3'];
const STEPS = 300;

async function runSequence(seed: number): Promise<void> {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const tmp = await realpath(await mkdtemp(path.join(os.tmpdir(), `strata-volprop-${seed}-`)));
  let clock = Date.parse('2026-03-01T00:00:00Z');
  try {
    const svc = await VolumeService.open({ dataRoot: tmp, now: () => clock });
    const live = new Map<string, ModelVolume>();
    /** Removed generations by volume name, oldest first; restore takes the newest. */
    const trash = new Map<string, string[]>();
    /** Names whose removal the user asked for: by name, or by prune --all for named ones. */
    const removalAllowed = new Set<string>();
    let counter = 0;
    const log: string[] = [];

    const createVolume = async (name: string | undefined, reference?: string): Promise<void> => {
      const v = await svc.create({ name, reference });
      if (live.has(v.Name)) {
        if (reference) live.get(v.Name)!.refs.add(reference);
        return;
      }
      const generation = `${v.Name}#${counter++}`;
      await writeFile(path.join(v.Mountpoint, 'data.txt'), generation);
      live.set(v.Name, { named: name !== undefined, refs: new Set(reference ? [reference] : []), generation });
    };
    const toTrash = (name: string): void => {
      const m = live.get(name)!;
      live.delete(name);
      trash.set(name, [...(trash.get(name) ?? []), m.generation]);
    };

    for (let step = 0; step < STEPS; step++) {
      clock += 1000;
      const r = random();
      const liveNames = [...live.keys()];
      if (r < 0.22) {
        const name = pick(NAMES);
        const reference = random() < 0.3 ? pick(CONTAINERS) : undefined;
        log.push(`create ${name} ref=${reference}`);
        await createVolume(name, reference);
      } else if (r < 0.32) {
        const reference = random() < 0.5 ? pick(CONTAINERS) : undefined;
        log.push(`create anonymous ref=${reference}`);
        await createVolume(undefined, reference);
      } else if (r < 0.47 && liveNames.length > 0) {
        const name = pick(liveNames);
        const c = pick(CONTAINERS);
        log.push(`addReference ${name} ${c}`);
        await svc.addReference(name, c);
        live.get(name)!.refs.add(c);
      } else if (r < 0.64 && liveNames.length > 0) {
        const name = pick(liveNames);
        const c = pick(CONTAINERS);
        log.push(`releaseReference ${name} ${c}`);
        await svc.releaseReference(name, c);
        live.get(name)!.refs.delete(c);
      } else if (r < 0.76 && liveNames.length > 0) {
        const name = pick(liveNames);
        const force = random() < 0.5;
        log.push(`remove ${name} force=${force}`);
        const m = live.get(name)!;
        if (m.refs.size > 0) {
          await assert.rejects(svc.remove(name, { force }), { name: 'ConflictError' });
        } else {
          await svc.remove(name, { force });
          removalAllowed.add(name);
          toTrash(name);
        }
      } else if (r < 0.86) {
        const all = random() < 0.25;
        log.push(`prune all=${all}`);
        const expected = [...live.entries()].filter(([, m]) => m.refs.size === 0 && (all || !m.named)).map(([n]) => n).sort();
        const report = await svc.prune({ all });
        assert.deepEqual([...report.VolumesDeleted].sort(), expected, `seed ${seed} step ${step}: ${log.slice(-5).join(' | ')}`);
        for (const name of expected) {
          if (live.get(name)!.named) removalAllowed.add(name);
          toTrash(name);
        }
      } else if (r < 0.93) {
        const candidates = [...trash.keys()].filter((n) => !live.has(n) && NAMES.includes(n));
        if (candidates.length === 0) continue;
        const name = pick(candidates);
        log.push(`restore ${name}`);
        const v = await svc.restore(name);
        const generations = trash.get(name)!;
        const generation = generations.pop()!;
        if (generations.length === 0) trash.delete(name);
        assert.equal(await readFile(path.join(v.Mountpoint, 'data.txt'), 'utf8'), generation);
        live.set(name, { named: true, refs: new Set(), generation });
        removalAllowed.delete(name);
      } else {
        const name = `ghost${step}`;
        log.push(`remove -f ${name}`);
        await svc.remove(name, { force: true });
      }

      // The store agrees with the model after every step.
      const where = `seed ${seed} step ${step} after ${log.slice(-3).join(' | ')}`;
      const actual = await svc.list();
      assert.deepEqual(actual.map((v) => v.Name).sort(), [...live.keys()].sort(), where);
      for (const v of actual) {
        const m = live.get(v.Name)!;
        assert.equal(await readFile(path.join(v.Mountpoint, 'data.txt'), 'utf8'), m.generation, where);
        assert.deepEqual(await svc.references(v.Name), [...m.refs].sort(), where);
      }
      // A named volume not live was removed on request; nothing else makes one go away.
      for (const name of NAMES) {
        if (!live.has(name) && trash.has(name)) assert.ok(removalAllowed.has(name), `${where}: ${name} vanished`);
      }
    }

    // Every removed generation is still in the trash, data intact...
    const inTrash: string[] = [];
    for (const entry of await svc.listTrash()) {
      inTrash.push(await readFile(path.join(entry.path, '_data', 'data.txt'), 'utf8'));
    }
    assert.deepEqual(inTrash.sort(), [...trash.values()].flat().sort(), `seed ${seed}: trash content`);
    // ...and each removed named volume comes back with its last data.
    for (const [name, generations] of trash) {
      if (live.has(name) || !NAMES.includes(name)) continue;
      const v = await svc.restore(name);
      assert.equal(await readFile(path.join(v.Mountpoint, 'data.txt'), 'utf8'), generations[generations.length - 1]);
    }
    assert.deepEqual(await readdir(path.join(svc.root, '.staging')), []);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

for (const seed of [1, 42, 20260301]) {
  test(`random create/reference/remove/prune/restore sequences never lose a named volume (seed ${seed})`, async () => {
    await runSequence(seed);
  });
}
