/** `strata system df`. */
import type { Parsed } from '../args.js';
import {
  DF_HEADER, DF_IMAGES_TABLE, DF_TABLE, IMAGE_HEADER, dfContainerContexts, dfContexts, dfImageContexts, dfVolumeContexts, render, resolveJsonFormat,
} from '../format.js';
import type { Cli } from '../main.js';
import { humanSize } from '../units.js';

export const spec = {
  usage: '[OPTIONS]',
  description: 'Show strata disk usage',
  flags: [
    { name: 'format', type: 'string' as const, value: 'string', description: 'Pretty-print images using a Go template' },
    { name: 'verbose', short: 'v', type: 'bool' as const, description: 'Show detailed information on space usage' },
  ],
  args: { max: 0 },
};

const CONTAINERS_TABLE = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}';
const CONTAINERS_HEADER = {
  ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', LocalVolumes: 'LOCAL VOLUMES', Size: 'SIZE', RunningFor: 'CREATED', Status: 'STATUS', Names: 'NAMES',
};
const VOLUMES_TABLE = 'table {{.Name}}\t{{.Links}}\t{{.Size}}';
const VOLUMES_HEADER = { Name: 'VOLUME NAME', Links: 'LINKS', Size: 'SIZE' };
const CACHE_TABLE = 'CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED';

export async function run(cli: Cli, { flags }: Parsed): Promise<number> {
  const engine = await cli.engine();
  const df = await engine.systemDf();
  if (flags.verbose !== true) {
    cli.out(render(resolveJsonFormat((flags.format as string | undefined) || DF_TABLE), dfContexts(df), DF_HEADER));
    return 0;
  }
  const table = (header: string) => render(`table ${header.replaceAll('\t', '\\t')}`, [], {}).trimEnd();
  const images = render(DF_IMAGES_TABLE, dfImageContexts(df.Images), IMAGE_HEADER).trimEnd();
  const containers = render(CONTAINERS_TABLE, dfContainerContexts(df.Containers), CONTAINERS_HEADER).trimEnd();
  const volumes = render(VOLUMES_TABLE, dfVolumeContexts(df.Volumes), VOLUMES_HEADER).trimEnd();
  cli.out(
    `Images space usage:\n\n${images}\n\nContainers space usage:\n\n${containers}\n\n` +
    `Local Volumes space usage:\n\n${volumes}\n\nBuild cache usage: ${humanSize(0)}\n\n${table(CACHE_TABLE)}\n`,
  );
  return 0;
}
