/** `strata inspect`: docker's generic inspect over containers, images and volumes. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { ClientError } from '../output.js';
import { inspectObjects, type InspectKind } from './inspect.js';

export const spec = {
  usage: '[OPTIONS] NAME|ID [NAME|ID...]',
  description: 'Return low-level information on Docker objects',
  flags: [
    { name: 'format', short: 'f', type: 'string' as const, value: 'string', description: 'Format the output using the given Go template' },
    { name: 'size', short: 's', type: 'bool' as const, description: 'Display total file sizes if the type is container' },
    { name: 'type', type: 'string' as const, value: 'string', description: 'Return JSON for specified type' },
  ],
  args: { min: 1 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const type = (flags.type as string | undefined) || '';
  if (type !== '' && !['image', 'container', 'volume'].includes(type)) throw new ClientError(`"${type}" is not a valid value for --type`);
  return inspectObjects(cli, args, (flags.format as string | undefined) || undefined, (type || 'object') as InspectKind, flags.size === true);
}
