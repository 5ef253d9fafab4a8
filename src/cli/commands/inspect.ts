/** `strata image inspect`. */
import { goJson } from '../../engine/api-types.js';
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { Parsed } from '../args.js';
import { parseFormat, resolveJsonFormat } from '../format.js';
import type { Cli } from '../main.js';
import type { Engine } from '../../engine/engine.js';
import { describeError } from '../output.js';

export const spec = {
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  description: 'Display detailed information on one or more images',
  flags: [
    { name: 'format', short: 'f', type: 'string' as const, value: 'string', description: 'Format the output using the given Go template' },
  ],
  args: { min: 1 },
};

export type InspectKind = 'image' | 'container' | 'volume' | 'object';

async function lookup(engine: Engine, kind: Exclude<InspectKind, 'object'>, name: string, size: boolean): Promise<unknown> {
  if (kind === 'image') return engine.inspect(name);
  if (kind === 'container') return (await engine.containers()).inspect(name, { size });
  return (await engine.volumes()).inspect(name);
}

/**
 * Shared by `image inspect`, `container inspect`, `volume inspect` and `inspect`: prints what
 * was found (an indented JSON array, or one template result per line) and then the errors,
 * as docker does. `object` tries containers, then images, then volumes, as `docker inspect`
 * does, and words a miss "No such object".
 */
export async function inspectObjects(
  cli: Cli, names: readonly string[], format: string | undefined, kind: InspectKind, size = false,
): Promise<number> {
  const template = format ? parseFormat(resolveJsonFormat(format)).template : undefined;
  const engine = await cli.engine();
  const found: unknown[] = [];
  const errors: string[] = [];
  const kinds: Array<Exclude<InspectKind, 'object'>> = kind === 'object' ? ['container', 'image', 'volume'] : [kind];
  for (const name of names) {
    try {
      let value: unknown;
      let hit = false;
      for (const k of kinds) {
        try {
          value = await lookup(engine, k, name, size);
          hit = true;
          break;
        } catch (err) {
          if (!(err instanceof NotFoundError) || k === kinds.at(-1)) throw err;
        }
      }
      if (hit) found.push(value);
    } catch (err) {
      if (err instanceof NotFoundError) errors.push(`Error: No such ${kind}: ${name}`);
      else if (err instanceof InvalidArgumentError && kind === 'image') errors.push(`Error response from daemon: no such image: ${name}: ${err.message}`);
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
  return inspectObjects(cli, args, (flags.format as string | undefined) || undefined, 'image');
}
