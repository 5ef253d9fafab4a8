/** `strata commit` / `strata container commit`: prints the new image ID. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';

export const spec = {
  usage: '[OPTIONS] CONTAINER [REPOSITORY[:TAG]]',
  description: "Create a new image from a container's changes",
  flags: [
    { name: 'author', short: 'a', type: 'string' as const, value: 'string', description: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")' },
    { name: 'change', short: 'c', type: 'list' as const, value: 'list', description: 'Apply Dockerfile instruction to the created image' },
    { name: 'message', short: 'm', type: 'string' as const, value: 'string', description: 'Commit message' },
    { name: 'pause', short: 'p', type: 'bool' as const, default: true, description: 'Pause container during commit' },
  ],
  args: { min: 1, max: 2 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const containers = await (await cli.engine()).containers();
  const id = await containers.commit(args[0]!, {
    repository: args[1],
    author: flags.author as string | undefined,
    message: flags.message as string | undefined,
    changes: flags.change as string[],
  });
  cli.out(`${id}\n`);
  return 0;
}
