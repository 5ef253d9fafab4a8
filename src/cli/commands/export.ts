/** `strata export` / `strata container export`: the container's filesystem as a tar. */
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';

import type { Parsed } from '../args.js';
import { ClientError } from '../output.js';
import type { Cli } from '../main.js';

export const spec = {
  usage: '[OPTIONS] CONTAINER',
  description: "Export a container's filesystem as a tar archive",
  flags: [{ name: 'output', short: 'o', type: 'string' as const, value: 'string', description: 'Write to a file, instead of STDOUT' }],
  args: { min: 1, max: 1 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const output = flags.output as string | undefined;
  if (!output && cli.stdout.isTTY) throw new ClientError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
  const containers = await (await cli.engine()).containers();
  const stream = await containers.export(args[0]!);
  await pipeline(stream, output ? createWriteStream(output) : cli.stdout);
  return 0;
}
