/** `strata stop` / `strata container stop`. */
import type { Parsed } from '../args.js';
import { FlagError } from '../args.js';
import type { Cli } from '../main.js';
import { forEachName } from './container-common.js';

export const spec = {
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Stop one or more running containers',
  flags: [{ name: 'time', short: 't', type: 'string' as const, value: 'int', description: 'Seconds to wait for stop before killing it (default 10)' }],
  args: { min: 1 },
};

export function timeoutFlag(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new FlagError(`invalid argument "${String(value)}" for "-t, --time" flag: strconv.ParseInt: parsing "${String(value)}": invalid syntax`);
  return n;
}

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const timeout = timeoutFlag(flags.time);
  const containers = await (await cli.engine()).containers();
  return forEachName(cli, args, async (ref) => {
    await containers.stop(ref, { timeout });
  });
}
