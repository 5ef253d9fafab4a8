/**
 * Runs the real strata CLI (`bin/strata`, the launcher a user runs) as a child process, the way a user does, plus
 * the small process/filesystem helpers the end-to-end suites share (temp roots that are
 * unmounted and removed even when a test fails).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './fixtures.js';

export const STRATA_BIN = join(REPO_ROOT, 'bin', 'strata');
export const STRATA_MAIN = join(REPO_ROOT, 'dist', 'cli', 'strata.cjs');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time in milliseconds. */
  ms: number;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: Buffer | string;
  timeoutMs?: number;
}

/** Runs a command to completion without a shell. Never throws for a non-zero exit. */
export function run(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, {
      cwd: o.cwd, env: o.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let timer: NodeJS.Timeout | undefined;
    if (o.timeoutMs) {
      timer = setTimeout(() => {
        err.push(Buffer.from(`\n[test helper] ${cmd} timed out after ${o.timeoutMs} ms; killed\n`));
        child.kill('SIGKILL');
      }, o.timeoutMs);
    }
    child.on('error', (e) => { if (timer) clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: Date.now() - started });
    });
    child.stdin.on('error', () => { /* the child may exit before reading stdin */ });
    if (o.input !== undefined) child.stdin.end(o.input);
    else child.stdin.end();
  });
}

/** Like run() but throws with the command's output when it exits non-zero. */
export async function runOk(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, o);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** Why strata cannot be run here, or undefined when it can. */
export function strataSkipReason(): string | undefined {
  if (!existsSync(STRATA_BIN)) return `strata CLI entry ${STRATA_BIN} is missing`;
  if (!existsSync(STRATA_MAIN)) return `strata CLI is not built (${STRATA_MAIN} missing); run npm run build`;
  return undefined;
}

export function rootSkipReason(): string | undefined {
  return process.getuid?.() === 0 ? undefined : 'needs root (mounts, overlay, device nodes)';
}

export interface StrataOptions extends RunOptions {
  root: string;
  driver?: 'overlay2' | 'vfs';
}

function strataArgs(args: readonly string[], o: StrataOptions): string[] {
  const g = ['--data-root', o.root];
  if (o.driver) g.push('--storage-driver', o.driver);
  return [...g, ...args];
}

/** `strata --data-root <root> [--storage-driver d] <args...>`. */
export function strata(args: readonly string[], o: StrataOptions): Promise<RunResult> {
  return run(STRATA_BIN, strataArgs(args, o), { timeoutMs: 300_000, ...o, env: strataEnv(o.env) });
}

export async function strataOk(args: readonly string[], o: StrataOptions): Promise<RunResult> {
  const r = await strata(args, o);
  if (r.code !== 0) throw new Error(`strata ${args.join(' ')} exited ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** Starts strata without waiting (crash tests kill it). */
export function spawnStrata(args: readonly string[], o: StrataOptions): ChildProcess {
  return spawn(STRATA_BIN, strataArgs(args, o), { cwd: o.cwd, env: strataEnv(o.env), stdio: ['ignore', 'pipe', 'pipe'] });
}

function strataEnv(env?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const e = { ...(env ?? process.env) };
  delete e.STRATA_ROOT; // the data root always comes from --data-root in tests
  delete e.STRATA_DRIVER; // and the driver from --storage-driver or the root itself
  return e;
}

export interface InspectedImage {
  Id: string;
  RepoTags?: string[];
  RootFS: { Type: string; Layers: string[] };
  [k: string]: unknown;
}

/** `strata image inspect <ref>` parsed; undefined when the image does not exist. */
export async function strataInspect(ref: string, o: StrataOptions): Promise<InspectedImage | undefined> {
  const r = await strata(['image', 'inspect', ref], o);
  if (r.code !== 0) return undefined;
  const arr = JSON.parse(r.stdout) as InspectedImage[];
  return arr[0];
}

// ---------------------------------------------------------------------------------------------
// temp roots

/** Mount points at or below `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = unescape(f[4]!);
    if (mp === dir || mp.startsWith(dir.endsWith('/') ? dir : dir + '/')) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

/** Lazily unmounts everything under `dir`, then removes it. Never throws. */
export function removeTree(dir: string | undefined): void {
  if (!dir || dir === '/' || !existsSync(dir)) return;
  for (let pass = 0; pass < 3; pass++) {
    const mps = mountsUnder(dir);
    if (mps.length === 0) break;
    for (const mp of mps) spawnSync('umount', ['-l', mp], { stdio: 'ignore' });
  }
  // The runtime dirs of data roots at or just below `dir` (benchmarks keep roots in a work dir).
  removeExecRoots(dir);
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch (err) {
    // immutable/busy leftovers: report, don't mask the test's own result
    process.stderr.write(`[test helper] could not remove ${dir}: ${String(err)}\n`);
  }
}

const liveTemps = new Set<string>();
let exitHookInstalled = false;

/**
 * A fresh temp dir (short path under the OS temp dir: unix sockets inside must stay < 108
 * bytes). It is removed by `removeTree` in the test's `after`, and as a last resort when the
 * process exits.
 */
export function makeTempRoot(prefix = 'st-'): string {
  const dir = mkdtempSync(join(process.env.STRATA_TEST_TMP ?? '/tmp', prefix));
  liveTemps.add(dir);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const d of liveTemps) removeTree(d);
    });
  }
  return dir;
}

export function releaseTempRoot(dir: string | undefined): void {
  if (!dir) return;
  removeTree(dir);
  liveTemps.delete(dir);
}

/**
 * Removes the exec roots (`/run/strata/<hash of the data root>`: runc state, network records)
 * of the data roots in `dir` (the dir itself and its children), which outlive the roots.
 */
function removeExecRoots(dir: string): void {
  let candidates = [dir];
  try {
    candidates = candidates.concat(readdirSync(dir).map((n) => join(dir, n)));
  } catch {
    return;
  }
  for (const root of candidates) {
    const execRoot = join('/run/strata', createHash('sha256').update(root).digest('hex').slice(0, 16));
    if (existsSync(execRoot)) rmSync(execRoot, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
