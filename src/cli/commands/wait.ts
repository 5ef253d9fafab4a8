/** `strata wait` / `strata container wait`: prints each container's exit code. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { forEachName } from './container-common.js';

export const spec = { usage: 'CONTAINER [CONTAINER...]', description: 'Block until one or more containers stop, then print their exit codes', flags: [], args: { min: 1 } };

export async function run(cli: Cli, { args }: Parsed): Promise<number> {
  const containers = await (await cli.engine()).containers();
  return forEachName(cli, args, async (ref) => {
    cli.out(`${await containers.wait(ref)}\n`);
  }, false);
}
