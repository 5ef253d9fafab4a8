/** `strata kill` / `strata container kill`. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { forEachName } from './container-common.js';

export const spec = {
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Kill one or more running containers',
  flags: [{ name: 'signal', short: 's', type: 'string' as const, value: 'string', default: 'KILL', description: 'Signal to send to the container' }],
  args: { min: 1 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const containers = await (await cli.engine()).containers();
  return forEachName(cli, args, async (ref) => {
    await containers.kill(ref, String(flags.signal ?? 'KILL'));
  });
}
