/** `strata run` / `strata container run`: create, start, and (unless -d) wait for the exit. */
import { StrataError } from '../../errors.js';
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { CREATE_FLAGS, createOptions } from './container-flags.js';
import { daemonError } from './container-common.js';

export const spec = {
  usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
  description: 'Run a command in a new container',
  flags: [
    ...CREATE_FLAGS,
    { name: 'detach', short: 'd', type: 'bool' as const, description: 'Run container in background and print container ID' },
    { name: 'sig-proxy', type: 'bool' as const, default: true, description: 'Proxy received signals to the process' },
  ],
  args: { min: 1 },
  interspersed: false,
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const options = await createOptions(flags, args);
  const detach = flags.detach === true;
  const containers = await (await cli.engine()).containers();
  let id: string;
  try {
    id = (await containers.create(options)).Id;
  } catch (err) {
    if (err instanceof StrataError) return daemonError(cli, err, options.image);
    throw err;
  }
  try {
    if (detach) {
      await containers.start(id, { stdin: options.openStdin ? 'open' : 'ignore' });
      cli.out(`${id}\n`);
      return 0;
    }
    // runc forwards the terminal's signals to the container (docker's sig-proxy); we stay
    // alive to report its exit.
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    process.on('SIGTERM', ignore);
    try {
      const started = await containers.start(id, { attach: true, stdin: options.openStdin ? 'inherit' : 'ignore' });
      return await started.wait!();
    } finally {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', ignore);
    }
  } catch (err) {
    if (options.autoRemove) await containers.remove(id, { force: true, volumes: true }).catch(() => undefined);
    if (err instanceof StrataError) {
      cli.err(`strata: Error response from daemon: ${err.message}.\n`);
      const { startFailureExitCode } = await import('../../engine/containers.js');
      return startFailureExitCode(err.message);
    }
    throw err;
  }
}
