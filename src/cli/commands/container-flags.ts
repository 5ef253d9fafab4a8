/**
 * The flags `create` and `run` share (docker's names, shorthands and help), and their
 * translation into the engine's CreateOptions. Values are passed through; the engine
 * validates them with Docker's messages.
 */
import { readFile } from 'node:fs/promises';

import type { CreateOptions } from '../../engine/container-config.js';
import { parseEnvFile, resolveEnvFlags } from '../../engine/container-config.js';
import { parsePublishFlag } from '../../engine/ports.js';
import type { FlagSpec, FlagValues } from '../args.js';
import { FlagError } from '../args.js';

export const CREATE_FLAGS: FlagSpec[] = [
  { name: 'attach', short: 'a', type: 'list', value: 'list', description: 'Attach to STDIN, STDOUT or STDERR' },
  { name: 'cap-add', type: 'list', value: 'list', description: 'Add Linux capabilities' },
  { name: 'cap-drop', type: 'list', value: 'list', description: 'Drop Linux capabilities' },
  { name: 'domainname', type: 'string', value: 'string', description: 'Container NIS domain name' },
  { name: 'entrypoint', type: 'string', value: 'string', description: 'Overwrite the default ENTRYPOINT of the image' },
  { name: 'env', short: 'e', type: 'list', value: 'list', description: 'Set environment variables' },
  { name: 'env-file', type: 'list', value: 'list', description: 'Read in a file of environment variables' },
  { name: 'expose', type: 'list', value: 'list', description: 'Expose a port or a range of ports' },
  { name: 'hostname', short: 'h', type: 'string', value: 'string', description: 'Container host name' },
  { name: 'interactive', short: 'i', type: 'bool', description: 'Keep STDIN open even if not attached' },
  { name: 'label', short: 'l', type: 'list', value: 'list', description: 'Set meta data on a container' },
  { name: 'mount', type: 'list', value: 'mount', description: 'Attach a filesystem mount to the container' },
  { name: 'name', type: 'string', value: 'string', description: 'Assign a name to the container' },
  { name: 'network', type: 'string', value: 'network', description: 'Connect a container to a network (bridge, host, none)' },
  { name: 'net', type: 'string', value: 'network', description: 'Connect a container to a network (deprecated alias of --network)' },
  { name: 'privileged', type: 'bool', description: 'Give extended privileges to this container' },
  { name: 'publish', short: 'p', type: 'list', value: 'list', description: "Publish a container's port(s) to the host" },
  { name: 'read-only', type: 'bool', description: "Mount the container's root filesystem as read only" },
  { name: 'rm', type: 'bool', description: 'Automatically remove the container when it exits' },
  { name: 'stop-signal', type: 'string', value: 'string', description: 'Signal to stop a container' },
  { name: 'stop-timeout', type: 'string', value: 'int', description: 'Timeout (in seconds) to stop a container' },
  { name: 'tmpfs', type: 'list', value: 'list', description: 'Mount a tmpfs directory' },
  { name: 'tty', short: 't', type: 'bool', description: 'Allocate a pseudo-TTY' },
  { name: 'user', short: 'u', type: 'string', value: 'string', description: 'Username or UID (format: <name|uid>[:<group|gid>])' },
  { name: 'volume', short: 'v', type: 'list', value: 'list', description: 'Bind mount a volume' },
  { name: 'volumes-from', type: 'list', value: 'list', description: 'Mount volumes from the specified container(s)' },
  { name: 'workdir', short: 'w', type: 'string', value: 'string', description: 'Working directory inside the container' },
];

function keyValues(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    out[eq < 0 ? kv : kv.slice(0, eq)] = eq < 0 ? '' : kv.slice(eq + 1);
  }
  return out;
}

/** CreateOptions from `create`/`run` flags and the positional `IMAGE [COMMAND] [ARG...]`. */
export async function createOptions(flags: FlagValues, args: readonly string[]): Promise<CreateOptions> {
  const [image, ...cmd] = args;
  const list = (name: string) => (flags[name] as string[] | undefined) ?? [];
  const str = (name: string) => flags[name] as string | undefined;
  const env: string[] = [];
  for (const file of list('env-file')) env.push(...parseEnvFile(await readFile(file, 'utf8'), file));
  env.push(...resolveEnvFlags(list('env')));
  let stopTimeout: number | undefined;
  if (str('stop-timeout') !== undefined) {
    stopTimeout = Number(str('stop-timeout'));
    if (!Number.isInteger(stopTimeout)) {
      throw new FlagError(`invalid argument "${str('stop-timeout')}" for "--stop-timeout" flag: strconv.ParseInt: parsing "${str('stop-timeout')}": invalid syntax`);
    }
  }
  const attach = list('attach').map((s) => s.toLowerCase());
  const o: CreateOptions = {
    image: image!,
    cmd: cmd.length > 0 ? cmd : undefined,
    entrypoint: str('entrypoint'),
    env,
    workdir: str('workdir'),
    user: str('user'),
    hostname: str('hostname'),
    domainname: str('domainname'),
    tty: flags.tty === true,
    openStdin: flags.interactive === true,
    attachStdin: attach.includes('stdin') || flags.interactive === true,
    attachStdout: attach.length === 0 || attach.includes('stdout'),
    attachStderr: attach.length === 0 || attach.includes('stderr'),
    labels: keyValues(list('label')),
    readOnly: flags['read-only'] === true,
    network: str('network') ?? str('net'),
    publish: list('publish').flatMap((p) => parsePublishFlag(p)),
    exposedPorts: list('expose'),
    volumes: list('volume'),
    mounts: list('mount'),
    volumesFrom: list('volumes-from'),
    tmpfs: list('tmpfs'),
    autoRemove: flags.rm === true,
    stopSignal: str('stop-signal'),
    stopTimeout,
    capAdd: list('cap-add'),
    capDrop: list('cap-drop'),
    privileged: flags.privileged === true,
    cwd: process.cwd(),
  };
  const name = str('name');
  if (name !== undefined) o.name = name;
  return o;
}
