/** `strata diff` / `strata container diff`: A/C/D lines. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';

export const spec = { usage: 'CONTAINER', description: "Inspect changes to files or directories on a container's filesystem", flags: [], args: { min: 1, max: 1 } };

export async function run(cli: Cli, { args }: Parsed): Promise<number> {
  const containers = await (await cli.engine()).containers();
  const lines = await containers.diffLines(args[0]!);
  cli.out(lines.map((l) => `${l}\n`).join(''));
  return 0;
}
