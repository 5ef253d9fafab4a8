/**
 * The storage driver conformance suite: one set of cases every `Driver` must pass.
 *
 * A driver's test file calls `runDriverSuite` at top level. Each case opens the driver on a
 * fresh data root in a new temp dir, writes through real kernel mounts, compares the trees
 * its views show with replayed reference trees, and unmounts and deletes everything
 * afterwards, failing or not. Driver differences come from `driver.capabilities` only;
 * a case a driver cannot pass is listed in `skip` with the reason.
 *
 * @example
 *   // test/drivers/vfs.test.ts
 *   runDriverSuite({ name: 'vfs', open: (root) => vfs.open(root) });
 */
import { describe, test } from 'node:test';

import type { Driver } from '../driver.js';
import { cases } from './cases.js';
import { createCase } from './harness.js';

export type { CaseContext } from './harness.js';
export { cases } from './cases.js';

export interface DriverSuiteOptions {
  /** Shown in the test names. */
  name: string;
  /** Opens the driver on `root`, a fresh empty data root. */
  open(root: string): Promise<Driver>;
  /** Cases (by exact name, see `cases`) the driver is known not to pass, and why. */
  skip?: ReadonlyArray<{ reason: string; tests: readonly string[] }>;
}

/** Why no case can run here, or undefined. Mounts, mknod and chown need root. */
function environmentGap(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (real mounts, mknod, chown)';
  return undefined;
}

/** Registers the suite's cases with node:test. */
export function runDriverSuite(options: DriverSuiteOptions): void {
  const known = new Set(cases.map((c) => c.name));
  for (const entry of options.skip ?? []) {
    for (const name of entry.tests) {
      if (!known.has(name)) throw new Error(`runDriverSuite(${options.name}): skip names unknown case ${JSON.stringify(name)}`);
    }
  }
  const gap = environmentGap();
  describe(`driver conformance: ${options.name}`, () => {
    for (const c of cases) {
      const skipped = options.skip?.find((entry) => entry.tests.includes(c.name));
      const skip = gap ?? skipped?.reason ?? false;
      test(c.name, { skip }, async (t) => {
        const { ctx, cleanup, dump } = await createCase(options.open);
        t.after(cleanup);
        try {
          await c.run(ctx);
        } catch (err) {
          // What the driver left on disk explains most failures; print it before cleanup.
          t.diagnostic(`tree of ${ctx.tmp} at failure:\n${await dump().catch((e: unknown) => String(e))}`);
          throw err;
        }
      });
    }
  });
}
