/** `strata ps` / `strata container ls`. */
import type { ContainerSummary } from '../../engine/containers.js';
import type { Parsed } from '../args.js';
import { render } from '../format.js';
import type { Cli } from '../main.js';
import { ellipsis, humanSize, since, truncateId } from '../units.js';
import { parseFilters } from './common.js';

export const spec = {
  usage: '[OPTIONS]',
  description: 'List containers',
  flags: [
    { name: 'all', short: 'a', type: 'bool' as const, description: 'Show all containers (default shows just running)' },
    { name: 'filter', short: 'f', type: 'list' as const, value: 'filter', description: 'Filter output based on conditions provided' },
    { name: 'format', type: 'string' as const, value: 'string', description: 'Pretty-print containers using a Go template' },
    { name: 'last', short: 'n', type: 'string' as const, value: 'int', description: 'Show n last created containers (includes all states)' },
    { name: 'latest', short: 'l', type: 'bool' as const, description: 'Show the latest created container (includes all states)' },
    { name: 'no-trunc', type: 'bool' as const, description: "Don't truncate output" },
    { name: 'quiet', short: 'q', type: 'bool' as const, description: 'Only display container IDs' },
    { name: 'size', short: 's', type: 'bool' as const, description: 'Display total file sizes' },
  ],
  args: { max: 0 },
};

const HEADER = {
  ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', CreatedAt: 'CREATED AT', RunningFor: 'CREATED', Ports: 'PORTS',
  Status: 'STATUS', Size: 'SIZE', Names: 'NAMES', Labels: 'LABELS', Mounts: 'MOUNTS', Networks: 'NETWORKS', State: 'STATE', LocalVolumes: 'LOCAL VOLUMES',
};

/** docker's PORTS column: `0.0.0.0:18080->80/tcp, 443/tcp`. */
export function portsText(ports: ContainerSummary['Ports']): string {
  return ports
    .map((p) => (p.PublicPort !== undefined ? `${p.IP ?? '0.0.0.0'}:${p.PublicPort}->${p.PrivatePort}/${p.Type}` : `${p.PrivatePort}/${p.Type}`))
    .join(', ');
}

export async function run(cli: Cli, { flags }: Parsed): Promise<number> {
  const filters = parseFilters(flags.filter as string[]);
  let last = flags.last === undefined ? -1 : Number(flags.last);
  if (flags.latest === true) last = 1;
  const trunc = flags['no-trunc'] !== true;
  const size = flags.size === true;
  const containers = await (await cli.engine()).containers();
  let list = await containers.list({ all: flags.all === true || last > 0, size, filters });
  if (last > 0) list = list.slice(0, last);
  let format = (flags.format as string | undefined) ?? '';
  if (flags.quiet === true) format = '{{.ID}}';
  else if (format === '' || format === 'table') {
    format = `table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}${size ? '\t{{.Size}}' : ''}`;
  }
  const rows = list.map((c) => ({
    ID: trunc ? truncateId(c.Id) : c.Id,
    Image: c.Image,
    Command: trunc ? `"${ellipsis(c.Command, 20)}"` : `"${c.Command}"`,
    CreatedAt: new Date(c.Created * 1000).toISOString(),
    RunningFor: since(c.Created),
    Ports: portsText(c.Ports),
    Status: c.Status,
    State: c.State,
    Size: size ? `${humanSize(c.SizeRw ?? 0)} (virtual ${humanSize(c.SizeRootFs ?? 0)})` : '',
    Names: c.Names.map((n) => n.slice(1)).join(','),
    Labels: Object.entries(c.Labels).map(([k, v]) => `${k}=${v}`).join(','),
    Mounts: (c.Mounts as Array<{ Name?: string; Source: string }>).map((m) => m.Name || m.Source).join(','),
    Networks: c.HostConfig.NetworkMode === 'default' ? 'bridge' : c.HostConfig.NetworkMode,
    LocalVolumes: String((c.Mounts as Array<{ Type?: string }>).filter((m) => m.Type === 'volume').length),
  }));
  cli.out(render(format, rows, HEADER));
  return 0;
}
