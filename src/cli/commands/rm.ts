/** `strata rm` / `strata container rm`. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { forEachName } from './container-common.js';

export const spec = {
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Remove one or more containers',
  flags: [
    { name: 'force', short: 'f', type: 'bool' as const, description: 'Force the removal of a running container (uses SIGKILL)' },
    { name: 'volumes', short: 'v', type: 'bool' as const, description: 'Remove anonymous volumes associated with the container' },
  ],
  args: { min: 1 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const containers = await (await cli.engine()).containers();
  return forEachName(cli, args, async (ref) => {
    await containers.remove(ref, { force: flags.force === true, volumes: flags.volumes === true });
  });
}
