/** `strata container prune`. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { humanSize } from '../units.js';
import { confirm } from './common.js';

export const spec = {
  usage: '[OPTIONS]',
  description: 'Remove all stopped containers',
  flags: [
    { name: 'force', short: 'f', type: 'bool' as const, description: 'Do not prompt for confirmation' },
    { name: 'filter', type: 'list' as const, value: 'filter', description: 'Provide filter values (e.g. \'until=<timestamp>\')' },
  ],
  args: { max: 0 },
};

export async function run(cli: Cli, { flags }: Parsed): Promise<number> {
  if (flags.force !== true && !(await confirm(cli, 'WARNING! This will remove all stopped containers.'))) return 0;
  const containers = await (await cli.engine()).containers();
  const report = await containers.prune();
  let out = '';
  if (report.ContainersDeleted.length > 0) out += `Deleted Containers:\n${report.ContainersDeleted.map((id) => `${id}\n`).join('')}\n`;
  out += `Total reclaimed space: ${humanSize(report.SpaceReclaimed)}\n`;
  cli.out(out);
  return 0;
}
