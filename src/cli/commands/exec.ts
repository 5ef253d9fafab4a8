/** `strata exec` / `strata container exec`: exits with the process's status. */
import { StrataError } from '../../errors.js';
import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { resolveEnvFlags } from '../../engine/container-config.js';

export const spec = {
  usage: '[OPTIONS] CONTAINER COMMAND [ARG...]',
  description: 'Run a command in a running container',
  flags: [
    { name: 'detach', short: 'd', type: 'bool' as const, description: 'Detached mode: run command in the background' },
    { name: 'env', short: 'e', type: 'list' as const, value: 'list', description: 'Set environment variables' },
    { name: 'interactive', short: 'i', type: 'bool' as const, description: 'Keep STDIN open even if not attached' },
    { name: 'tty', short: 't', type: 'bool' as const, description: 'Allocate a pseudo-TTY' },
    { name: 'user', short: 'u', type: 'string' as const, value: 'string', description: 'Username or UID (format: <name|uid>[:<group|gid>])' },
    { name: 'workdir', short: 'w', type: 'string' as const, value: 'string', description: 'Working directory inside the container' },
  ],
  args: { min: 2 },
  interspersed: false,
};

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const [ref, ...cmd] = args;
  const containers = await (await cli.engine()).containers();
  try {
    return await containers.exec(ref!, {
      cmd,
      tty: flags.tty === true,
      interactive: flags.interactive === true,
      user: flags.user as string | undefined,
      workdir: flags.workdir as string | undefined,
      env: resolveEnvFlags((flags.env as string[]) ?? []),
      detach: flags.detach === true,
    });
  } catch (err) {
    if (err instanceof StrataError && err.message.startsWith('OCI runtime exec failed')) {
      cli.err(`${err.message}\n`);
      const { startFailureExitCode } = await import('../../engine/containers.js');
      return startFailureExitCode(err.message.replace('exec failed', 'create failed'));
    }
    throw err;
  }
}
