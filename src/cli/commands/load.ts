/** `strata load` / `strata image load`. */
import type { LoadedImage } from '../../engine/images.js';
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { ClientError } from '../output.js';
import { ProgressLines } from '../progress.js';
import { truncateId } from '../units.js';
import { checkReadable } from './common.js';

export const spec = {
  usage: '[OPTIONS]',
  description: 'Load an image from a tar archive or STDIN',
  flags: [
    { name: 'input', short: 'i', type: 'string' as const, value: 'string', description: 'Read from tar archive file, instead of STDIN' },
    { name: 'quiet', short: 'q', type: 'bool' as const, description: 'Suppress the load output' },
  ],
  args: { max: 0 },
};

/** The lines docker prints for one loaded image. */
export function loadedLines(image: LoadedImage): string {
  let out = '';
  for (const tag of image.tags) {
    const old = image.replaced.find((r) => r.tag === tag);
    if (old) out += `The image ${tag} already exists, renaming the old one with ID ${old.oldId} to empty string\n`;
    out += `Loaded image: ${tag}\n`;
  }
  return out;
}

export async function run(cli: Cli, { flags }: Parsed): Promise<number> {
  const input = (flags.input as string | undefined) || undefined;
  if ((input === undefined || input === '-') && cli.stdin.isTTY) {
    throw new ClientError('requested load from stdin, but stdin is empty');
  }
  if (input !== undefined && input !== '-') await checkReadable(input);
  // As docker: no progress unless stdout is a terminal.
  const quiet = flags.quiet === true || !cli.stdout.isTTY;
  const bars = quiet ? undefined : new ProgressLines(cli.stdout);
  const engine = await cli.engine();
  const loaded = await engine.load(input === undefined || input === '-' ? cli.stdin : input, {
    onProgress: bars && ((e) => {
      if (e.kind === 'layer') bars.update(truncateId(e.diffId), 'Loading layer', e.bytes, e.total, e.bytes >= e.total);
    }),
    onImage: (image) => cli.out(loadedLines(image)),
  });
  if (loaded.length > 0 && loaded.at(-1)!.tags.length === 0) {
    cli.out(loaded.map((l) => `Loaded image ID: ${l.id}\n`).join(''));
  }
  return 0;
}
