/** `strata cp` / `strata container cp`. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';

export const spec = {
  usage: '[OPTIONS] CONTAINER:SRC_PATH DEST_PATH\n\tstrata cp [OPTIONS] SRC_PATH CONTAINER:DEST_PATH',
  description: 'Copy files/folders between a container and the local filesystem',
  flags: [
    { name: 'archive', short: 'a', type: 'bool' as const, description: 'Archive mode (copy all uid/gid information)' },
  ],
  args: { min: 2, max: 2 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const containers = await (await cli.engine()).containers();
  await containers.copy(args[0]!, args[1]!, { archive: flags.archive === true });
  return 0;
}
