/**
 * A private, real dockerd (Debian's docker.io 20.10) for comparison tests: its own data root,
 * exec root, socket and pidfile under a temp dir, no iptables/bridge, the overlay2 graph
 * driver. It never touches /var/lib/docker or the host's docker socket.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempRoot, releaseTempRoot, run, sleep, type RunOptions, type RunResult } from './strata-cli.js';

/** Prefer Debian's client (matches the daemon); /usr/local/bin/docker may be a newer one. */
export function dockerClient(): string | undefined {
  for (const p of ['/usr/bin/docker', '/usr/local/bin/docker']) if (existsSync(p)) return p;
  return which('docker');
}

export function dockerdBinary(): string | undefined {
  for (const p of ['/usr/sbin/dockerd', '/usr/bin/dockerd']) if (existsSync(p)) return p;
  return which('dockerd');
}

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

/** Why a private dockerd cannot be started here, or undefined. */
export function dockerSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'dockerd comparison needs root';
  if (!dockerdBinary()) return 'dockerd is not installed (Debian docker.io); run scripts/setup.sh';
  if (!dockerClient()) return 'docker client is not installed (Debian docker.io)';
  if (!which('containerd')) return 'containerd is not installed; run scripts/setup.sh';
  if (!which('runc')) return 'runc is not installed; run scripts/setup.sh';
  return undefined;
}

export interface DockerdOptions {
  storageDriver?: string;
  /** Parent directory for the temp dir (default /tmp, or STRATA_TEST_TMP). */
  base?: string;
  /** Seconds to wait for the API (default 60). */
  startTimeout?: number;
}

const liveDaemons = new Set<Dockerd>();
// Last resort when a test process dies without running its `after` hooks: kill our daemons
// (their temp dirs are then unmounted and removed by strata-cli's exit hook).
process.on('exit', () => {
  for (const d of liveDaemons) d.killNow();
});

export class Dockerd {
  /** The temp dir holding everything of this daemon. */
  readonly dir: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly sock: string;
  readonly storageDriver: string;
  readonly client: string;
  #proc: ChildProcess | undefined;
  #stopped = false;

  private constructor(dir: string, storageDriver: string) {
    this.dir = dir;
    this.dataRoot = join(dir, 'root');
    this.execRoot = join(dir, 'x');
    this.sock = join(dir, 'd.sock');
    this.storageDriver = storageDriver;
    this.client = dockerClient()!;
  }

  static async start(o: DockerdOptions = {}): Promise<Dockerd> {
    const reason = dockerSkipReason();
    if (reason) throw new Error(reason);
    const prevTmp = process.env.STRATA_TEST_TMP;
    if (o.base) process.env.STRATA_TEST_TMP = o.base;
    let dir: string;
    try {
      dir = makeTempRoot('sd-');
    } finally {
      if (o.base) {
        if (prevTmp === undefined) delete process.env.STRATA_TEST_TMP;
        else process.env.STRATA_TEST_TMP = prevTmp;
      }
    }
    const d = new Dockerd(dir, o.storageDriver ?? 'overlay2');
    liveDaemons.add(d);
    try {
      await d.#start(o.startTimeout ?? 60);
    } catch (err) {
      await d.stop();
      throw err;
    }
    return d;
  }

  get logFile(): string {
    return join(this.dir, 'dockerd.log');
  }

  async #start(timeoutSec: number): Promise<void> {
    for (const p of [this.dataRoot, this.execRoot, join(this.dir, 'cfg')]) mkdirSync(p, { recursive: true });
    if (Buffer.byteLength(join(this.execRoot, 'containerd', 'containerd.sock.ttrpc')) >= 100) {
      throw new Error(`temp dir ${this.dir} is too long for unix socket paths`);
    }
    // an empty config file keeps /etc/docker/daemon.json out of the picture
    writeFileSync(join(this.dir, 'daemon.json'), '{}\n');
    const args = [
      '--config-file', join(this.dir, 'daemon.json'),
      '--data-root', this.dataRoot,
      '--exec-root', this.execRoot,
      '-H', `unix://${this.sock}`,
      '--pidfile', join(this.dir, 'd.pid'),
      '--iptables=false', '--ip-masq=false', '--ip-forward=false', '--bridge=none',
      '--storage-driver', this.storageDriver,
      '--log-level', 'warn',
    ];
    const log = openSync(this.logFile, 'a');
    try {
      this.#proc = spawn(dockerdBinary()!, args, {
        stdio: ['ignore', log, log],
        env: { ...process.env, DOCKER_CONFIG: join(this.dir, 'cfg') },
        detached: false,
      });
    } finally {
      closeSync(log);
    }
    let exited: string | undefined;
    this.#proc.on('exit', (code, sig) => { exited = `dockerd exited (${code ?? sig})`; });
    const deadline = Date.now() + timeoutSec * 1000;
    while (Date.now() < deadline) {
      if (exited) break;
      const r = await this.run(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 });
      if (r.code === 0) return;
      await sleep(200);
    }
    throw new Error(`${exited ?? 'dockerd did not answer in time'}; log:\n${this.log().slice(-4000)}`);
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** `docker -H unix://<sock> <args>`. */
  run(args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
    return run(this.client, ['-H', `unix://${this.sock}`, ...args], {
      timeoutMs: 300_000, ...o,
      env: { ...process.env, ...o.env, DOCKER_CONFIG: join(this.dir, 'cfg'), DOCKER_CLI_HINTS: 'false', DOCKER_HOST: `unix://${this.sock}` },
    });
  }

  async ok(args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
    const r = await this.run(args, o);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r;
  }

  /** `<data-root>/image/<driver>`. */
  get imageRoot(): string {
    return join(this.dataRoot, 'image', this.storageDriver);
  }

  /** Chain IDs (hex) present in docker's layerdb. */
  chainIds(): string[] {
    return listHex(join(this.imageRoot, 'layerdb', 'sha256'));
  }

  /** Synchronous SIGKILL of dockerd and its containerd (exit hook). */
  killNow(): void {
    try { this.#proc?.kill('SIGKILL'); } catch { /* gone */ }
    this.#killContainerd();
  }

  #killContainerd(): void {
    try {
      const pid = Number(readFileSync(join(this.execRoot, 'containerd', 'containerd.pid'), 'utf8').trim());
      if (pid > 1 && isOurs(pid, this.dir)) process.kill(pid, 'SIGKILL');
    } catch { /* gone */ }
  }

  /** SIGTERM, wait, SIGKILL if needed; kill the managed containerd; unmount; remove the temp dir. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const proc = this.#proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const done = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      if (!(await exitsWithin(done, 30_000))) {
        proc.kill('SIGKILL');
        await exitsWithin(done, 5_000);
      }
    }
    // the containerd dockerd started for itself normally exits with it; make sure
    this.#killContainerd();
    liveDaemons.delete(this);
    releaseTempRoot(this.dir);
  }
}

/** Resolves true when `done` settles within `ms`; the timer never keeps the process alive. */
function exitsWithin(done: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    t.unref();
    done.then(() => {
      clearTimeout(t);
      resolve(true);
    }, () => resolve(true));
  });
}

/** True when /proc/<pid>/cmdline mentions our temp dir (never signal a stranger). */
function isOurs(pid: number, dir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
  } catch {
    return false;
  }
}

export function listHex(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => /^[0-9a-f]{64}$/.test(n)).sort();
  } catch {
    return [];
  }
}
