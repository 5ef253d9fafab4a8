/**
 * Property-style: random sequences of container and volume operations, through the library
 * API on a real data root with real runc, never lose a named volume's data unless the user
 * names the volume; `prune --all`, the one command that removes named volumes without naming
 * them, leaves them restorable from the trash.
 */
import { runcSkipReason } from '../helpers/containers.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Engine } from '../../src/engine/engine.js';
import { ConflictError } from '../../src/errors.js';
import { Rng, buildBusybox, buildBusyboxSkipReason } from '../helpers/fixtures.js';
import { makeTempRoot, releaseTempRoot, rootSkipReason } from '../helpers/strata-cli.js';

const skip = rootSkipReason() ?? buildBusyboxSkipReason() ?? runcSkipReason();
const NAMED = ['keep1', 'keep2', 'keep3'];
const SEEDS = [1, 2, 3];
const STEPS = 30;

for (const seed of SEEDS) {
  test(`random create/run/rm/rm -v/prune sequences keep named volume data (seed ${seed})`, { skip }, async (t) => {
    const dir = makeTempRoot('vsafe-');
    try {
      const tar = join(dir, 'busybox.tar');
      buildBusybox(tar);
      const engine = await Engine.open({ dataRoot: join(dir, 'root') });
      await engine.load(tar);
      const volumes = await engine.volumes();
      const containers = await engine.containers();
      for (const name of NAMED) {
        await volumes.create({ name });
        writeFileSync(join(volumes.mountpointOf(name), 'precious'), `data of ${name}\n`);
      }
      const rng = new Rng(seed);
      const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;
      const live: string[] = [];
      const log: string[] = [];

      const check = async (step: string) => {
        for (const name of NAMED) {
          const file = join(volumes.mountpointOf(name), 'precious');
          if (existsSync(file)) {
            assert.equal(readFileSync(file, 'utf8'), `data of ${name}\n`, `${name} after ${step}`);
            continue;
          }
          // Only prune --all may have taken it, and then into the trash: restore must work.
          assert.ok(log.some((l) => l.startsWith('volume prune --all')), `${name} lost after ${log.join(' | ')}`);
          await volumes.restore(name);
          assert.equal(readFileSync(file, 'utf8'), `data of ${name}\n`, `${name} restored after ${step}`);
        }
      };

      for (let i = 0; i < STEPS; i++) {
        const op = rng.int(8);
        let step: string;
        if (op <= 2 || live.length === 0) {
          const vflags: string[] = [];
          if (rng.int(2)) vflags.push(`${pick(NAMED)}:/n${rng.int(3)}`);
          if (rng.int(2)) vflags.push(`/anon${rng.int(2)}`);
          const from = live.length > 0 && rng.int(3) === 0 ? [pick(live)] : [];
          const dests = new Set<string>();
          const unique = vflags.filter((v) => {
            const d = v.includes(':') ? v.split(':')[1]! : v;
            if (dests.has(d)) return false;
            dests.add(d);
            return true;
          });
          const { Id } = await containers.create({ image: 'busybox', cmd: ['sh', '-c', 'ls / > /dev/null'], network: 'none', volumes: unique, volumesFrom: from });
          live.push(Id);
          step = `create ${unique.join(',')} from=${from.join(',')}`;
          if (rng.int(2)) {
            const started = await containers.start(Id, { attach: true });
            await started.wait!();
            step += ' +run';
          }
        } else if (op === 3 || op === 4) {
          const id = pick(live);
          const v = rng.int(2) === 1;
          try {
            await containers.remove(id, { force: true, volumes: v });
            live.splice(live.indexOf(id), 1);
            step = `rm -f${v ? ' -v' : ''} ${id.slice(0, 6)}`;
          } catch (err) {
            if (!(err instanceof ConflictError)) throw err;
            step = `rm refused ${id.slice(0, 6)}`;
          }
        } else if (op === 5) {
          const report = await volumes.prune({});
          step = `volume prune (${report.VolumesDeleted.length})`;
        } else if (op === 6) {
          const report = await containers.prune();
          for (const id of report.ContainersDeleted) live.splice(live.indexOf(id), 1);
          step = `container prune (${report.ContainersDeleted.length})`;
        } else {
          const report = await volumes.prune({ all: true });
          step = `volume prune --all (${report.VolumesDeleted.length})`;
        }
        log.push(step);
        // Named volumes in use can never go, whatever the command.
        for (const name of NAMED) {
          const users = await volumes.references(name).catch(() => []);
          if (users.length > 0) assert.ok(existsSync(join(volumes.mountpointOf(name), 'precious')), `${name} in use but gone after ${step}`);
        }
        await check(step);
      }
      for (const id of [...live]) await containers.remove(id, { force: true, volumes: true });
      await check('final clean-up');
      t.diagnostic(log.join(' | '));
    } finally {
      releaseTempRoot(dir);
    }
  });
}
