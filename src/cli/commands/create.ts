/** `strata create` / `strata container create`. */
import { StrataError } from '../../errors.js';
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { CREATE_FLAGS, createOptions } from './container-flags.js';
import { daemonError } from './container-common.js';

export const spec = {
  usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
  description: 'Create a new container',
  flags: CREATE_FLAGS,
  args: { min: 1 },
  interspersed: false,
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const options = await createOptions(flags, args);
  const containers = await (await cli.engine()).containers();
  try {
    const { Id } = await containers.create(options);
    cli.out(`${Id}\n`);
    return 0;
  } catch (err) {
    if (err instanceof StrataError) return daemonError(cli, err, options.image);
    throw err;
  }
}
