/** `strata build` / `strata image build`: the classic builder's flags and output. */
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { humanSize } from '../units.js';

export const spec = {
  usage: '[OPTIONS] PATH | -',
  description: 'Build an image from a Dockerfile',
  flags: [
    { name: 'build-arg', type: 'list' as const, value: 'list', description: 'Set build-time variables' },
    { name: 'file', short: 'f', type: 'string' as const, value: 'string', description: "Name of the Dockerfile (Default is 'PATH/Dockerfile')" },
    { name: 'label', type: 'list' as const, value: 'list', description: 'Set metadata for an image' },
    { name: 'no-cache', type: 'bool' as const, description: 'Do not use cache when building the image' },
    { name: 'quiet', short: 'q', type: 'bool' as const, description: 'Suppress the build output and print image ID on success' },
    { name: 'rm', type: 'bool' as const, default: true, description: 'Remove intermediate containers after a successful build' },
    { name: 'tag', short: 't', type: 'list' as const, value: 'list', description: "Name and optionally a tag in the 'name:tag' format" },
    { name: 'target', type: 'string' as const, value: 'string', description: 'Set the target build stage to build.' },
  ],
  args: { min: 1, max: 1 },
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const buildArgs: Record<string, string | null> = {};
  for (const kv of flags['build-arg'] as string[]) {
    const eq = kv.indexOf('=');
    if (eq < 0) buildArgs[kv] = process.env[kv] ?? null;
    else buildArgs[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const labels: Record<string, string> = {};
  for (const kv of flags.label as string[]) {
    const eq = kv.indexOf('=');
    labels[eq < 0 ? kv : kv.slice(0, eq)] = eq < 0 ? '' : kv.slice(eq + 1);
  }
  const quiet = flags.quiet === true;
  const out = (text: string) => {
    if (!quiet) cli.out(text);
  };
  const engine = await cli.engine();
  const context = args[0] === '-' ? cli.stdin : args[0]!;
  const result = await engine.build({
    context,
    dockerfile: flags.file as string | undefined,
    cwd: process.cwd(),
    options: {
      tags: flags.tag as string[],
      buildArgs,
      labels,
      noCache: flags['no-cache'] === true,
      rm: flags.rm !== false,
      ...(flags.target ? { target: flags.target as string } : {}),
    },
    onContext: (bytes) => out(`Sending build context to Docker daemon  ${humanSize(bytes)}\n`),
    hooks: {
      stdout: out,
      stderr: (text) => cli.err(text),
      runOutput: (chunk) => out(chunk.toString('utf8')),
    },
  });
  if (quiet) cli.out(`${result.imageId}\n`);
  return 0;
}
