/**
 * The caller's side of the container monitor (monitor-main.ts is the monitor itself).
 *
 * Design. strata has no daemon, so each running container gets a small detached Node
 * process, the monitor, that outlives the CLI: it runs `runc run` in the foreground (runc is
 * then the container init's parent and reports its exit status; Node cannot become a child
 * subreaper or reap processes it did not spawn, so `runc create`/`start` would orphan the
 * init), copies the container's stdout/stderr (real pipes, so /dev/stdout can be reopened
 * inside) into the json-file log, records the exit in runtime-state.json and removes runc's
 * state.
 *
 * Handshake. The monitor is spawned with a socketpair on fd 3, its control channel; the
 * caller sends one JSON line (the start request) and gets back `started` (with the pid) or
 * `error` (runc's message, Docker's wording and exit code), then `exited` if it is still
 * connected. The monitor can be spawned before the request is ready (`Monitor.spawn`), so
 * Node's ~50 ms start-up overlaps the caller's own work (mounting the rootfs, writing the
 * spec) instead of adding to it. Closing the channel detaches: the monitor carries on alone.
 *
 * Attach (`run` without -d). The monitor is given the caller's own stdout/stderr as its fd 1
 * and 2 and, while the control channel is open, writes each chunk of container output there
 * as well as to the log: output reaches the terminal byte for byte (no JSON round trip),
 * `exited` is sent only after the last byte was written, and a killed CLI simply stops the
 * forwarding (the channel closes) while the container and its log carry on. With `-i` the
 * caller's stdin is handed over the same way and the monitor passes it to runc, so the
 * container reads the caller's stdin directly and sees its EOF. Later re-attaching
 * (`start -a`, `logs -f`) reads the log with `readLog(..., { follow: true })`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';

import { StrataError } from '../errors.js';
import { packageFile } from '../package-files.js';
import { Runc } from './runc.js';

/** What the caller sends on the control channel. */
export interface MonitorRequest {
  id: string;
  /** Directory holding config.json; the monitor also keeps `init.pid` and runc's `log.json` there. */
  bundle: string;
  /** Docker's `containers/<id>/`: log, runtime-state.json, monitor.lock. */
  containerDir: string;
  /** runc's `--root`. */
  runtimeRoot: string;
  runcBinary?: string;
  /** argv run by a detached monitor after the container exited (the engine's clean-up). */
  onExit?: string[];
  /** The spec has `process.terminal`: runc hands the pty master over a console socket. */
  terminal?: boolean;
}

/** What the monitor answers, one JSON object per line. */
export type MonitorMessage =
  | { type: 'started'; pid: number; startedAt: string; runcPid: number }
  | { type: 'error'; message: string; exitCode: number }
  | { type: 'exited'; exitCode: number; finishedAt: string };

export interface SpawnMonitorOptions {
  /** Forward container output to this process's stdout/stderr while connected. */
  attach?: boolean;
  /**
   * The container's stdin: `ignore` (/dev/null, the default, like Docker without -i),
   * `inherit` (this process's fd 0, for an attached -i), or `open` (a pipe that stays open
   * and silent, for -di: reads block instead of seeing EOF).
   */
  stdin?: 'ignore' | 'inherit' | 'open';
}

/** Arguments the monitor reads from its argv (everything else comes over the channel). */
export interface MonitorArgs {
  attach: boolean;
  stdin: 'ignore' | 'inherit' | 'open';
}

export interface StartedContainer {
  /** Host pid of the container's init. */
  pid: number;
  startedAt: string;
  monitorPid: number;
}

export interface ExitInfo {
  exitCode: number;
  finishedAt: string;
}

const MONITOR_MAIN = packageFile('dist/src/runtime/monitor-main.js');

/**
 * One monitor lives as long as its container, so its footprint counts once per running
 * container: one V8 worker instead of one per core is plenty for a process that mostly waits.
 */
const MONITOR_NODE_FLAGS = ['--v8-pool-size=1'];

export class Monitor {
  readonly child: ChildProcess;
  readonly #control: Socket;
  readonly #messages: MonitorMessage[] = [];
  #waiters: Array<() => void> = [];
  #closed = false;
  #buffer = '';
  #requested = false;
  #timer: NodeJS.Timeout | undefined;

  private constructor(child: ChildProcess) {
    this.child = child;
    this.#control = child.stdio[3] as Socket;
    this.#control.setEncoding('utf8');
    this.#control.on('data', (text: string) => {
      this.#buffer += text;
      let nl: number;
      while ((nl = this.#buffer.indexOf('\n')) >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        try {
          this.#messages.push(JSON.parse(line) as MonitorMessage);
        } catch {
          // Not ours: ignore rather than fail the container over a stray line.
        }
      }
      this.#wake();
    });
    const onClose = () => {
      this.#closed = true;
      this.#wake();
    };
    this.#control.on('close', onClose);
    this.#control.on('error', onClose);
    child.on('error', onClose);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /**
   * Starts the monitor process now; it waits for `start`. Cheap to call early: the returned
   * object does nothing until `start`, and `detach` or `dispose` releases it.
   */
  static spawn(options: SpawnMonitorOptions = {}): Monitor {
    const args: MonitorArgs = { attach: options.attach ?? false, stdin: options.stdin ?? 'ignore' };
    const child = spawn(process.execPath, [...MONITOR_NODE_FLAGS, MONITOR_MAIN, JSON.stringify(args)], {
      // Own session: the terminal's ^C and a hangup reach the CLI, not the monitor.
      detached: true,
      stdio: [args.stdin === 'inherit' ? 0 : 'ignore', args.attach ? 1 : 'ignore', args.attach ? 2 : 'ignore', 'pipe'],
    });
    return new Monitor(child);
  }

  /**
   * Sends the request and waits until the container runs. Rejects with runc's error in
   * Docker's words (`OCI runtime create failed: ...`, exit code via `startFailureExitCode`)
   * or, after `timeoutMs`, kills the monitor, removes what runc created and rejects.
   */
  async start(request: MonitorRequest, options: { timeoutMs?: number } = {}): Promise<StartedContainer> {
    if (this.#requested) throw new StrataError('ERR_CONFLICT', 'monitor already started');
    this.#requested = true;
    this.#control.write(`${JSON.stringify(request)}\n`);
    const timeoutMs = options.timeoutMs ?? 30_000;
    let timedOut = false;
    this.#timer = setTimeout(() => {
      timedOut = true;
      this.#wake();
    }, timeoutMs);
    try {
      for (;;) {
        const msg = this.#take((m) => m.type === 'started' || m.type === 'error');
        if (msg?.type === 'started') return { pid: msg.pid, startedAt: msg.startedAt, monitorPid: this.pid };
        if (msg?.type === 'error') throw new StrataError('ERR_SYSTEM', msg.message);
        if (this.#closed) {
          throw new StrataError('ERR_SYSTEM', `container monitor for ${request.id} exited before the container started`);
        }
        if (timedOut) {
          this.child.kill('SIGKILL');
          const runc = new Runc({ root: request.runtimeRoot, binary: request.runcBinary });
          await runc.delete(request.id, { force: true }).catch(() => undefined);
          throw new StrataError('ERR_SYSTEM', `timed out after ${timeoutMs} ms waiting for container ${request.id} to start`);
        }
        await this.#next();
      }
    } finally {
      clearTimeout(this.#timer);
    }
  }

  /**
   * Attached mode: resolves when the container exited and all its output was forwarded.
   * Rejects when the monitor went away without reporting (then `reconcile` settles it).
   */
  async wait(): Promise<ExitInfo> {
    for (;;) {
      const msg = this.#take((m) => m.type === 'exited');
      if (msg?.type === 'exited') return { exitCode: msg.exitCode, finishedAt: msg.finishedAt };
      if (this.#closed) throw new StrataError('ERR_SYSTEM', 'container monitor exited without reporting the exit status');
      await this.#next();
    }
  }

  /** Lets the container run on without us: closes the channel and stops keeping our event loop alive. */
  detach(): void {
    this.#control.destroy();
    this.child.unref();
  }

  /** Abandons a monitor that was spawned but never started (it exits on EOF). */
  dispose(): void {
    this.detach();
  }

  #take(pred: (m: MonitorMessage) => boolean): MonitorMessage | undefined {
    const i = this.#messages.findIndex(pred);
    return i < 0 ? undefined : this.#messages.splice(i, 1)[0];
  }

  #next(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

export interface StartContainerOptions extends SpawnMonitorOptions {
  timeoutMs?: number;
  /**
   * Close the control channel once the container runs (default: unless `attach`). Keep it
   * (false) to `wait()` for the exit without forwarding output, as `run --rm -d` would not
   * but a library caller or a test may.
   */
  detach?: boolean;
}

/**
 * Spawns a monitor and starts the container. Detached (the default) returns once the
 * container runs and leaves it to the monitor; with `attach` the returned monitor's
 * `wait()` gives the exit code after the output was forwarded; call `detach()` after it.
 */
export async function startContainer(
  request: MonitorRequest,
  options: StartContainerOptions = {},
): Promise<StartedContainer & { monitor: Monitor }> {
  const monitor = Monitor.spawn(options);
  try {
    const started = await monitor.start(request, { timeoutMs: options.timeoutMs });
    if (options.detach ?? !options.attach) monitor.detach();
    return { ...started, monitor };
  } catch (err) {
    monitor.detach();
    throw err;
  }
}

export interface SupervisedContainer extends StartedContainer {
  /** Resolves when the container exited and its output was logged (and forwarded). */
  wait(): Promise<ExitInfo>;
}

/**
 * Supervises the container in this process instead of a detached monitor: the same work
 * (supervise.ts), minus the ~50-60 ms a fresh Node process takes to boot, for an attached
 * `run` (notably `run --rm`) whose caller waits for the exit anyway.
 *
 * The price is Docker's "the container outlives a killed CLI": if this process dies, the
 * container loses its supervisor, exactly as when a monitor is SIGKILLed, and the next
 * `reconcile` settles it (exit 137). The caller must therefore stay alive until `wait()`
 * resolves, and must not die of SIGINT/SIGTERM: runc runs in the caller's process group,
 * receives the terminal's signals itself and forwards them to the container (Docker's
 * sig-proxy), so the caller should just ignore them while waiting.
 */
export async function superviseInProcess(
  request: MonitorRequest,
  options: { stdin?: 'ignore' | 'inherit' | 'open'; forward?: boolean } = {},
): Promise<SupervisedContainer> {
  // Loaded on demand: a detached `run -d` never needs the supervision code in the CLI.
  const { supervise } = await import('./supervise.js');
  let onStarted!: (s: StartedContainer) => void;
  let onStartError!: (err: Error) => void;
  let onExit!: (e: ExitInfo) => void;
  let onExitError!: (err: Error) => void;
  const started = new Promise<StartedContainer>((resolve, reject) => {
    onStarted = resolve;
    onStartError = reject;
  });
  const exited = new Promise<ExitInfo>((resolve, reject) => {
    onExit = resolve;
    onExitError = reject;
  });
  // Whoever never calls wait() must not get an unhandled rejection.
  exited.catch(() => undefined);
  let isStarted = false;
  const done = supervise(request, {
    stdin: options.stdin ?? 'ignore',
    forward: options.forward ?? false,
    send: (msg) => {
      if (msg.type === 'started') {
        isStarted = true;
        onStarted({ pid: msg.pid, startedAt: msg.startedAt, monitorPid: process.pid });
      } else if (msg.type === 'exited') {
        onExit({ exitCode: msg.exitCode, finishedAt: msg.finishedAt });
      } else {
        const err = new StrataError('ERR_SYSTEM', msg.message);
        if (isStarted) onExitError(err);
        else onStartError(err);
      }
    },
  });
  void done.then(() => {
    const err = new StrataError('ERR_SYSTEM', `supervision of ${request.id} ended without a result`);
    onStartError(err);
    onExitError(err);
  });
  const s = await started;
  return { ...s, wait: () => exited };
}
