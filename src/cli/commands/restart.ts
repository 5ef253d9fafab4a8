/** `strata restart` / `strata container restart`. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { forEachName } from './container-common.js';
import { spec as stopSpec, timeoutFlag } from './stop.js';

export const spec = { ...stopSpec, description: 'Restart one or more containers' };

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const timeout = timeoutFlag(flags.time);
  const containers = await (await cli.engine()).containers();
  return forEachName(cli, args, async (ref) => {
    await containers.restart(ref, { timeout });
  });
}
