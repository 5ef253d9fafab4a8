/** What the container commands share: docker's ways of reporting per-container failures. */
import { NotFoundError, StrataError } from '../../errors.js';
import type { Cli } from '../main.js';
import { describeError } from '../output.js';

/**
 * `create`/`run` report daemon errors as `docker: Error response from daemon: …` with exit
 * status 125, after docker's note on a missing image.
 */
export function daemonError(cli: Cli, err: StrataError, image: string): number {
  if (err instanceof NotFoundError && err.message.startsWith('No such image')) {
    cli.err(`Unable to find image '${image.includes(':') || image.includes('@') ? image : `${image}:latest`}' locally\n`);
  }
  cli.err(`strata: Error response from daemon: ${err.message}.\nSee 'strata run --help'.\n`);
  return 125;
}

/**
 * Runs `fn` for each name (container, volume), printing it as given on success (docker's
 * stop/start/rm/kill/restart output) and collecting the errors; exit status 1 if any failed.
 */
export async function forEachName(cli: Cli, refs: readonly string[], fn: (ref: string) => Promise<void>, echo = true): Promise<number> {
  const errors: string[] = [];
  for (const ref of refs) {
    try {
      await fn(ref);
      if (echo) cli.out(`${ref}\n`);
    } catch (err) {
      errors.push(describeError(err, cli.command).text);
    }
  }
  if (errors.length === 0) return 0;
  cli.err(`${errors.join('\n')}\n`);
  return 1;
}
