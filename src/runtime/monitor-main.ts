/**
 * The container monitor process (strata's conmon): spawned detached by monitor.ts, it runs
 * one container from start to exit (supervise.ts) and then leaves. See monitor.ts for the
 * design and the control protocol. argv[2] is a JSON MonitorArgs; the start request
 * arrives on fd 3.
 *
 * It imports as little as it can: it starts on the critical path of every `run`.
 */
import { appendFileSync } from 'node:fs';
import { Socket } from 'node:net';

import type { MonitorArgs, MonitorMessage, MonitorRequest } from './monitor.js';
import { supervise } from './supervise.js';
import { readRecord } from './state.js';
import { spawn } from 'node:child_process';

function runHook(argv: readonly string[]): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    child.once('error', () => resolve());
    child.once('exit', () => resolve());
  });
}

/**
 * STRATA_MONITOR_TRACE=<file> appends the monitor's milestones (ms since its process
 * started) to that file: how the benchmarks tell Node's start-up from runc's time.
 */
const traceFile = process.env.STRATA_MONITOR_TRACE;
function trace(what: string): void {
  if (traceFile) appendFileSync(traceFile, `${process.pid} ${performance.now().toFixed(1)} ${what}\n`);
}
trace('main');

const args = JSON.parse(process.argv[2] ?? '{}') as MonitorArgs;
const control = new Socket({ fd: 3, readable: true, writable: true });
let connected = true;
control.on('close', () => {
  connected = false;
});
// EPIPE/ECONNRESET from a caller that went away: the container does not care.
control.on('error', () => {
  connected = false;
});

function send(msg: MonitorMessage): void {
  if (connected) control.write(`${JSON.stringify(msg)}\n`);
}

function readRequest(): Promise<MonitorRequest | undefined> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      control.off('data', onData);
      control.off('end', onEnd);
      try {
        resolve(JSON.parse(text.slice(0, nl)) as MonitorRequest);
      } catch (err) {
        reject(err);
      }
    };
    // EOF before a request: the caller gave up (dispose) — nothing to do.
    const onEnd = () => resolve(undefined);
    control.on('data', onData);
    control.on('end', onEnd);
  });
}

async function main(): Promise<void> {
  try {
    const request = await readRequest();
    if (request) {
      await supervise(request, { stdin: args.stdin, forward: args.attach, send, connected: () => connected, trace });
      if (request.onExit && request.onExit.length > 0 && (await readRecord(request.containerDir))?.status === 'exited') {
        // The daemon's exit handling (unmounts, network teardown, --rm) in a fresh process of
        // the engine, so this monitor stays free of engine code.
        trace('exit hook');
        await runHook(request.onExit);
      }
    }
  } catch (err) {
    send({ type: 'error', message: `container monitor failed: ${(err as Error).message}`, exitCode: 125 });
  } finally {
    // Flush the last message, then leave even if some handle (a stray pipe) is still open.
    if (connected) control.end(() => process.exit(0));
    else process.exit(0);
    setTimeout(() => process.exit(0), 1000).unref();
  }
}

void main();
