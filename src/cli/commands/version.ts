/** `strata version`. */
import type { Cli } from '../main.js';

export const spec = {
  usage: '',
  description: 'Show the strata version information',
  flags: [],
  args: { max: 0 },
};

export async function run(cli: Cli): Promise<number> {
  const { PROG, readVersion } = await import('../main.js');
  cli.out(`${PROG} version ${await readVersion()}\n`);
  return 0;
}
