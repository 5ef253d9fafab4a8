/**
 * `strata volume create|ls|inspect|rm|prune|restore|trash`: thin handlers over the engine's
 * VolumeService, with docker's flags, columns and messages. `restore` and `trash` are
 * strata's: removed volumes stay restorable for a grace period (see docs/VOLUMES.md).
 */
import type { Parsed } from '../args.js';
import { FlagError } from '../args.js';
import { render } from '../format.js';
import type { Cli } from '../main.js';
import { humanSize } from '../units.js';
import { confirm, parseFilters } from './common.js';
import { forEachName } from './container-common.js';
import { inspectObjects } from './inspect.js';

function keyValues(list: readonly string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    if (flag === 'opt' && eq <= 0) throw new FlagError(`invalid argument "${kv}" for "-o, --opt" flag: invalid key value pair format in driver options`);
    out[eq < 0 ? kv : kv.slice(0, eq)] = eq < 0 ? '' : kv.slice(eq + 1);
  }
  return out;
}

export const create = {
  spec: {
    usage: '[OPTIONS] [VOLUME]',
    description: 'Create a volume',
    flags: [
      { name: 'driver', short: 'd', type: 'string' as const, value: 'string', default: 'local', description: 'Specify volume driver name' },
      { name: 'label', type: 'list' as const, value: 'list', description: 'Set metadata for a volume' },
      { name: 'name', type: 'string' as const, value: 'string', description: 'Specify volume name' },
      { name: 'opt', short: 'o', type: 'list' as const, value: 'map', description: 'Set driver specific options' },
    ],
    args: { max: 1 },
  },
  async run(cli: Cli, { flags, args }: Parsed): Promise<number> {
    const flagName = flags.name as string | undefined;
    if (flagName && args[0] && flagName !== args[0]) {
      throw new FlagError(`conflicting options: either specify --name or provide positional arg, not both`);
    }
    const labels = keyValues(flags.label as string[], 'label');
    const options = keyValues(flags.opt as string[], 'opt');
    const volumes = await (await cli.engine()).volumes();
    const v = await volumes.create({
      name: args[0] ?? flagName,
      driver: (flags.driver as string) || 'local',
      labels: Object.keys(labels).length > 0 ? labels : {},
      options: Object.keys(options).length > 0 ? options : {},
    });
    cli.out(`${v.Name}\n`);
    return 0;
  },
};

export const ls = {
  spec: {
    usage: '[OPTIONS]',
    description: 'List volumes',
    flags: [
      { name: 'filter', short: 'f', type: 'list' as const, value: 'filter', description: "Provide filter values (e.g. 'dangling=true')" },
      { name: 'format', type: 'string' as const, value: 'string', description: 'Pretty-print volumes using a Go template' },
      { name: 'quiet', short: 'q', type: 'bool' as const, description: 'Only display volume names' },
    ],
    args: { max: 0 },
  },
  async run(cli: Cli, { flags }: Parsed): Promise<number> {
    const volumes = await (await cli.engine()).volumes();
    const list = await volumes.list({ filters: parseFilters(flags.filter as string[]) });
    let format = (flags.format as string | undefined) ?? '';
    if (flags.quiet === true) format = '{{.Name}}';
    else if (format === '' || format === 'table') format = 'table {{.Driver}}\t{{.Name}}';
    const rows = list.map((v) => ({
      Name: v.Name, Driver: v.Driver, Scope: v.Scope, Mountpoint: v.Mountpoint, CreatedAt: v.CreatedAt,
      Labels: Object.entries(v.Labels ?? {}).map(([k, x]) => `${k}=${x}`).join(','), Links: 'N/A', Size: 'N/A',
    }));
    cli.out(render(format, rows, { Name: 'VOLUME NAME', Driver: 'DRIVER', Scope: 'SCOPE', Mountpoint: 'MOUNTPOINT', CreatedAt: 'CREATED', Labels: 'LABELS', Links: 'LINKS', Size: 'SIZE' }));
    return 0;
  },
};

export const inspect = {
  spec: {
    usage: '[OPTIONS] VOLUME [VOLUME...]',
    description: 'Display detailed information on one or more volumes',
    flags: [{ name: 'format', short: 'f', type: 'string' as const, value: 'string', description: 'Format the output using the given Go template' }],
    args: { min: 1 },
  },
  run(cli: Cli, { flags, args }: Parsed): Promise<number> {
    return inspectObjects(cli, args, (flags.format as string | undefined) || undefined, 'volume');
  },
};

export const rm = {
  spec: {
    usage: '[OPTIONS] VOLUME [VOLUME...]',
    description: 'Remove one or more volumes',
    flags: [
      { name: 'force', short: 'f', type: 'bool' as const, description: 'Force the removal of one or more volumes' },
      { name: 'no-trash', type: 'bool' as const, description: 'Delete the data at once instead of keeping it restorable (strata)' },
    ],
    args: { min: 1 },
  },
  async run(cli: Cli, { flags, args }: Parsed): Promise<number> {
    const volumes = await (await cli.engine()).volumes();
    return forEachName(cli, args, async (name) => {
      await volumes.remove(name, { force: flags.force === true, trash: flags['no-trash'] !== true });
    });
  },
};

export const prune = {
  spec: {
    usage: '[OPTIONS]',
    description: 'Remove unused local volumes',
    flags: [
      { name: 'all', short: 'a', type: 'bool' as const, description: 'Remove all unused volumes, not just anonymous ones' },
      { name: 'filter', type: 'list' as const, value: 'filter', description: "Provide filter values (e.g. 'label=<label>')" },
      { name: 'force', short: 'f', type: 'bool' as const, description: 'Do not prompt for confirmation' },
      { name: 'no-trash', type: 'bool' as const, description: 'Delete the data at once instead of keeping it restorable (strata)' },
    ],
    args: { max: 0 },
  },
  async run(cli: Cli, { flags }: Parsed): Promise<number> {
    const all = flags.all === true;
    const warning = all
      ? 'WARNING! This will remove all local volumes not used by at least one container.'
      : 'WARNING! This will remove anonymous local volumes not used by at least one container.';
    if (flags.force !== true && !(await confirm(cli, warning))) return 0;
    const volumes = await (await cli.engine()).volumes();
    const report = await volumes.prune({ all, filters: parseFilters(flags.filter as string[], '--filter'), trash: flags['no-trash'] !== true });
    let out = '';
    if (report.VolumesDeleted.length > 0) out += `Deleted Volumes:\n${report.VolumesDeleted.map((n) => `${n}\n`).join('')}\n`;
    out += `Total reclaimed space: ${humanSize(report.SpaceReclaimed)}\n`;
    cli.out(out);
    return 0;
  },
};

export const restore = {
  spec: { usage: 'VOLUME [VOLUME...]', description: 'Restore removed volumes from the trash (strata)', flags: [], args: { min: 1 } },
  async run(cli: Cli, { args }: Parsed): Promise<number> {
    const volumes = await (await cli.engine()).volumes();
    return forEachName(cli, args, async (name) => {
      await volumes.restore(name);
    });
  },
};

export const trash = {
  spec: {
    usage: '[OPTIONS]',
    description: 'List removed volumes that can still be restored (strata)',
    flags: [{ name: 'empty', type: 'bool' as const, description: 'Delete everything in the trash now' }],
    args: { max: 0 },
  },
  async run(cli: Cli, { flags }: Parsed): Promise<number> {
    const volumes = await (await cli.engine()).volumes();
    if (flags.empty === true) {
      for (const e of await volumes.purgeTrash()) cli.out(`${e.name}\n`);
      return 0;
    }
    const rows = (await volumes.listTrash()).map((e) => ({ Name: e.name, RemovedAt: e.removedAt.toISOString() }));
    cli.out(render('table {{.Name}}\t{{.RemovedAt}}', rows, { Name: 'VOLUME NAME', RemovedAt: 'REMOVED AT' }));
    return 0;
  },
};
