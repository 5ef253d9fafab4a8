/** `strata pull` / `strata image pull`: docker's output lines, progress bars on a TTY only. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { ProgressLines } from '../progress.js';

export const spec = {
  usage: '[OPTIONS] NAME[:TAG|@DIGEST]',
  description: 'Pull an image or a repository from a registry',
  flags: [{ name: 'quiet', short: 'q', type: 'bool' as const, description: 'Suppress verbose output' }],
  args: { min: 1, max: 1 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const quiet = flags.quiet === true;
  const name = args[0]!;
  const distribution = await (await cli.engine()).distribution();
  const { parseNormalizedNamed, familiarString, withDefaultTag } = await import('../../engine/references.js');
  const ref = parseNormalizedNamed(name);
  if (!quiet && ref.isNameOnly) cli.out('Using default tag: latest\n');
  const tagged = withDefaultTag(ref);
  if (!quiet) cli.out(`${tagged.digest ?? tagged.tag}: Pulling from ${tagged.path}\n`);
  const bars = !quiet && cli.stdout.isTTY ? new ProgressLines(cli.stdout) : undefined;
  const result = await distribution.pull(name, {
    onProgress: bars && ((p) => bars.update(p.id, p.status, p.current ?? 0, p.total ?? 0, p.status !== 'Downloading')),
  });
  if (quiet) {
    cli.out(`${familiarString(result.reference)}\n`);
    return 0;
  }
  if (!bars) for (const l of result.layers) cli.out(`${l.id}: ${l.status}\n`);
  cli.out(`Digest: ${result.digest}\n`);
  cli.out(result.upToDate ? `Status: Image is up to date for ${familiarString(result.reference)}\n` : `Status: Downloaded newer image for ${familiarString(result.reference)}\n`);
  cli.out(`${result.reference.toString()}\n`);
  return 0;
}
