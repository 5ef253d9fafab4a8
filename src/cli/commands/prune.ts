/** `strata image prune`. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { humanSize } from '../units.js';
import { confirm, parseFilters } from './common.js';

export const spec = {
  usage: '[OPTIONS]',
  description: 'Remove unused images',
  flags: [
    { name: 'all', short: 'a', type: 'bool' as const, description: 'Remove all unused images, not just dangling ones' },
    { name: 'filter', type: 'list' as const, value: 'filter', description: "Provide filter values (e.g. 'until=<timestamp>')" },
    { name: 'force', short: 'f', type: 'bool' as const, description: 'Do not prompt for confirmation' },
  ],
  args: { max: 0 },
};

const WARNING_DANGLING = 'WARNING! This will remove all dangling images.';
const WARNING_ALL = 'WARNING! This will remove all images without at least one container associated to them.';

export async function run(cli: Cli, { flags }: Parsed): Promise<number> {
  const filters = parseFilters(flags.filter as string[], '--filter');
  const all = flags.all === true;
  if (flags.force !== true && !(await confirm(cli, all ? WARNING_ALL : WARNING_DANGLING))) return 0;
  const engine = await cli.engine();
  const report = await engine.prune({ all, filters });
  if (report.ImagesDeleted && report.ImagesDeleted.length > 0) {
    const lines = report.ImagesDeleted.map((r) => ('Untagged' in r ? `untagged: ${r.Untagged}` : `deleted: ${r.Deleted}`));
    cli.out(`Deleted Images:\n${lines.join('\n')}\n\n`);
  }
  cli.out(`Total reclaimed space: ${humanSize(report.SpaceReclaimed)}\n`);
  return 0;
}
