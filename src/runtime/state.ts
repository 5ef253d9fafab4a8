/**
 * The runtime's record of a container, and reconciliation of that record with reality.
 *
 * Files in the container directory (Docker's `containers/<id>/`):
 *   runtime-state.json  written atomically by the monitor: running (pid, startedAt), then
 *                       exited (exitCode, finishedAt), or start-failed (error, exitCode)
 *   monitor.lock        flock()ed by the live monitor for its whole life; the kernel drops it
 *                       when the monitor dies however it dies, so "lock free" is a reliable
 *                       "no monitor", immune to pid reuse
 *   <id>-json.log       the json-file log (logs.ts)
 *
 * A monitor that was SIGKILLed (or a machine that rebooted) leaves the record saying
 * "running". The next reader that finds the lock free takes it, kills what is left of the
 * container, deletes runc's state and records the exit, so every command sees a settled
 * container and nothing stays behind in runc's state directory.
 */
import { watch } from 'node:fs';
import path from 'node:path';

import { readFile } from '../sys/meta-fs.js';
import { StrataError, isErrno } from '../errors.js';
import { atomicWriteFile } from '../sys/atomic.js';
import { FileLock, isLockHeld } from '../sys/lock.js';
import type { Runc } from './runc.js';

export const STATE_FILE = 'runtime-state.json';
export const MONITOR_LOCK = 'monitor.lock';

/** Docker's json-file log path for a container. */
export function logPath(containerDir: string, id: string): string {
  return path.join(containerDir, `${id}-json.log`);
}

export interface RuntimeRecord {
  status: 'running' | 'exited' | 'start-failed';
  /** Host pid of the container's init while running. */
  pid?: number;
  monitorPid?: number;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  oomKilled?: boolean;
  /** Why the start failed, or why the exit code is a guess (monitor lost). */
  error?: string;
}

export async function readRecord(containerDir: string): Promise<RuntimeRecord | undefined> {
  try {
    return JSON.parse(await readFile(path.join(containerDir, STATE_FILE), 'utf8')) as RuntimeRecord;
  } catch (err) {
    // A torn or empty file can only come from a crash before the rename was durable: treat
    // it as no record, as if the container had never started.
    if (isErrno(err, 'ENOENT') || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/**
 * Written without fsync: the record is rewritten on every start and exit, and a record lost
 * in a power cut is repaired by reconciliation (the lock is free, so the container is
 * settled as exited), which is cheaper than an fsync on the start path.
 */
export async function writeRecord(containerDir: string, record: RuntimeRecord): Promise<void> {
  await atomicWriteFile(path.join(containerDir, STATE_FILE), `${JSON.stringify(record)}\n`, { fsync: false, mode: 0o600 });
}

export type ContainerStatus = 'created' | 'running' | 'paused' | 'exited' | 'dead';

export interface ContainerRuntimeState {
  status: ContainerStatus;
  pid?: number;
  exitCode?: number;
  startedAt?: string;
  finishedAt?: string;
  oomKilled?: boolean;
  error?: string;
}

export interface ReconcileOptions {
  id: string;
  containerDir: string;
  runc: Runc;
}

function fromRecord(record: RuntimeRecord | undefined): ContainerRuntimeState {
  if (!record) return { status: 'created' };
  const { pid, exitCode, startedAt, finishedAt, oomKilled, error } = record;
  switch (record.status) {
    case 'running':
      return { status: 'running', pid, startedAt };
    case 'start-failed':
      // Docker keeps a container whose process could not start in "created", with the
      // error and the 126/127 exit code recorded.
      return { status: 'created', exitCode, error, finishedAt };
    default:
      return { status: 'exited', exitCode, startedAt, finishedAt, oomKilled: oomKilled ?? false, ...(error ? { error } : {}) };
  }
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/**
 * The container's state, settling it first when its monitor is gone:
 * - monitor alive (lock held): the record, with runc's view for running/paused;
 * - monitor gone, record "running" or runc still knows the container: the container is
 *   killed (SIGKILL to its whole cgroup), runc's state deleted, and "exited" recorded with
 *   137, the status a SIGKILLed process reports (no process is left that could tell the
 *   real one: runc's foreground `run` was the only parent and it went with the monitor or
 *   after it);
 * - "dead" when that clean-up fails (runc refuses to delete), as Docker's dead state.
 */
export async function reconcile(options: ReconcileOptions): Promise<ContainerRuntimeState> {
  const { id, containerDir, runc } = options;
  let lock: FileLock;
  try {
    lock = await FileLock.acquire(path.join(containerDir, MONITOR_LOCK), { mode: 'exclusive', wait: false });
  } catch (err) {
    if (!(err instanceof StrataError && err.code === 'ERR_LOCKED')) throw err;
    // A live monitor (or another reconciler mid clean-up) owns the container.
    const state = fromRecord(await readRecord(containerDir));
    if (state.status === 'running') {
      const rs = await runc.tryState(id).catch(() => undefined);
      if (rs?.status === 'paused') return { ...state, status: 'paused' };
    }
    return state;
  }
  try {
    const record = await readRecord(containerDir);
    const known = await runc.hasState(id);
    if (record?.status !== 'running' && !known) return fromRecord(record);

    let error = 'container monitor exited unexpectedly';
    try {
      if (known) await killAndDelete(runc, id);
    } catch (err) {
      error = `${error}; cleaning up the runtime failed: ${(err as Error).message}`;
      const settled: RuntimeRecord = { ...record, status: 'exited', exitCode: 137, finishedAt: new Date().toISOString(), error };
      await writeRecord(containerDir, settled);
      return { ...fromRecord(settled), status: 'dead' };
    }
    const settled: RuntimeRecord = {
      status: 'exited',
      pid: record?.pid,
      startedAt: record?.startedAt,
      exitCode: 137,
      finishedAt: new Date().toISOString(),
      oomKilled: false,
      error,
    };
    await writeRecord(containerDir, settled);
    return fromRecord(settled);
  } finally {
    await lock.release();
  }
}

/** SIGKILL everything in the container, wait for it to stop, delete runc's state. */
export async function killAndDelete(runc: Runc, id: string): Promise<void> {
  const state = await runc.tryState(id);
  if (state && state.status !== 'stopped') {
    await runc.kill(id, 'SIGKILL', { all: true }).catch(() => undefined);
    // runc refuses to delete a container whose init still exists; SIGKILL lands within a
    // few ms, but a process in uninterruptible sleep can take longer.
    for (let i = 0; i < 100; i++) {
      const s = await runc.tryState(id);
      if (!s || s.status === 'stopped') break;
      await sleep(20);
    }
  }
  try {
    await runc.delete(id, { force: true });
  } catch (err) {
    // runc's own foreground `run` may have deleted it in the meantime.
    if (!(await runc.hasState(id))) return;
    throw err;
  }
}

export interface WaitOptions {
  signal?: AbortSignal;
  /**
   * Lets the wait notice a dead monitor: on the slow poll, a free monitor lock means no one
   * will ever record the exit, so the container is reconciled instead (exit 137).
   */
  reconcile?: { id: string; runc: Runc };
}

/**
 * Resolves with the record once the container is no longer running (exited or failed to
 * start), watching the state file (inotify on the directory, with a slow poll as a safety
 * net). Rejects with the signal's reason when `signal` aborts.
 */
export async function waitForExit(containerDir: string, options: WaitOptions = {}): Promise<RuntimeRecord> {
  const done = (r: RuntimeRecord | undefined): r is RuntimeRecord => r !== undefined && r.status !== 'running';
  const first = await readRecord(containerDir);
  if (done(first)) return first;
  return await new Promise<RuntimeRecord>((resolve, reject) => {
    let settled = false;
    let checking = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      watcher.close();
      clearInterval(timer);
      options.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    // A change reported while a read is in flight may have come after that read: read again.
    let again = false;
    const check = (poll = false) => {
      if (settled) return;
      if (checking) {
        again = true;
        return;
      }
      checking = true;
      again = false;
      (async () => {
        let r = await readRecord(containerDir);
        if (!done(r) && poll && options.reconcile && !(await isLockHeld(path.join(containerDir, MONITOR_LOCK)))) {
          await reconcile({ containerDir, ...options.reconcile });
          r = await readRecord(containerDir);
        }
        return r;
      })().then(
        (r) => {
          checking = false;
          if (done(r)) finish(() => resolve(r));
          else if (again) check();
        },
        (err: unknown) => finish(() => reject(err)),
      );
    };
    const onAbort = () => finish(() => reject(options.signal!.reason));
    const watcher = watch(containerDir, { persistent: true }, (_event, name) => {
      if (name === STATE_FILE || name === null) check();
    });
    watcher.on('error', () => check());
    const timer = setInterval(() => check(true), 1000);
    options.signal?.addEventListener('abort', onAbort);
    // An abort during the first read fired before we listened.
    if (options.signal?.aborted) onAbort();
    // The file may have changed between the first read and the watch starting.
    check();
  });
}
