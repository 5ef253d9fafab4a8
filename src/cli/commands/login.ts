/** `strata login` / `strata logout`. */
import type { Parsed } from '../args.js';
import { FlagError } from '../args.js';
import type { Cli } from '../main.js';

async function readStdin(cli: Cli): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of cli.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export const login = {
  spec: {
    usage: '[OPTIONS] [SERVER]',
    description: 'Log in to a registry',
    flags: [
      { name: 'password', short: 'p', type: 'string' as const, value: 'string', description: 'Password' },
      { name: 'password-stdin', type: 'bool' as const, description: 'Take the password from stdin' },
      { name: 'username', short: 'u', type: 'string' as const, value: 'string', description: 'Username' },
    ],
    args: { max: 1 },
  },
  async run(cli: Cli, { flags, args }: Parsed): Promise<number> {
    let password = flags.password as string | undefined;
    if (flags['password-stdin'] === true) {
      if (password !== undefined) throw new FlagError('--password and --password-stdin are mutually exclusive');
      if (flags.username === undefined) throw new FlagError('Must provide --username with --password-stdin');
      password = await readStdin(cli);
    } else if (password !== undefined) {
      cli.err('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
    }
    if (flags.username === undefined || password === undefined) throw new FlagError('Must provide --username and --password (no interactive prompt)');
    const distribution = await (await cli.engine()).distribution();
    await distribution.login(args[0], flags.username as string, password);
    const { credentialsFile } = await import('../../engine/distribution.js');
    cli.err(`WARNING! Your password will be stored unencrypted in ${credentialsFile()}.\n`);
    cli.out('Login Succeeded\n');
    return 0;
  },
};

export const logout = {
  spec: { usage: '[SERVER]', description: 'Log out from a registry', flags: [], args: { max: 1 } },
  async run(cli: Cli, { args }: Parsed): Promise<number> {
    const distribution = await (await cli.engine()).distribution();
    const { domain, removed } = await distribution.logout(args[0]);
    cli.out(removed ? `Removing login credentials for ${domain}\n` : `Not logged in to ${domain}\n`);
    return 0;
  },
};
