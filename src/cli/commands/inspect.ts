/** `strata image inspect`. */
import { goJson } from '../../engine/api-types.js';
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { Parsed } from '../args.js';
import { parseFormat, resolveJsonFormat } from '../format.js';
import type { Cli } from '../main.js';
import { describeError } from '../output.js';

export const spec = {
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  description: 'Display detailed information on one or more images',
  flags: [
    { name: 'format', short: 'f', type: 'string' as const, value: 'string', description: 'Format the output using the given Go template' },
  ],
  args: { min: 1 },
};

/**
 * Shared by `image inspect` and `inspect`: prints what was found (an indented JSON array, or
 * one template result per line) and then the errors, as docker does. `object` words missing
 * names as `docker inspect` does ("No such object").
 */
export async function inspectImages(cli: Cli, names: readonly string[], format: string | undefined, object: boolean): Promise<number> {
  const template = format ? parseFormat(resolveJsonFormat(format)).template : undefined;
  const engine = await cli.engine();
  const found: unknown[] = [];
  const errors: string[] = [];
  for (const name of names) {
    try {
      found.push(await engine.inspect(name));
    } catch (err) {
      if (err instanceof NotFoundError) errors.push(`Error: No such ${object ? 'object' : 'image'}: ${name}`);
      else if (err instanceof InvalidArgumentError) errors.push(`Error response from daemon: no such image: ${name}: ${err.message}`);
      else errors.push(describeError(err, cli.command).text);
    }
  }
  if (template) cli.out(found.map((v) => `${template.execute(v)}\n`).join(''));
  else cli.out(found.length === 0 ? '[]\n' : `${goJson(found, { indent: '    ' })}\n`);
  if (errors.length === 0) return 0;
  cli.err(`${errors.join('\n')}\n`);
  return 1;
}

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  return inspectImages(cli, args, (flags.format as string | undefined) || undefined, false);
}
