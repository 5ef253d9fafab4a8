/** `strata start` / `strata container start`. */
import type { Parsed } from '../args.js';
import { ClientError } from '../output.js';
import type { Cli } from '../main.js';
import { forEachName } from './container-common.js';

export const spec = {
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Start one or more stopped containers',
  flags: [
    { name: 'attach', short: 'a', type: 'bool' as const, description: "Attach STDOUT/STDERR and forward signals" },
    { name: 'interactive', short: 'i', type: 'bool' as const, description: "Attach container's STDIN" },
  ],
  args: { min: 1 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const containers = await (await cli.engine()).containers();
  if (flags.attach === true || flags.interactive === true) {
    if (args.length > 1) throw new ClientError('you cannot start and attach multiple containers at once');
    const started = await containers.start(args[0]!, { attach: true, stdin: flags.interactive === true ? 'inherit' : 'ignore' });
    return started.wait ? await started.wait() : 0;
  }
  return forEachName(cli, args, async (ref) => {
    await containers.start(ref);
  });
}
