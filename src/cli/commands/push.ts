/** `strata push` / `strata image push`: docker's output lines, progress bars on a TTY only. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { ProgressLines } from '../progress.js';

export const spec = {
  usage: '[OPTIONS] NAME[:TAG]',
  description: 'Push an image or a repository to a registry',
  flags: [{ name: 'quiet', short: 'q', type: 'bool' as const, description: 'Suppress verbose output' }],
  args: { min: 1, max: 1 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const quiet = flags.quiet === true;
  const distribution = await (await cli.engine()).distribution();
  const { parseNormalizedNamed, withDefaultTag } = await import('../../engine/references.js');
  const ref = withDefaultTag(parseNormalizedNamed(args[0]!));
  if (!quiet) cli.out(`The push refers to repository [${ref.name}]\n`);
  const bars = !quiet && cli.stdout.isTTY ? new ProgressLines(cli.stdout) : undefined;
  const short = (d: string) => d.replace(/^sha256:/, '').slice(0, 12);
  const result = await distribution.push(args[0]!, {
    onProgress: bars && ((p) => bars.update(short(p.id), p.status === 'Mounted' ? `Mounted from ${p.from}` : p.status, p.bytes ?? 0, 0, p.status !== 'Pushing')),
  });
  if (quiet) {
    cli.out(`${ref.toString()}\n`);
    return 0;
  }
  if (!bars) {
    for (const l of [...result.layers].reverse()) {
      const text = l.action === 'exists' ? 'Layer already exists' : l.action === 'mounted' ? 'Mounted from another repository' : 'Pushed';
      cli.out(`${short(l.diffId)}: ${text}\n`);
    }
  }
  cli.out(`${ref.tag}: digest: ${result.digest} size: ${result.manifest.length}\n`);
  return 0;
}
