/** `strata rename` / `strata container rename`. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';

export const spec = { usage: 'CONTAINER NEW_NAME', description: 'Rename a container', flags: [], args: { min: 2, max: 2 } };

export async function run(cli: Cli, { args }: Parsed): Promise<number> {
  const containers = await (await cli.engine()).containers();
  await containers.rename(args[0]!, args[1]!);
  return 0;
}
