// Real containers through runc and the strata monitor, on an overlay of a busybox rootfs
// built from Debian's busybox-static. Needs root, runc and busybox; skips otherwise.
// Every test checks that it left nothing in runc's state dir, the mount table or cgroupfs.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { NotFoundError } from '../../src/errors.js';
import { randomId } from '../../src/sys/ids.js';
import { isLockHeld } from '../../src/sys/lock.js';
import { mountAll, mountsUnder, unmount } from '../../src/sys/mount.js';
import { readLog } from '../../src/runtime/logs.js';
import { Monitor, startContainer, superviseInProcess, type MonitorRequest } from '../../src/runtime/monitor.js';
import { Runc, startFailureExitCode } from '../../src/runtime/runc.js';
import { buildExecProcess, buildSpec, type OciSpec, type SpecOptions } from '../../src/runtime/spec.js';
import { MONITOR_LOCK, logPath, readRecord, reconcile, waitForExit } from '../../src/runtime/state.js';

function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir || '.', cmd);
    if (existsSync(p)) return p;
  }
  return undefined;
}

const busybox = onPath('busybox');
const skipReason =
  process.getuid?.() !== 0
    ? 'needs root'
    : !onPath('runc')
      ? 'runc is not installed (scripts/setup.sh installs it)'
      : !busybox
        ? 'busybox-static is not installed (scripts/setup.sh installs it)'
        : undefined;
const opts = skipReason ? { skip: skipReason } : {};

const MONITOR_MODULE = new URL('../../src/runtime/monitor.js', import.meta.url).href;

let base: string;
let lower: string;

/** A minimal image: busybox and its applet links, users and groups, Docker's init-layer files. */
async function buildBusyboxRootfs(root: string): Promise<void> {
  for (const d of ['bin', 'etc', 'tmp', 'home/app', 'root', 'proc', 'sys', 'dev']) await mkdir(path.join(root, d), { recursive: true });
  await chmod(path.join(root, 'tmp'), 0o1777);
  await copyFile(busybox!, path.join(root, 'bin', 'busybox'));
  await chmod(path.join(root, 'bin', 'busybox'), 0o755);
  const applets = spawnSync(busybox!, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) await symlink('busybox', path.join(root, 'bin', a));
  await writeFile(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await writeFile(path.join(root, 'etc', 'group'), 'root:x:0:\nwheel:x:10:root\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n');
  for (const f of ['hostname', 'hosts', 'resolv.conf']) await writeFile(path.join(root, 'etc', f), '');
}

before(async () => {
  if (skipReason) return;
  base = await mkdtemp(path.join(tmpdir(), 'strata-runtime-'));
  lower = path.join(base, 'image');
  await buildBusyboxRootfs(lower);
});

after(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

interface Container {
  id: string;
  containerDir: string;
  bundle: string;
  rootfs: string;
  spec: OciSpec;
  request: MonitorRequest;
}

/**
 * One test's world: its own runc root, container dirs and overlay mounts under a temp dir.
 * `close` kills and deletes whatever is left, unmounts and removes everything, and then
 * (when the test passed) asserts that the test itself had already left nothing behind.
 */
class Sandbox {
  readonly dir: string;
  readonly runc: Runc;
  readonly containers: Container[] = [];

  constructor(dir: string) {
    this.dir = dir;
    this.runc = new Runc({ root: path.join(dir, 'runc') });
  }

  /** An overlay over the busybox image as the rootfs (the storage side's `merged`), and config.json. */
  async container(options: Partial<SpecOptions> & { args: string[] }): Promise<Container> {
    const id = randomId();
    const layer = path.join(this.dir, 'layers', id.slice(0, 12));
    for (const d of ['diff', 'work', 'merged']) await mkdir(path.join(layer, d), { recursive: true });
    const rootfs = path.join(layer, 'merged');
    await mountAll([{ type: 'overlay', source: 'overlay', options: [`lowerdir=${lower}`, `upperdir=${layer}/diff`, `workdir=${layer}/work`] }], rootfs);
    const containerDir = path.join(this.dir, 'containers', id);
    const bundle = path.join(this.dir, 'bundles', id);
    await mkdir(containerDir, { recursive: true });
    await mkdir(bundle, { recursive: true });
    const spec = await buildSpec({ id, rootfs, ...options });
    await writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
    const request: MonitorRequest = { id, bundle, containerDir, runtimeRoot: this.runc.root };
    const c = { id, containerDir, bundle, rootfs, spec, request };
    this.containers.push(c);
    return c;
  }

  async log(c: Container): Promise<Array<{ log: string; stream: string }>> {
    const out: Array<{ log: string; stream: string }> = [];
    for await (const e of readLog(logPath(c.containerDir, c.id))) out.push({ log: e.log, stream: e.stream });
    return out;
  }

  async stdout(c: Container): Promise<string> {
    return (await this.log(c)).filter((e) => e.stream === 'stdout').map((e) => e.log).join('');
  }

  /** What a finished test must have left: no runc state, no mounts but our rootfs overlays, no cgroups. */
  async assertClean(): Promise<void> {
    assert.deepEqual(await readdir(this.runc.root).catch(() => []), [], 'runc state left behind');
    const rootfsMounts = this.containers.map((c) => c.rootfs).sort();
    assert.deepEqual((await mountsUnder(this.dir)).sort(), rootfsMounts, 'unexpected mounts left behind');
    for (const c of this.containers) assert.deepEqual(cgroupDirs(c.id), [], 'cgroup left behind');
  }

  async close(passed: boolean): Promise<void> {
    let cleanError: unknown;
    if (passed) {
      try {
        await this.assertClean();
      } catch (err) {
        cleanError = err;
      }
    }
    for (const c of this.containers) {
      const rec = await readRecord(c.containerDir).catch(() => undefined);
      if (rec?.monitorPid && rec.status === 'running') killQuietly(rec.monitorPid);
      await this.runc.delete(c.id, { force: true }).catch(() => undefined);
    }
    for (const m of await mountsUnder(this.dir)) await unmount(m, { detach: true });
    await rm(this.dir, { recursive: true, force: true });
    if (cleanError) throw cleanError;
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Whether `pid` runs; a zombie does not (its parent may be a pid 1 that reaps lazily). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The container's cgroup directories that still exist (v1 hierarchies or the unified one). */
function cgroupDirs(id: string): string[] {
  const root = '/sys/fs/cgroup';
  const candidates = [path.join(root, 'strata', id)];
  for (const ctrl of readdirSync(root)) candidates.push(path.join(root, ctrl, 'strata', id));
  return candidates.filter((p) => existsSync(p));
}

async function withSandbox(t: TestContext, fn: (s: Sandbox) => Promise<void>): Promise<void> {
  void t;
  const s = new Sandbox(await mkdtemp(path.join(base, 'sb-')));
  let passed = false;
  try {
    await fn(s);
    passed = true;
  } finally {
    await s.close(passed);
  }
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Runs a script in a separate Node process, as the CLI would: returns its output and exit code. */
function runNode(code: string, input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** Starts the container and waits for it, attached, in this process. */
async function runToExit(c: Container): Promise<number> {
  // Connected but not forwarding: the output goes to the log only, not into the test's stdout.
  const r = await startContainer(c.request, { detach: false });
  try {
    return (await r.monitor.wait()).exitCode;
  } finally {
    r.monitor.detach();
  }
}

/** Runs a detached container and returns the pid of its init. */
async function runDetached(c: Container): Promise<number> {
  return (await startContainer(c.request)).pid;
}

async function stopNow(s: Sandbox, c: Container): Promise<number | undefined> {
  await s.runc.kill(c.id, 'SIGKILL', { all: true });
  return (await waitForExit(c.containerDir)).exitCode;
}

// ---- tests ---------------------------------------------------------------------------------------

test('echo hello: the json-file log holds the line and the exit is recorded', opts, async (t) => {
  await withSandbox(t, async (s) => {
    const c = await s.container({ args: ['echo', 'hello'] });
    assert.equal(await runToExit(c), 0);
    const log = await readFile(logPath(c.containerDir, c.id), 'utf8');
    assert.match(log, /^\{"log":"hello\\n","stream":"stdout","time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"\}\n$/);
    const rec = await readRecord(c.containerDir);
    assert.equal(rec?.status, 'exited');
    assert.equal(rec?.exitCode, 0);
    assert.equal(rec?.oomKilled, false);
    assert.ok(rec?.finishedAt && rec.startedAt && rec.finishedAt >= rec.startedAt);
    assert.deepEqual(await reconcile({ ...c.request, runc: s.runc }), {
      status: 'exited', exitCode: 0, startedAt: rec.startedAt, finishedAt: rec.finishedAt, oomKilled: false,
    });
  });
});

test('exit codes propagate, stdout and stderr are told apart, /dev/stdout reopens', opts, async (t) => {
  await withSandbox(t, async (s) => {
    const c = await s.container({ args: ['sh', '-c', 'echo out; echo err >&2; echo again > /dev/stdout; exit 3'] });
    assert.equal(await runToExit(c), 3);
    assert.deepEqual(
      (await s.log(c)).sort((a, b) => a.stream.localeCompare(b.stream)),
      [{ log: 'err\n', stream: 'stderr' }, { log: 'out\n', stream: 'stdout' }, { log: 'again\n', stream: 'stdout' }].sort((a, b) =>
        a.stream.localeCompare(b.stream),
      ),
    );
    assert.equal((await readRecord(c.containerDir))?.exitCode, 3);
  });
});

test('a command that cannot start fails with Docker\'s message and 127/126', opts, async (t) => {
  await withSandbox(t, async (s) => {
    const missing = await s.container({ args: ['nosuch'] });
    const err = await startContainer(missing.request).then(
      () => assert.fail('expected the start to fail'),
      (e: Error) => e,
    );
    assert.equal(
      err.message,
      'OCI runtime create failed: runc create failed: unable to start container process: exec: "nosuch": executable file not found in $PATH: unknown',
    );
    assert.equal(startFailureExitCode(err.message), 127);
    const rec = await readRecord(missing.containerDir);
    assert.equal(rec?.status, 'start-failed');
    assert.equal(rec?.exitCode, 127);
    assert.deepEqual(await reconcile({ ...missing.request, runc: s.runc }), {
      status: 'created', exitCode: 127, error: err.message, finishedAt: rec.finishedAt,
    });

    const notExecutable = await s.container({ args: ['/etc'] });
    const err2 = await startContainer(notExecutable.request).then(() => assert.fail('expected failure'), (e: Error) => e);
    assert.match(err2.message, /exec: "\/etc": permission denied: unknown$/);
    assert.equal(startFailureExitCode(err2.message), 126);
    // Nothing of the failed container may stay in runc, or the next start would say "exists".
    assert.deepEqual(await readdir(s.runc.root), []);
  });
});

test('user, groups, env, cwd and hostname reach the process', opts, async (t) => {
  await withSandbox(t, async (s) => {
    // The `id` lines are what Debian's dockerd 20.10 prints for the same image and flags.
    const script = 'id; echo "$FOO|$HOME|$HOSTNAME"; pwd; hostname';
    const numeric = await s.container({ args: ['sh', '-c', script], user: '1000:1000', env: ['FOO=bar'], cwd: '/tmp', hostname: 'box1' });
    assert.equal(await runToExit(numeric), 0);
    assert.equal(await s.stdout(numeric), 'uid=1000(app) gid=1000(app) groups=1000(app)\nbar|/home/app|box1\n/tmp\nbox1\n');

    const named = await s.container({ args: ['sh', '-c', script], user: 'app', env: ['FOO=baz'], hostname: 'box2' });
    assert.equal(await runToExit(named), 0);
    assert.equal(await s.stdout(named), 'uid=1000(app) gid=1000(app) groups=50(staff),1000(app)\nbaz|/home/app|box2\n/\nbox2\n');

    const idOnly = await s.container({ args: ['id', '-u'], user: '1000:1000' });
    assert.equal(await runToExit(idOnly), 0);
    assert.equal(await s.stdout(idOnly), '1000\n');

    const root = await s.container({ args: ['sh', '-c', 'id; ulimit -n; grep CapEff /proc/self/status'] });
    assert.equal(await runToExit(root), 0);
    const out = (await s.stdout(root)).split('\n');
    assert.equal(out[0], 'uid=0(root) gid=0(root) groups=0(root),10(wheel)');
    assert.ok(Number(out[1]) >= 1024);
    // Docker's 14 default capabilities.
    assert.equal(out[2], 'CapEff:\t00000000a80425fb');
  });
});

test('read-only rootfs, and /proc, /dev and /sys as Docker sets them up', opts, async (t) => {
  await withSandbox(t, async (s) => {
    const script = [
      'touch /x 2>/dev/null && echo rootfs-rw || echo rootfs-ro',
      'touch /dev/shm/x && echo shm-rw',
      'test -r /proc/self/status && echo proc',
      'test -c /dev/null && test -c /dev/zero && test -c /dev/urandom && test -c /dev/full && test -c /dev/tty && echo dev',
      'test -L /dev/stdout && test -e /dev/ptmx && echo dev-links',
      'test -d /sys/kernel && echo sys',
      'test -d /sys/fs/cgroup/memory -o -f /sys/fs/cgroup/cgroup.controllers && echo cgroup',
      'touch /sys/x 2>/dev/null || echo sys-ro',
      'echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || echo proc-sys-ro',
      'test -s /proc/kcore || echo kcore-masked',
      'for m in /dev/pts /dev/mqueue /dev/shm /etc/hostname; do grep -q " $m " /proc/mounts && echo "mounted $m"; done',
      'cat /etc/hostname',
    ].join('; ');
    const c = await s.container({ args: ['sh', '-c', script], readonlyRootfs: true, hostname: 'ro-box' });
    const hostnameFile = path.join(c.containerDir, 'hostname');
    await writeFile(hostnameFile, 'ro-box\n');
    // The engine adds these binds; rewrite the spec with one, as it will.
    const spec = await buildSpec({
      id: c.id, rootfs: c.rootfs, args: c.spec.process.args, readonlyRootfs: true, hostname: 'ro-box',
      mounts: [{ source: hostnameFile, destination: '/etc/hostname' }],
    });
    await writeFile(path.join(c.bundle, 'config.json'), JSON.stringify(spec));
    assert.equal(await runToExit(c), 0);
    assert.deepEqual((await s.stdout(c)).trim().split('\n'), [
      'rootfs-ro', 'shm-rw', 'proc', 'dev', 'dev-links', 'sys', 'cgroup', 'sys-ro', 'proc-sys-ro', 'kcore-masked',
      'mounted /dev/pts', 'mounted /dev/mqueue', 'mounted /dev/shm', 'mounted /etc/hostname', 'ro-box',
    ]);
    // The container wrote nothing into its layer.
    assert.deepEqual(await readdir(path.join(path.dirname(c.rootfs), 'diff')), []);
  });
});

test('a detached container survives its launcher; SIGTERM is ignored by pid 1, SIGKILL gives 137', opts, async (t) => {
  await withSandbox(t, async (s) => {
    const c = await s.container({ args: ['sleep', '1000'] });
    // The launcher is a separate process, like the CLI: it starts the container and exits.
    const launched = await runNode(
      `import { startContainer } from ${JSON.stringify(MONITOR_MODULE)};
       const r = await startContainer(${JSON.stringify(c.request)});
       console.log(JSON.stringify({ pid: r.pid, monitorPid: r.monitorPid }));`,
    );
    assert.equal(launched.code, 0, launched.stderr);
    const { pid, monitorPid } = JSON.parse(launched.stdout) as { pid: number; monitorPid: number };
    await sleep(200);
    assert.ok(alive(pid), 'container init gone with its launcher');
    assert.ok(alive(monitorPid), 'monitor gone with its launcher');
    assert.equal((await s.runc.state(c.id)).status, 'running');
    assert.deepEqual(await reconcile({ ...c.request, runc: s.runc }), { status: 'running', pid, startedAt: (await readRecord(c.containerDir))!.startedAt });
    assert.equal((await s.runc.list()).map((x) => x.id).join(), c.id);

    // As under Docker: the init of a pid namespace has no default action for SIGTERM.
    await s.runc.kill(c.id, 'SIGTERM');
    await sleep(300);
    assert.equal((await s.runc.state(c.id)).status, 'running');

    await s.runc.kill(c.id, 'SIGKILL');
    const rec = await waitForExit(c.containerDir);
    assert.equal(rec.exitCode, 137);
    assert.equal(alive(pid), false);
    for (let i = 0; i < 50 && alive(monitorPid); i++) await sleep(20);
    assert.equal(alive(monitorPid), false, 'monitor outlived its container');
  });
});

test('SIGTERM ends a process that is not a namespace init with 143', opts, async (t) => {
  await withSandbox(t, async (s) => {
    // In the host pid namespace `sleep` keeps its default SIGTERM action, so the status
    // runc reports is the signal's: 128 + 15.
    const c = await s.container({ args: ['sleep', '1000'], pidMode: 'host' });
    await runDetached(c);
    await s.runc.kill(c.id, 'SIGTERM');
    const rec = await waitForExit(c.containerDir);
    assert.equal(rec.exitCode, 143);
    assert.deepEqual((await reconcile({ ...c.request, runc: s.runc })).status, 'exited');
  });
});

test('exec runs in the running container with Docker\'s exit codes', opts, async (t) => {
  await withSandbox(t, async (s) => {
    const c = await s.container({ args: ['sleep', '1000'], hostname: 'exec-box' });
    const hostnameFile = path.join(c.containerDir, 'hostname');
    await writeFile(hostnameFile, 'exec-box\n');
    c.spec.mounts.push({ destination: '/etc/hostname', type: 'bind', source: hostnameFile, options: ['rbind', 'rprivate'] });
    await writeFile(path.join(c.bundle, 'config.json'), JSON.stringify(c.spec));
    await runDetached(c);

    const exec = async (args: string[], user?: string) => {
      let out = '';
      const code = await s.runc.exec(c.id, await buildExecProcess(c.spec, { args, user }), {
        stdio: ['ignore', 'pipe', 'pipe'],
        onSpawn: (child) => {
          child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
          child.stderr!.resume();
        },
      });
      return { code, out };
    };
    assert.deepEqual(await exec(['cat', '/etc/hostname']), { code: 0, out: 'exec-box\n' });
    assert.deepEqual(await exec(['sh', '-c', 'exit 5']), { code: 5, out: '' });
    assert.deepEqual(await exec(['id', '-u'], '1000:1000'), { code: 0, out: '1000\n' });
    const err = await exec(['nosuch']).then(() => assert.fail('expected failure'), (e: Error) => e);
    assert.equal(
      err.message,
      'OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuch": executable file not found in $PATH: unknown',
    );
    assert.equal(startFailureExitCode(err.message, 'exec'), 126);
    await assert.rejects(s.runc.exec('no-such-container', c.spec.process, { stdio: 'ignore' }), NotFoundError);
    assert.equal(await stopNow(s, c), 137);
  });
});

test('attached: output is forwarded byte for byte, stdin reaches the container, exit code returned', opts, async (t) => {
  await withSandbox(t, async (s) => {
    const attach = (c: Container, stdin: string) =>
      `import { startContainer } from ${JSON.stringify(MONITOR_MODULE)};
       const r = await startContainer(${JSON.stringify(c.request)}, { attach: true, stdin: ${JSON.stringify(stdin)} });
       const e = await r.monitor.wait();
       r.monitor.detach();
       process.exitCode = e.exitCode;`;
    const c = await s.container({ args: ['sh', '-c', 'echo out; printf "no newline"; echo err >&2; exit 7'] });
    const r = await runNode(attach(c, 'ignore'));
    assert.deepEqual(r, { code: 7, stdout: 'out\nno newline', stderr: 'err\n' });
    // The log has the same output; the partial last line is flushed at exit without '\n'.
    const log = await s.log(c);
    assert.deepEqual(log.filter((e) => e.stream === 'stdout').map((e) => e.log), ['out\n', 'no newline']);
    assert.deepEqual(log.filter((e) => e.stream === 'stderr').map((e) => e.log), ['err\n']);

    const cat = await s.container({ args: ['sh', '-c', 'tr a-z A-Z; echo done'] });
    assert.deepEqual(await runNode(attach(cat, 'inherit'), 'piped input\n'), { code: 0, stdout: 'PIPED INPUT\ndone\n', stderr: '' });
  });
});

test('in-process supervision: same records and log, no monitor process', opts, async (t) => {
  await withSandbox(t, async (s) => {
    const c = await s.container({ args: ['sh', '-c', 'echo hi; echo oops >&2; exit 4'] });
    const r = await superviseInProcess(c.request);
    assert.equal(r.monitorPid, process.pid);
    assert.deepEqual(await r.wait(), { exitCode: 4, finishedAt: (await readRecord(c.containerDir))!.finishedAt });
    assert.equal(await s.stdout(c), 'hi\n');
    assert.equal((await readRecord(c.containerDir))?.exitCode, 4);

    const bad = await s.container({ args: ['nosuch'] });
    await assert.rejects(superviseInProcess(bad.request), /executable file not found in \$PATH: unknown$/);
    assert.equal((await readRecord(bad.containerDir))?.status, 'start-failed');
  });
});

test('logs can be followed while the container writes them', opts, async (t) => {
  await withSandbox(t, async (s) => {
    const c = await s.container({ args: ['sh', '-c', 'for i in 1 2 3 4; do echo "line $i"; sleep 0.1; done'] });
    await runDetached(c);
    const ac = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const e of readLog(logPath(c.containerDir, c.id), { follow: true, signal: ac.signal })) seen.push(e.log);
    })();
    const rec = await waitForExit(c.containerDir);
    ac.abort();
    await reading;
    assert.equal(rec.exitCode, 0);
    assert.deepEqual(seen, ['line 1\n', 'line 2\n', 'line 3\n', 'line 4\n']);
  });
});

test('a SIGKILLed monitor is noticed: the container is killed, runc state deleted, exit 137 recorded', opts, async (t) => {
  await withSandbox(t, async (s) => {
    const c = await s.container({ args: ['sleep', '1000'] });
    const pid = await runDetached(c);
    const monitorPid = (await readRecord(c.containerDir))!.monitorPid!;
    // While the monitor lives, reconciliation leaves the container alone.
    assert.equal((await reconcile({ ...c.request, runc: s.runc })).status, 'running');
    process.kill(monitorPid, 'SIGKILL');
    // Not `alive()`: a killed multi-threaded process shows as a zombie while its other
    // threads still hold its files, and the lock goes only with the last of them.
    const lockFile = path.join(c.containerDir, MONITOR_LOCK);
    for (let i = 0; i < 200 && (await isLockHeld(lockFile)); i++) await sleep(10);
    assert.equal((await readRecord(c.containerDir))?.status, 'running', 'the record still says running');

    const state = await reconcile({ ...c.request, runc: s.runc });
    assert.equal(state.status, 'exited');
    assert.equal(state.exitCode, 137);
    assert.match(state.error ?? '', /monitor exited unexpectedly/);
    assert.equal(alive(pid), false, 'container init still running');
    assert.equal(await s.runc.tryState(c.id), undefined);
    // runc's own foreground `run` may still be finishing its clean-up: give it a moment.
    for (let i = 0; i < 100 && (await readdir(s.runc.root)).length > 0; i++) await sleep(10);
    // Reconciling again is a no-op.
    assert.equal((await reconcile({ ...c.request, runc: s.runc })).exitCode, 137);
    // waitForExit with reconciliation notices a dead monitor on its own too.
    const c2 = await s.container({ args: ['sleep', '1000'] });
    await runDetached(c2);
    process.kill((await readRecord(c2.containerDir))!.monitorPid!, 'SIGKILL');
    const rec = await waitForExit(c2.containerDir, { reconcile: { id: c2.id, runc: s.runc } });
    assert.equal(rec.exitCode, 137);
    for (let i = 0; i < 100 && (await readdir(s.runc.root)).length > 0; i++) await sleep(10);
  });
});

test('a second start of a running container is refused', opts, async (t) => {
  await withSandbox(t, async (s) => {
    const c = await s.container({ args: ['sleep', '1000'] });
    await runDetached(c);
    await assert.rejects(startContainer(c.request), /is already running/);
    assert.ok(existsSync(path.join(c.containerDir, MONITOR_LOCK)));
    assert.equal(await stopNow(s, c), 137);
  });
});

test('a pre-spawned monitor that is never used goes away on its own', opts, async (t) => {
  await withSandbox(t, async () => {
    const m = Monitor.spawn();
    const pid = m.pid;
    await sleep(100);
    m.dispose();
    for (let i = 0; i < 200 && alive(pid); i++) await sleep(10);
    assert.equal(alive(pid), false);
  });
});

test('the runc wrapper: create, start, state, list, kill, delete and its errors', opts, async (t) => {
  await withSandbox(t, async (s) => {
    const c = await s.container({ args: ['sleep', '1000'] });
    await assert.rejects(s.runc.state(c.id), NotFoundError);
    await s.runc.create(c.id, c.bundle, { stdio: 'ignore', pidFile: path.join(c.bundle, 'pid') });
    assert.equal((await s.runc.state(c.id)).status, 'created');
    await assert.rejects(s.runc.create(c.id, c.bundle, { stdio: 'ignore' }), /already exists/);
    await s.runc.start(c.id);
    const st = await s.runc.state(c.id);
    assert.equal(st.status, 'running');
    assert.equal(st.pid, Number(await readFile(path.join(c.bundle, 'pid'), 'utf8')));
    assert.deepEqual((await s.runc.list()).map((x) => [x.id, x.status]), [[c.id, 'running']]);
    await s.runc.kill(c.id, 'SIGKILL');
    for (let i = 0; i < 100 && (await s.runc.state(c.id)).status !== 'stopped'; i++) await sleep(10);
    assert.equal((await s.runc.state(c.id)).status, 'stopped');
    await assert.rejects(s.runc.kill(c.id, 'SIGKILL'), /is not running/);
    await s.runc.delete(c.id);
    await assert.rejects(s.runc.delete(c.id), NotFoundError);
  });
});

test('timing: create + start + wait of `true`', opts, async (t) => {
  await withSandbox(t, async (s) => {
    const N = 8;
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < N; i++) {
      const c = await s.container({ args: ['true'] });
      const t0 = performance.now();
      assert.equal(await runToExit(c), 0);
      cold.push(performance.now() - t0);
    }
    for (let i = 0; i < N; i++) {
      const c = await s.container({ args: ['true'] });
      // The CLI can spawn the monitor first and mount/write the spec while Node boots.
      const m = Monitor.spawn();
      await sleep(150);
      const t0 = performance.now();
      await m.start(c.request);
      assert.equal((await m.wait()).exitCode, 0);
      warm.push(performance.now() - t0);
      m.detach();
    }
    const inProcess: number[] = [];
    for (let i = 0; i < N; i++) {
      const c = await s.container({ args: ['true'] });
      const t0 = performance.now();
      assert.equal((await (await superviseInProcess(c.request)).wait()).exitCode, 0);
      inProcess.push(performance.now() - t0);
    }
    const bare: number[] = [];
    const c = await s.container({ args: ['true'] });
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      const r = spawnSync('runc', ['--root', s.runc.root, 'run', '--bundle', c.bundle, `${c.id.slice(0, 20)}-${i}`], { stdio: 'ignore' });
      bare.push(performance.now() - t0);
      assert.equal(r.status, 0);
    }
    const t1 = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    const node = performance.now() - t1;
    t.diagnostic(
      `median of ${N}: monitor spawned on demand ${median(cold).toFixed(0)} ms; monitor pre-spawned ${median(warm).toFixed(0)} ms; ` +
        `in-process ${median(inProcess).toFixed(0)} ms; bare \`runc run\` ${median(bare).toFixed(0)} ms; \`node -e 0\` ${node.toFixed(0)} ms`,
    );
    // Generous: the machine is shared; this catches a regression to seconds, not a few ms.
    assert.ok(median(cold) < 3000, `median ${median(cold)} ms`);
  });
});
