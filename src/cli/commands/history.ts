/** `strata history` / `strata image history`. */
import type { Parsed } from '../args.js';
import { HISTORY_HEADER, historyContexts, historyFormat, render } from '../format.js';
import type { Cli } from '../main.js';

export const spec = {
  usage: '[OPTIONS] IMAGE',
  description: 'Show the history of an image',
  flags: [
    { name: 'format', type: 'string' as const, value: 'string', description: 'Pretty-print images using a Go template' },
    { name: 'human', short: 'H', type: 'bool' as const, default: true, description: 'Print sizes and dates in human readable format' },
    { name: 'no-trunc', type: 'bool' as const, description: "Don't truncate output" },
    { name: 'quiet', short: 'q', type: 'bool' as const, description: 'Only show image IDs' },
  ],
  args: { min: 1, max: 1 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const engine = await cli.engine();
  const items = await engine.history(args[0]!);
  const rows = historyContexts(items, { trunc: flags['no-trunc'] !== true, human: flags.human !== false });
  cli.out(render(historyFormat(flags.format as string | undefined, { quiet: flags.quiet === true }), rows, HISTORY_HEADER));
  return 0;
}
