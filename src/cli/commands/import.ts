/** `strata import` / `strata image import`. */
import { NotSupportedError } from '../../errors.js';
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { checkReadable } from './common.js';

export const spec = {
  usage: '[OPTIONS] file|URL|- [REPOSITORY[:TAG]]',
  description: 'Import the contents from a tarball to create a filesystem image',
  flags: [
    { name: 'change', short: 'c', type: 'list' as const, value: 'list', description: 'Apply Dockerfile instruction to the created image' },
    { name: 'message', short: 'm', type: 'string' as const, value: 'string', description: 'Set commit message for imported image' },
    { name: 'platform', type: 'string' as const, value: 'string', description: 'Set platform if server is multi-platform capable' },
  ],
  args: { min: 1, max: 2 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const [source, repository] = args as [string, string | undefined];
  if (/^https?:\/\//i.test(source)) throw new NotSupportedError('importing from a URL is not supported');
  if (source !== '-') await checkReadable(source);
  const engine = await cli.engine();
  const { id } = await engine.import(source === '-' ? cli.stdin : source, {
    repository,
    message: flags.message as string | undefined,
    changes: flags.change as string[],
    platform: (flags.platform as string | undefined) || undefined,
  });
  cli.out(`${id}\n`);
  return 0;
}
