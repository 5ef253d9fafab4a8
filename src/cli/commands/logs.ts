/** `strata logs` / `strata container logs`. */
import type { Parsed } from '../args.js';
import { FlagError } from '../args.js';
import type { Cli } from '../main.js';

export const spec = {
  usage: '[OPTIONS] CONTAINER',
  description: 'Fetch the logs of a container',
  flags: [
    { name: 'follow', short: 'f', type: 'bool' as const, description: 'Follow log output' },
    { name: 'since', type: 'string' as const, value: 'string', description: 'Show logs since timestamp (e.g. 2013-01-02T13:23:37Z)' },
    { name: 'tail', short: 'n', type: 'string' as const, value: 'string', default: 'all', description: 'Number of lines to show from the end of the logs' },
    { name: 'timestamps', short: 't', type: 'bool' as const, description: 'Show timestamps' },
    { name: 'until', type: 'string' as const, value: 'string', description: 'Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z)' },
  ],
  args: { min: 1, max: 1 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const tailText = String(flags.tail ?? 'all');
  let tail: number | undefined;
  if (tailText !== 'all') {
    tail = Number(tailText);
    if (!Number.isInteger(tail)) throw new FlagError(`invalid argument "${tailText}" for "-n, --tail" flag`);
    if (tail < 0) tail = undefined;
  }
  const containers = await (await cli.engine()).containers();
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  try {
    for await (const e of containers.logs(args[0]!, {
      follow: flags.follow === true, tail, since: flags.since as string | undefined, until: flags.until as string | undefined, signal: ac.signal,
    })) {
      const text = flags.timestamps === true ? `${e.time} ${e.log}` : e.log;
      (e.stream === 'stderr' ? cli.stderr : cli.stdout).write(text);
    }
  } finally {
    process.off('SIGINT', stop);
  }
  return 0;
}
