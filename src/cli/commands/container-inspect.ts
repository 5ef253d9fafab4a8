/** `strata container inspect`. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { inspectObjects } from './inspect.js';

export const spec = {
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Display detailed information on one or more containers',
  flags: [
    { name: 'format', short: 'f', type: 'string' as const, value: 'string', description: 'Format the output using the given Go template' },
    { name: 'size', short: 's', type: 'bool' as const, description: 'Display total file sizes' },
  ],
  args: { min: 1 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  return inspectObjects(cli, args, (flags.format as string | undefined) || undefined, 'container', flags.size === true);
}
