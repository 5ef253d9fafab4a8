/** `strata rmi` / `strata image rm`. */
import { NotFoundError } from '../../errors.js';
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { describeError } from '../output.js';

export const spec = {
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  description: 'Remove one or more images',
  flags: [
    { name: 'force', short: 'f', type: 'bool' as const, description: 'Force removal of the image' },
    { name: 'no-prune', type: 'bool' as const, description: 'Do not delete untagged parents' },
  ],
  args: { min: 1 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const engine = await cli.engine();
  const errors: string[] = [];
  for (const name of args) {
    try {
      const records = await engine.remove(name, { force: flags.force === true, noPrune: flags['no-prune'] === true });
      cli.out(records.map((r) => ('Untagged' in r ? `Untagged: ${r.Untagged}\n` : `Deleted: ${r.Deleted}\n`)).join(''));
    } catch (err) {
      // docker's client words a missing image itself, naming it as the user typed it.
      if (err instanceof NotFoundError && err.message.startsWith('No such image')) errors.push(`Error: No such image: ${name}`);
      else errors.push(describeError(err, cli.command).text);
    }
  }
  if (errors.length === 0) return 0;
  cli.err(`${errors.join('\n')}\n`);
  return 1;
}
