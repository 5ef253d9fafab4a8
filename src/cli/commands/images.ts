/** `strata images` / `strata image ls`. */
import type { Parsed } from '../args.js';
import { IMAGE_HEADER, imageContexts, imageFormat, render } from '../format.js';
import type { Cli } from '../main.js';
import { parseFilters } from './common.js';

export const spec = {
  usage: '[OPTIONS] [REPOSITORY[:TAG]]',
  description: 'List images',
  flags: [
    { name: 'all', short: 'a', type: 'bool' as const, description: 'Show all images (default hides intermediate images)' },
    { name: 'digests', type: 'bool' as const, description: 'Show digests' },
    { name: 'filter', short: 'f', type: 'list' as const, value: 'filter', description: 'Filter output based on conditions provided' },
    { name: 'format', type: 'string' as const, value: 'string', description: 'Pretty-print images using a Go template' },
    { name: 'no-trunc', type: 'bool' as const, description: "Don't truncate output" },
    { name: 'quiet', short: 'q', type: 'bool' as const, description: 'Only show image IDs' },
  ],
  args: { max: 1 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const filters = parseFilters(flags.filter as string[]);
  if (args[0] !== undefined) (filters.reference ??= []).push(args[0]);
  const digests = flags.digests === true;
  const format = imageFormat(flags.format as string | undefined, { quiet: flags.quiet === true, digests });
  const engine = await cli.engine();
  const summaries = await engine.images({ all: flags.all === true, filters });
  const rows = imageContexts(summaries, { trunc: flags['no-trunc'] !== true, digests });
  cli.out(render(format, rows, IMAGE_HEADER));
  return 0;
}
