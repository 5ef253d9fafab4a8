/**
 * A thin wrapper over the `runc` binary (Debian's 1.1). Every call passes `--root`, so the
 * containers' runtime state lives under the caller's data root (e.g. `<data-root>/runtime/runc`)
 * and never mixes with Docker's or another tool's runc state in /run/runc.
 *
 * runc reports errors as logrus records; with `--log-format json` they are JSON lines on
 * stderr (or in the `--log` file when the caller's stderr belongs to the container), which
 * is how failures are told apart from the container process's own output and mapped to
 * strata's error classes.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as osConstants, tmpdir } from 'node:os';
import path from 'node:path';

import { readFile, rm, writeFile } from '../sys/meta-fs.js';
import { AlreadyExistsError, ConflictError, NotFoundError, StrataError, isErrno } from '../errors.js';
import type { OciProcess } from './spec.js';

export type RuncStatus = 'creating' | 'created' | 'running' | 'pausing' | 'paused' | 'stopped';

/** `runc state` output. */
export interface RuncState {
  ociVersion: string;
  id: string;
  pid: number;
  status: RuncStatus;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
}

export interface RuncOptions {
  /** runc's state directory (`--root`). */
  root: string;
  /** Path or name of the runc binary (default `runc`, looked up in PATH). */
  binary?: string;
  /** Where exec process specs and per-call logs are staged (default the OS temp dir). */
  tmpDir?: string;
}

export interface CreateOptions {
  pidFile?: string;
  /** Unix socket that receives the pty master (spec with `terminal: true`). */
  consoleSocket?: string;
  /** The container's stdio: runc hands its own stdin/stdout/stderr to the container process. */
  stdio?: StdioOptions;
}

export interface ExecOptions {
  /**
   * Overrides the spec's `terminal`. In the foreground (no `detach`, no `consoleSocket`)
   * runc allocates the pty itself and bridges it to the stdio it was given, which must then
   * be the caller's controlling terminal (`exec -it` from a shell).
   */
  tty?: boolean;
  /** Return once the process started, without waiting (`runc exec --detach`). */
  detach?: boolean;
  pidFile?: string;
  consoleSocket?: string;
  stdio?: StdioOptions;
  /** Called with the runc child right after spawning, e.g. to pipe stdin into it. */
  onSpawn?: (child: ChildProcess) => void;
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The `msg` of every error record runc logged (JSON lines), or the raw text if it was not JSON. */
export function runcErrorMessages(text: string): string[] {
  const messages: string[] = [];
  let sawJson = false;
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    if (t.startsWith('{')) {
      try {
        const rec = JSON.parse(t) as { level?: string; msg?: string };
        sawJson = true;
        if ((rec.level === 'error' || rec.level === 'fatal') && rec.msg) messages.push(rec.msg);
        continue;
      } catch {
        // fall through: not a log record
      }
    }
    // runc also prints a fatal error as a plain line after the record; keep it only when
    // there was no structured record to take it from.
    if (!sawJson) messages.push(t);
  }
  return [...new Set(messages)];
}

/**
 * Maps a runc failure message to one of strata's error classes, so callers can branch on
 * "no such container" or "not running" without parsing runc's text themselves.
 */
export function runcError(command: string, id: string | undefined, message: string): StrataError {
  const text = message || `runc ${command} failed`;
  if (/container does not exist|container .* does not exist/.test(text)) {
    return new NotFoundError(`No such container: ${id ?? ''}`.trim(), { cause: new Error(text) });
  }
  if (/container with id exists|already exists/.test(text)) {
    return new AlreadyExistsError(`container ${id ?? ''} already exists in the runtime`, { cause: new Error(text) });
  }
  if (/container not running|cannot kill a stopped|cannot exec in a stopped|process already finished|is not running|container is stopped/.test(text)) {
    return new ConflictError(`Container ${id ?? ''} is not running`, { cause: new Error(text) });
  }
  return new StrataError('ERR_SYSTEM', `runc ${command} failed: ${text}`);
}

/**
 * Docker's exit code for a process that could not be started, from the runtime's message:
 * for `run`/`start`, 127 when the command was not found and 126 when it exists but cannot be
 * executed; for `exec`, dockerd 20.10 answers 126 for every start failure. Anything that is
 * not about the command itself is an engine error, 125.
 */
export function startFailureExitCode(message: string, kind: 'run' | 'exec' = 'run'): number {
  const execProblem = /exec: "[^"]*": (.*)$/m.exec(message)?.[1];
  if (kind === 'exec') return 126;
  if (execProblem !== undefined) {
    if (/executable file not found|no such file or directory/.test(execProblem)) return 127;
    return 126;
  }
  return 125;
}

export class Runc {
  readonly root: string;
  readonly binary: string;
  readonly tmpDir: string;

  constructor(options: RuncOptions) {
    this.root = path.resolve(options.root);
    this.binary = options.binary ?? 'runc';
    this.tmpDir = options.tmpDir ?? tmpdir();
  }

  /** Global flags in front of every command. */
  globalArgs(logFile?: string): string[] {
    const args = ['--root', this.root, '--log-format', 'json'];
    if (logFile) args.push('--log', logFile);
    return args;
  }

  /**
   * Spawns `runc run` in the foreground: runc stays the parent of the container's init,
   * forwards signals to it, reaps it and exits with its status (128+n for signal n), then
   * deletes the container's runtime state. The monitor uses this (see monitor-main.ts).
   * Errors are logged to `logFile` because the child's stderr belongs to the container.
   */
  spawnRun(id: string, bundle: string, options: { pidFile: string; logFile: string; stdio: StdioOptions }): ChildProcess {
    return spawn(this.binary, [...this.globalArgs(options.logFile), 'run', '--bundle', bundle, '--pid-file', options.pidFile, id], {
      stdio: options.stdio,
    });
  }

  /** `runc create`: sets the container up, its init waits for `start`. */
  async create(id: string, bundle: string, options: CreateOptions = {}): Promise<void> {
    const args = ['create', '--bundle', bundle];
    if (options.pidFile) args.push('--pid-file', options.pidFile);
    if (options.consoleSocket) args.push('--console-socket', options.consoleSocket);
    args.push(id);
    await this.#runWithStdio('create', id, args, options.stdio);
  }

  async start(id: string): Promise<void> {
    await this.#capture('start', id, ['start', id]);
  }

  /** `runc state`; NotFoundError when runc has no such container. */
  async state(id: string): Promise<RuncState> {
    const r = await this.#capture('state', id, ['state', id]);
    return JSON.parse(r.stdout) as RuncState;
  }

  /** Like state, but undefined instead of NotFoundError. */
  async tryState(id: string): Promise<RuncState | undefined> {
    try {
      return await this.state(id);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /** `runc kill`; `all` signals every process of the container's cgroup, not just init. */
  async kill(id: string, signal: NodeJS.Signals | number = 'SIGTERM', options: { all?: boolean } = {}): Promise<void> {
    const args = ['kill'];
    if (options.all) args.push('--all');
    args.push(id, typeof signal === 'number' ? String(signal) : signal.replace(/^SIG/, ''));
    await this.#capture('kill', id, args);
  }

  /** `runc delete`; with `force` a running container is killed first. */
  async delete(id: string, options: { force?: boolean } = {}): Promise<void> {
    await this.#capture('delete', id, options.force ? ['delete', '--force', id] : ['delete', id]);
  }

  async list(): Promise<RuncState[]> {
    const r = await this.#capture('list', undefined, ['list', '--format', 'json']);
    const parsed = JSON.parse(r.stdout || 'null') as RuncState[] | null;
    return parsed ?? [];
  }

  /** Whether runc has state for `id`, from its state directory alone (no process spawned). */
  async hasState(id: string): Promise<boolean> {
    try {
      await readFile(path.join(this.root, id, 'state.json'));
      return true;
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
      throw err;
    }
  }

  /**
   * `runc exec` of `proc` in a running container. Waits for the process and returns its
   * exit status (128+n when killed by signal n), or with `detach`, 0 once it started. A
   * process that could not be started throws StrataError whose message is Docker's
   * (`OCI runtime exec failed: ...`); `startFailureExitCode(err.message, 'exec')` gives the
   * code the CLI exits with. runc also prints that failure on the stderr it was given.
   */
  async exec(id: string, proc: OciProcess, options: ExecOptions = {}): Promise<number> {
    const tag = randomBytes(8).toString('hex');
    const processFile = path.join(this.tmpDir, `strata-exec-${tag}.json`);
    const logFile = path.join(this.tmpDir, `strata-exec-${tag}.log`);
    const spec = options.tty === undefined ? proc : { ...proc, terminal: options.tty };
    await writeFile(processFile, JSON.stringify(spec), { mode: 0o600 });
    try {
      const args = [...this.globalArgs(logFile), 'exec', '--process', processFile];
      if (options.detach) args.push('--detach');
      if (options.pidFile) args.push('--pid-file', options.pidFile);
      if (options.consoleSocket) args.push('--console-socket', options.consoleSocket);
      args.push(id);
      const child = spawn(this.binary, args, { stdio: options.stdio ?? 'inherit' });
      options.onSpawn?.(child);
      const { code, signal } = await waitChild(child);
      const errors = runcErrorMessages(await readFile(logFile, 'utf8').catch(() => ''));
      if (errors.length > 0) {
        const message = errors.join('; ');
        const mapped = runcError('exec', id, message);
        if (mapped.code !== 'ERR_SYSTEM') throw mapped;
        throw new StrataError('ERR_SYSTEM', `OCI runtime exec failed: ${message}: unknown`);
      }
      if (signal) return 128 + (signalNumber(signal) ?? 9);
      return code ?? 255;
    } finally {
      await rm(processFile, { force: true });
      await rm(logFile, { force: true });
    }
  }

  async #runWithStdio(command: string, id: string, args: string[], stdio: StdioOptions | undefined): Promise<void> {
    if (stdio === undefined) {
      await this.#capture(command, id, args);
      return;
    }
    const logFile = path.join(this.tmpDir, `strata-${command}-${randomBytes(8).toString('hex')}.log`);
    try {
      const child = spawn(this.binary, [...this.globalArgs(logFile), ...args], { stdio });
      const { code, signal } = await waitChild(child);
      if (code !== 0) {
        const message = runcErrorMessages(await readFile(logFile, 'utf8').catch(() => '')).join('; ');
        throw runcError(command, id, message || `exit ${code ?? signal}`);
      }
    } finally {
      await rm(logFile, { force: true });
    }
  }

  async #capture(command: string, id: string | undefined, args: string[]): Promise<RunResult> {
    const child = spawn(this.binary, [...this.globalArgs(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => errOut.push(b));
    const { code, signal } = await waitChild(child);
    const result: RunResult = {
      code,
      signal,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(errOut).toString('utf8'),
    };
    if (code !== 0) {
      const message = runcErrorMessages(result.stderr).join('; ');
      throw runcError(command, id, message || `exit ${code ?? signal}`);
    }
    return result;
  }
}

/** Waits for a child to exit and for its stdio to close; a spawn failure (ENOENT) rejects. */
export function waitChild(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    child.once('error', (err) => {
      if (isErrno(err, 'ENOENT')) {
        reject(new StrataError('ERR_SYSTEM', `runc not found (${child.spawnfile}); install Debian's runc package (scripts/setup.sh)`, { cause: err }));
      } else {
        reject(err);
      }
    });
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
}

/** Signal number for a name (`SIGTERM` or `TERM`), from Node's table of this platform's signals. */
export function signalNumber(signal: string): number | undefined {
  const name = (signal.startsWith('SIG') ? signal : `SIG${signal}`) as keyof typeof osConstants.signals;
  return osConstants.signals[name];
}
