/**
 * Files of the strata package itself: package.json, the native addon, the worker scripts and
 * the monitor. They are found from the package root rather than from each module's own
 * location, because the same code runs from the per-file build (`dist/src/**`) and from the
 * CLI bundle (`dist/cli/strata.cjs`); both sit two directories below the root.
 */
import { fileURLToPath } from 'node:url';

const PACKAGE_ROOT = new URL('../../', import.meta.url);

/** Absolute path of `relative` (e.g. `dist/src/runtime/monitor-main.js`) inside the package. */
export function packageFile(relative: string): string {
  return fileURLToPath(new URL(relative, PACKAGE_ROOT));
}
