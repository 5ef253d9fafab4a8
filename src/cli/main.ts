/**
 * `strata`: global flags, then a command looked up in a static table and imported on
 * demand, so a command loads only the modules it needs (`--version` loads none of the
 * engine). Each command module exports a `spec` (usage, flags) and a `run` that parses,
 * calls the engine and renders what it returns.
 */
import { readFile } from 'node:fs/promises';

import { checkArgs, FlagError, helpText, parseArgs, type CommandSpec, type Parsed } from './args.js';
import type { Engine } from '../engine/engine.js';
import { describeError } from './output.js';
import { packageFile } from '../package-files.js';

export const PROG = 'strata';

export interface GlobalOptions {
  dataRoot?: string;
  storageDriver?: string;
}

/** What a command gets: its name, the global options, the streams and the engine. */
export interface Cli {
  /** `strata image ls`, for messages. */
  command: string;
  global: GlobalOptions;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  /** Opens the engine on first use. */
  engine(): Promise<Engine>;
  out(text: string): void;
  err(text: string): void;
}

export interface CommandModule {
  spec: Omit<CommandSpec, 'name'>;
  /** Returns the exit status (0 when undefined). */
  run(cli: Cli, parsed: Parsed): Promise<number | void>;
}

type Loader = () => Promise<CommandModule>;

const load = () => import('./commands/load.js');
const save = () => import('./commands/save.js');
const imp = () => import('./commands/import.js');
const images = () => import('./commands/images.js');
const tag = () => import('./commands/tag.js');
const rmi = () => import('./commands/rmi.js');
const history = () => import('./commands/history.js');
const inspect = () => import('./commands/inspect.js');
const prune = () => import('./commands/prune.js');
const info = () => import('./commands/info.js');
const df = () => import('./commands/df.js');
const version = () => import('./commands/version.js');
const create = () => import('./commands/create.js');
const runCmd = () => import('./commands/run.js');
const start = () => import('./commands/start.js');
const stop = () => import('./commands/stop.js');
const restart = () => import('./commands/restart.js');
const kill = () => import('./commands/kill.js');
const rm = () => import('./commands/rm.js');
const ps = () => import('./commands/ps.js');
const exec = () => import('./commands/exec.js');
const logs = () => import('./commands/logs.js');
const wait = () => import('./commands/wait.js');
const diff = () => import('./commands/diff.js');
const commit = () => import('./commands/commit.js');
const exportCmd = () => import('./commands/export.js');
const rename = () => import('./commands/rename.js');

/** One of the `volume` subcommands, which share a module. */
function volumeCommand(name: 'create' | 'ls' | 'inspect' | 'rm' | 'prune' | 'restore' | 'trash'): Loader {
  return async () => (await import('./commands/volume.js'))[name];
}

interface Entry {
  load: Loader;
  description: string;
}

const TOP: Readonly<Record<string, Entry>> = {
  build: { load: () => import('./commands/build.js'), description: 'Build an image from a Dockerfile' },
  commit: { load: commit, description: "Create a new image from a container's changes" },
  cp: { load: () => import('./commands/cp.js'), description: 'Copy files/folders between a container and the local filesystem' },
  create: { load: create, description: 'Create a new container' },
  diff: { load: diff, description: "Inspect changes to files or directories on a container's filesystem" },
  exec: { load: exec, description: 'Run a command in a running container' },
  export: { load: exportCmd, description: "Export a container's filesystem as a tar archive" },
  kill: { load: kill, description: 'Kill one or more running containers' },
  logs: { load: logs, description: 'Fetch the logs of a container' },
  login: { load: async () => (await import('./commands/login.js')).login, description: 'Log in to a registry' },
  logout: { load: async () => (await import('./commands/login.js')).logout, description: 'Log out from a registry' },
  ps: { load: ps, description: 'List containers' },
  pull: { load: () => import('./commands/pull.js'), description: 'Pull an image or a repository from a registry' },
  push: { load: () => import('./commands/push.js'), description: 'Push an image or a repository to a registry' },
  rename: { load: rename, description: 'Rename a container' },
  restart: { load: restart, description: 'Restart one or more containers' },
  rm: { load: rm, description: 'Remove one or more containers' },
  run: { load: runCmd, description: 'Run a command in a new container' },
  start: { load: start, description: 'Start one or more stopped containers' },
  stop: { load: stop, description: 'Stop one or more running containers' },
  wait: { load: wait, description: 'Block until one or more containers stop, then print their exit codes' },
  history: { load: history, description: 'Show the history of an image' },
  images: { load: images, description: 'List images' },
  import: { load: imp, description: 'Import the contents from a tarball to create a filesystem image' },
  info: { load: info, description: 'Display system-wide information' },
  inspect: { load: () => import('./commands/inspect-object.js'), description: 'Return low-level information on images' },
  load: { load, description: 'Load an image from a tar archive or STDIN' },
  rmi: { load: rmi, description: 'Remove one or more images' },
  save: { load: save, description: 'Save one or more images to a tar archive (streamed to STDOUT by default)' },
  tag: { load: tag, description: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE' },
  version: { load: version, description: 'Show the strata version information' },
};

const GROUPS: Readonly<Record<string, { description: string; commands: Readonly<Record<string, Entry>>; aliases: Readonly<Record<string, string>> }>> = {
  container: {
    description: 'Manage containers',
    commands: {
      cleanup: { load: () => import('./commands/container-cleanup.js'), description: 'Release what a stopped container held (run by its monitor)' },
      commit: TOP.commit!,
      cp: TOP.cp!,
      create: TOP.create!,
      diff: TOP.diff!,
      exec: TOP.exec!,
      export: TOP.export!,
      inspect: { load: () => import('./commands/container-inspect.js'), description: 'Display detailed information on one or more containers' },
      kill: TOP.kill!,
      logs: TOP.logs!,
      ls: TOP.ps!,
      prune: { load: () => import('./commands/container-prune.js'), description: 'Remove all stopped containers' },
      rename: TOP.rename!,
      restart: TOP.restart!,
      rm: TOP.rm!,
      run: TOP.run!,
      start: TOP.start!,
      stop: TOP.stop!,
      wait: TOP.wait!,
    },
    aliases: { list: 'ls', ps: 'ls', remove: 'rm' },
  },
  image: {
    description: 'Manage images',
    commands: {
      build: TOP.build!,
      history: TOP.history!,
      import: TOP.import!,
      inspect: { load: inspect, description: 'Display detailed information on one or more images' },
      load: TOP.load!,
      ls: { load: images, description: 'List images' },
      prune: { load: prune, description: 'Remove unused images' },
      pull: TOP.pull!,
      push: TOP.push!,
      rm: { load: rmi, description: 'Remove one or more images' },
      save: TOP.save!,
      tag: TOP.tag!,
    },
    aliases: { list: 'ls', remove: 'rm' },
  },
  volume: {
    description: 'Manage volumes',
    commands: {
      create: { load: volumeCommand('create'), description: 'Create a volume' },
      inspect: { load: volumeCommand('inspect'), description: 'Display detailed information on one or more volumes' },
      ls: { load: volumeCommand('ls'), description: 'List volumes' },
      prune: { load: volumeCommand('prune'), description: 'Remove unused local volumes' },
      restore: { load: volumeCommand('restore'), description: 'Restore removed volumes from the trash' },
      rm: { load: volumeCommand('rm'), description: 'Remove one or more volumes' },
      trash: { load: volumeCommand('trash'), description: 'List removed volumes that can still be restored' },
    },
    aliases: { list: 'ls', remove: 'rm' },
  },
  system: {
    description: 'Manage strata',
    commands: {
      df: { load: df, description: 'Show strata disk usage' },
      info: TOP.info!,
    },
    aliases: {},
  },
};

function listing(commands: Readonly<Record<string, { description: string }>>): string {
  const width = Math.max(...Object.keys(commands).map((k) => k.length)) + 3;
  return Object.entries(commands).map(([k, v]) => `  ${k.padEnd(width)}${v.description}`).join('\n');
}

function mainHelp(): string {
  return `\nUsage:  ${PROG} [OPTIONS] COMMAND\n\nA daemonless, Docker-compatible container storage engine\n\n` +
    `Options:\n` +
    `      --data-root string       Root directory of persistent data (default "/var/lib/strata", env STRATA_ROOT)\n` +
    `  -s, --storage-driver string  Storage driver to use (overlay2, vfs)\n` +
    `  -h, --help                   Print usage\n` +
    `  -v, --version                Print version information and quit\n\n` +
    `Management Commands:\n${listing(GROUPS)}\n\nCommands:\n${listing(TOP)}\n\n` +
    `Run '${PROG} COMMAND --help' for more information on a command.\n`;
}

function groupHelp(name: string): string {
  const g = GROUPS[name]!;
  return `\nUsage:  ${PROG} ${name} COMMAND\n\n${g.description}\n\nCommands:\n${listing(g.commands)}\n\n` +
    `Run '${PROG} ${name} COMMAND --help' for more information on a command.\n`;
}

/** strata's version from package.json (without loading the engine). */
export async function readVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(packageFile('package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** Parses the global flags (they come before the command, as docker's). */
function parseGlobal(argv: readonly string[]): { global: GlobalOptions; rest: string[]; help: boolean; version: boolean } {
  const global: GlobalOptions = {};
  let help = false;
  let version = false;
  let i = 0;
  const value = (flag: string, inline: string | undefined): string => {
    if (inline !== undefined) return inline;
    if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: ${flag}`);
    return argv[++i]!;
  };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-') || a === '-') break;
    if (a === '--') {
      i++;
      break;
    }
    const eq = a.indexOf('=');
    const name = eq >= 0 ? a.slice(0, eq) : a;
    const inline = eq >= 0 ? a.slice(eq + 1) : undefined;
    if (name === '--data-root') global.dataRoot = value('--data-root', inline);
    else if (name === '--storage-driver') global.storageDriver = value('--storage-driver', inline);
    else if (name === '-s') global.storageDriver = value("'s' in -s", inline);
    else if (/^-s./.test(a)) global.storageDriver = a.slice(2);
    else if (name === '-h' || name === '--help') help = true;
    else if (name === '-v' || name === '--version') version = true;
    else if (name.startsWith('--')) throw new FlagError(`unknown flag: ${name}`);
    else throw new FlagError(`unknown shorthand flag: '${a[1]}' in ${a}`);
  }
  return { global, rest: argv.slice(i), help, version };
}

function makeCli(command: string, global: GlobalOptions): Cli {
  let engine: Promise<Engine> | undefined;
  return {
    command,
    global,
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    engine() {
      engine ??= import('../engine/engine.js').then(({ Engine }) =>
        Engine.open({ dataRoot: global.dataRoot, storageDriver: global.storageDriver }));
      return engine;
    },
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
  };
}

/** Runs the CLI; resolves to the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  // A closed pipe (`strata images | head -1`) is not an error worth a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  let command = PROG;
  try {
    const g = parseGlobal(argv);
    if (g.version) {
      process.stdout.write(`${PROG} version ${await readVersion()}\n`);
      return 0;
    }
    const [first, ...rest] = g.rest;
    if (g.help || first === undefined || first === 'help') {
      process.stdout.write(mainHelp());
      return 0;
    }
    let entry: Entry | undefined;
    let args = rest;
    command = `${PROG} ${first}`;
    const group = GROUPS[first];
    if (group) {
      const [sub, ...subArgs] = rest;
      if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
        process.stdout.write(groupHelp(first));
        return 0;
      }
      const name = group.aliases[sub] ?? sub;
      entry = group.commands[name];
      if (!entry) {
        process.stderr.write(`${PROG}: '${first} ${sub}' is not a ${PROG} command.\nSee '${PROG} ${first} --help'\n`);
        return 1;
      }
      command = `${PROG} ${first} ${sub}`;
      args = subArgs;
    } else {
      entry = TOP[first];
      if (!entry) {
        process.stderr.write(`${PROG}: '${first}' is not a ${PROG} command.\nSee '${PROG} --help'\n`);
        return 1;
      }
    }
    const mod = await entry.load();
    const spec: CommandSpec = { ...mod.spec, name: command };
    const parsed = parseArgs(spec, args);
    if (parsed.help) {
      process.stdout.write(helpText(spec));
      return 0;
    }
    checkArgs(spec, parsed.args);
    return (await mod.run(makeCli(command, g.global), parsed)) ?? 0;
  } catch (err) {
    const { text, code } = describeError(err, command);
    process.stderr.write(`${text}\n`);
    if (process.env.STRATA_DEBUG === '1' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return code;
  }
}
