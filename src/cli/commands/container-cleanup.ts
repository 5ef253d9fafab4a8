/** `strata container cleanup ID` (hidden): what a container's monitor runs after its exit. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';

export const spec = { usage: 'CONTAINER', description: 'Release what a stopped container held (run by its monitor)', flags: [], args: { min: 1, max: 1 } };

export async function run(cli: Cli, { args }: Parsed): Promise<number> {
  const containers = await (await cli.engine()).containers();
  await containers.cleanup(args[0]!);
  return 0;
}
