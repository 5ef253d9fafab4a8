/**
 * Supervising one container from start to exit: the monitor's work, shared by the detached
 * monitor process (monitor-main.ts) and by callers that supervise in their own process
 * (`superviseInProcess` in monitor.ts). See monitor.ts for the design.
 *
 * Steps: take the container's monitor lock; make real pipes for stdout/stderr; run
 * `runc run` in the foreground with them; wait for runc's pid file (started) or runc's exit
 * (failed: runc's error, in Docker's words and exit code); record "running"; copy output
 * into the json-file log (and to our own stdout/stderr when forwarding); on runc's exit
 * (the container's status) drain the pipes, record "exited", remove any runc state left.
 */
import { type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, existsSync, watch, type FSWatcher } from 'node:fs';
import { Socket } from 'node:net';
import tty from 'node:tty';
import path from 'node:path';

import { readFile, rm, writeFile } from '../sys/meta-fs.js';
import { StrataError } from '../errors.js';
import { FileLock } from '../sys/lock.js';
import { makePipe, type Pipe } from '../sys/pipe.js';
import { native } from '../native/addon.js';
import { formatTimestamp, nowNs } from '../sys/go-time.js';
import { JsonLogWriter, type LogStream } from './logs.js';
import type { MonitorMessage, MonitorRequest } from './monitor.js';
import { Runc, runcErrorMessages, signalNumber, startFailureExitCode } from './runc.js';
import { MONITOR_LOCK, killAndDelete, logPath, writeRecord } from './state.js';

/** How long output may trail the container's exit (a --pid host child still holding stdout). */
const DRAIN_AFTER_EXIT_MS = 2000;

export interface SuperviseIo {
  /** The container's stdin: /dev/null, this process's fd 0, or a pipe kept open and silent. */
  stdin: 'ignore' | 'inherit' | 'open';
  /** Also write the container's output to this process's stdout/stderr. */
  forward?: boolean;
  /** Progress: started or error, then exited. */
  send: (msg: MonitorMessage) => void;
  /** While false, output is not forwarded (the attached caller went away). */
  connected?: () => boolean;
  trace?: (what: string) => void;
}

/**
 * Runs the container to its end. Never throws: a failure before the start is recorded as
 * start-failed and sent as `error`; one after it is sent as `error` and left to
 * reconciliation (the record says running and the lock is released).
 */
export async function supervise(request: MonitorRequest, io: SuperviseIo): Promise<void> {
  const state = { started: false };
  try {
    await superviseOrThrow(request, io, state);
  } catch (err) {
    const message = `container monitor failed: ${(err as Error).message}`;
    io.send({ type: 'error', message, exitCode: 125 });
    if (!state.started) {
      await writeRecord(request.containerDir, { status: 'start-failed', exitCode: 125, error: message, finishedAt: formatTimestamp(nowNs()) }).catch(
        () => undefined,
      );
    }
  }
}

/** Resolves once `file` exists, watching its directory; `cancel` stops watching. */
function whenFileAppears(file: string): { appeared: Promise<void>; cancel: () => void } {
  let watcher: FSWatcher | undefined;
  let resolveFn: () => void = () => undefined;
  const appeared = new Promise<void>((resolve) => {
    resolveFn = resolve;
  });
  const check = () => {
    if (existsSync(file)) {
      watcher?.close();
      resolveFn();
    }
  };
  watcher = watch(path.dirname(file), { persistent: false }, (_e, name) => {
    if (name === null || name === path.basename(file)) check();
  });
  check();
  return { appeared, cancel: () => watcher?.close() };
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }> {
  return new Promise((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

async function superviseOrThrow(request: MonitorRequest, io: SuperviseIo, state: { started: boolean }): Promise<void> {
  const trace = io.trace ?? (() => undefined);
  const send = io.send;
  trace('request');
  const { id, bundle, containerDir } = request;
  const runc = new Runc({ root: request.runtimeRoot, binary: request.runcBinary });

  let lock: FileLock;
  try {
    lock = await FileLock.acquire(path.join(containerDir, MONITOR_LOCK), { mode: 'exclusive', wait: false });
  } catch (err) {
    if (err instanceof StrataError && err.code === 'ERR_LOCKED') {
      send({ type: 'error', message: `container ${id} is already running`, exitCode: 125 });
      return;
    }
    throw err;
  }

  trace('locked');
  const pidFile = path.join(bundle, 'init.pid');
  const runcLog = path.join(bundle, 'log.json');
  await rm(pidFile, { force: true });
  await writeFile(runcLog, '');
  // Leftover runc state (a crash between runc's start and our record) would make `run`
  // fail with "container exists"; nothing can be running under it now that we hold the lock.
  if (await runc.hasState(id)) await killAndDelete(runc, id);

  const log = new JsonLogWriter(logPath(containerDir, id));
  const out = makePipe(containerDir);
  const err = makePipe(containerDir);
  let stdin: number | 'ignore' = 'ignore';
  let stdinPipe: Pipe | undefined;
  if (io.stdin === 'inherit') stdin = 0;
  else if (io.stdin === 'open') {
    stdinPipe = makePipe(containerDir);
    stdin = stdinPipe.read;
  }

  trace('pipes');
  // A terminal: runc, given a pty of ours as its stdin/stdout, treats it as its console and
  // relays between it and the container's own pty (so no console socket and no subreaper
  // are needed); we read and write our pty's master.
  let master: number | undefined;
  const closeAfterSpawn: number[] = [];
  let runcStdio: StdioOptions = [stdin, out.write, err.write];
  if (request.terminal) {
    const pty = native().openPty();
    master = pty.master;
    const { rows, columns } = io.stdin === 'inherit' && process.stdout.isTTY ? process.stdout : { rows: 24, columns: 80 };
    native().setWinsize(master, rows, columns);
    runcStdio = [pty.slave, pty.slave, err.write];
    closeAfterSpawn.push(pty.slave);
  }
  const pidWatch = whenFileAppears(pidFile);
  const child = runc.spawnRun(id, bundle, { pidFile, logFile: runcLog, stdio: runcStdio });
  const exited = exitOf(child);
  // The container holds the write ends now; ours must go, or the pipes would never see EOF.
  closeSync(out.write);
  closeSync(err.write);
  for (const fd of closeAfterSpawn) closeSync(fd);
  if (stdinPipe) closeSync(stdinPipe.read);

  // Output is held back until the container is known to have started: whatever arrives
  // before that is runc's own complaint about a failed start, not container output.
  let started = false;
  const early: Array<[LogStream, Buffer]> = [];
  // A caller whose stdout is a pipe may go away mid-stream (EPIPE): stop forwarding, keep logging.
  let forwarding = io.forward ?? false;
  const onForwardError = () => (forwarding = false);
  if (forwarding) for (const s of [process.stdout, process.stderr]) s.on('error', onForwardError);
  const deliver = (stream: LogStream, chunk: Buffer) => {
    log.write(stream, chunk);
    if (forwarding && (io.connected?.() ?? true)) (stream === 'stdout' ? process.stdout : process.stderr).write(chunk);
  };
  const streamDone = (fd: number, stream: LogStream): Promise<void> => {
    const s = new Socket({ fd, readable: true, writable: false });
    const done = new Promise<void>((resolve) => {
      s.on('data', (chunk: Buffer) => (started ? deliver(stream, chunk) : early.push([stream, chunk])));
      s.on('end', () => resolve());
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    sockets.push(s);
    return done;
  };
  const sockets: Socket[] = [];
  const streams = [streamDone(out.read, 'stdout'), streamDone(err.read, 'stderr')];
  let terminal: { read: tty.ReadStream; write: tty.WriteStream } | undefined;
  if (master !== undefined) {
    // Docker logs a terminal's output as stdout.
    const read = new tty.ReadStream(master);
    const write = new tty.WriteStream(master);
    terminal = { read, write };
    streams.push(new Promise<void>((resolve) => {
      read.on('data', (chunk: Buffer) => (started ? deliver('stdout', chunk) : early.push(['stdout', chunk])));
      read.on('end', () => resolve());
      read.on('close', () => resolve());
      // EIO once the container's side of the pty is gone: the end of its output.
      read.on('error', () => resolve());
    }));
    if (io.stdin === 'inherit') {
      if (process.stdin.isTTY) process.stdin.setRawMode(true);
      process.stdin.pipe(write);
    }
  }
  const outputDone = Promise.all(streams);

  const first = await Promise.race([pidWatch.appeared.then(() => 'pid' as const), exited.then(() => 'exit' as const)]);
  pidWatch.cancel();
  trace(first);
  let pid: number | undefined;
  if (first === 'pid' || existsSync(pidFile)) {
    pid = Number((await readFile(pidFile, 'utf8')).trim());
  }

  if (!pid) {
    // runc exited without starting anything.
    const result = await exited;
    const runcText = runcErrorMessages(await readFile(runcLog, 'utf8').catch(() => '')).join('; ');
    const stderrText = early.map(([, b]) => b.toString('utf8')).join('').trim();
    const spawnError = result.error as NodeJS.ErrnoException | undefined;
    const raw =
      runcText ||
      stderrText ||
      (spawnError?.code === 'ENOENT'
        ? `runc not found (${child.spawnfile}); install Debian's runc package (scripts/setup.sh)`
        : spawnError?.message ?? `runc exited with ${result.code ?? result.signal}`);
    // runc names the command it was given (`run`); Docker runs `create`, and users and
    // scripts match Docker's wording.
    const message = `OCI runtime create failed: ${raw.replace(/^runc run failed: /, 'runc create failed: ')}: unknown`;
    const exitCode = startFailureExitCode(raw, 'run');
    for (const s of sockets) s.destroy();
    closeTerminal(terminal, io);
    if (stdinPipe) closeSync(stdinPipe.write);
    log.close();
    if (await runc.hasState(id)) await killAndDelete(runc, id).catch(() => undefined);
    await writeRecord(containerDir, { status: 'start-failed', exitCode, error: message, finishedAt: formatTimestamp(nowNs()) });
    send({ type: 'error', message, exitCode });
    await lock.release();
    return;
  }

  const startedAt = formatTimestamp(nowNs());
  state.started = true;
  await writeRecord(containerDir, { status: 'running', pid, monitorPid: process.pid, startedAt });
  send({ type: 'started', pid, startedAt, runcPid: child.pid ?? -1 });
  started = true;
  for (const [stream, chunk] of early.splice(0)) deliver(stream, chunk);

  trace('started');
  const result = await exited;
  trace('runc exited');
  let exitCode: number;
  if (result.code !== null) {
    exitCode = result.code;
  } else {
    // runc itself was killed: the container may live on without a parent that can report
    // its status. Kill it so the record below is true, and report the signal runc got.
    await killAndDelete(runc, id).catch(() => undefined);
    exitCode = 128 + (signalNumber(result.signal ?? 'SIGKILL') ?? 9);
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([outputDone, new Promise((r) => (timer = setTimeout(r, DRAIN_AFTER_EXIT_MS)))]);
  clearTimeout(timer);
  for (const s of sockets) s.destroy();
  closeTerminal(terminal, io);
  if (stdinPipe) closeSync(stdinPipe.write);
  log.close();

  // `runc run` deletes the container when its init exits; this only catches the odd case
  // where it could not (and keeps the runc state directory clean, whatever happened).
  if (await runc.hasState(id)) await killAndDelete(runc, id).catch(() => undefined);
  const finishedAt = formatTimestamp(nowNs());
  await writeRecord(containerDir, { status: 'exited', pid, monitorPid: process.pid, startedAt, exitCode, finishedAt, oomKilled: false });
  if (io.forward) for (const s of [process.stdout, process.stderr]) s.off('error', onForwardError);
  send({ type: 'exited', exitCode, finishedAt });
  trace('exited sent');
  await lock.release();
}

/** Releases a container's pty master and gives the caller's terminal its mode back. */
function closeTerminal(terminal: { read: tty.ReadStream; write: tty.WriteStream } | undefined, io: SuperviseIo): void {
  if (!terminal) return;
  if (io.stdin === 'inherit') {
    process.stdin.unpipe(terminal.write);
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    process.stdin.pause();
  }
  terminal.read.destroy();
  terminal.write.destroy();
}
