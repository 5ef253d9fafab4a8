/** Flag handling shared by several commands. */
import { createInterface } from 'node:readline';
import { open } from 'node:fs/promises';

import { FlagError } from '../args.js';
import type { Cli } from '../main.js';

/**
 * docker's `--filter key=value` flags as a filter map (keys lowercased and trimmed, as
 * docker's filters.ParseFlag does).
 */
export function parseFilters(values: readonly string[], flag = '-f, --filter'): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i < 0) throw new FlagError(`invalid argument "${v}" for "${flag}" flag: bad format of filter (expected name=value)`);
    const key = v.slice(0, i).trim().toLowerCase();
    (out[key] ??= []).push(v.slice(i + 1).trim());
  }
  return out;
}

/** Opens and closes `file`, so a missing input fails the way docker's client reports it. */
export async function checkReadable(file: string): Promise<void> {
  const handle = await open(file, 'r');
  await handle.close();
}

/** Asks `[y/N]` on the terminal; only `y`/`Y` confirms (docker's PromptForConfirmation). */
export async function confirm(cli: Cli, warning: string): Promise<boolean> {
  cli.out(`${warning}\nAre you sure you want to continue? [y/N] `);
  const rl = createInterface({ input: cli.stdin });
  try {
    const line = await new Promise<string>((resolve) => {
      rl.once('line', resolve);
      rl.once('close', () => resolve(''));
    });
    return line.trim().toLowerCase() === 'y';
  } finally {
    rl.close();
  }
}
