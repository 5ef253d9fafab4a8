/** `strata tag` / `strata image tag`. */
import { InvalidArgumentError } from '../../errors.js';
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { ClientError } from '../output.js';

export const spec = {
  usage: 'SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]',
  description: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
  flags: [],
  args: { min: 2, max: 2 },
};

export async function run(cli: Cli, { args }: Parsed): Promise<number> {
  const [source, target] = args as [string, string];
  // docker's client checks the target before asking the daemon.
  const { parseTagTarget } = await import('../../engine/images.js');
  try {
    parseTagTarget(target);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new ClientError(err.message);
    throw err;
  }
  const engine = await cli.engine();
  await engine.tag(source, target);
  return 0;
}
