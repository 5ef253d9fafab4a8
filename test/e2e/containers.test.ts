/**
 * Containers end to end through the CLI, on real runc and real overlay mounts in temp data
 * roots: the copy-on-write facts of the seeds, lifecycle commands and their exit codes and
 * messages, diff/commit/export, crash clean-up, and nothing left behind by rm.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { busyboxRoot, containerSkipReason, releaseBusyboxRoot, type BusyboxRoot } from '../helpers/containers.js';
import { mountsUnder, sleep, strata, strataOk, run } from '../helpers/strata-cli.js';

const skip = containerSkipReason();

let suite: BusyboxRoot | undefined;
let dir: string;
let root: string;
const o = () => ({ root });
const s = (args: string[]) => strata(args, o());
const ok = async (args: string[]) => (await strataOk(args, o())).stdout.trim();

async function inspect(ref: string): Promise<Record<string, any>> {
  return JSON.parse(await ok(['inspect', ref]))[0];
}

before(async () => {
  if (skip) return;
  suite = await busyboxRoot('ctr-');
  ({ dir, root } = suite);
});

// Whatever a failed test left running goes with the root.
after(() => releaseBusyboxRoot(suite));

test('copy-on-write: new files, copy-up, whiteouts, isolation, stop/start keeps data, rm drops it', { skip }, async () => {
  const imageLayers = (await ok(['image', 'inspect', '-f', '{{json .GraphDriver.Data}}', 'busybox'])).trim();
  const a = await ok(['run', '-d', '--network', 'none', '--name', 'cow-a', 'busybox', 'sleep', '1000']);
  await ok(['run', '-d', '--network', 'none', '--name', 'cow-b', 'busybox', 'sleep', '1000']);
  await ok(['exec', 'cow-a', 'sh', '-c', 'echo new > /newfile && echo more >> /etc/group && rm /bin/zcat']);

  const ia = await inspect(a);
  assert.equal(ia.GraphDriver.Name, 'overlay2');
  const upper: string = ia.GraphDriver.Data.UpperDir;
  const lowers: string[] = ia.GraphDriver.Data.LowerDir.split(':');
  assert.match(lowers[0]!, /-init\/diff$/, 'the init layer sits right under the container layer');
  // A new file lands only in the container's upper layer.
  assert.equal(readFileSync(join(upper, 'newfile'), 'utf8'), 'new\n');
  // A modified image file is copied up; the image layer keeps its original.
  assert.ok(readFileSync(join(upper, 'etc/group'), 'utf8').endsWith('more\n'));
  const imageLower = lowers[lowers.length - 1]!;
  assert.ok(!readFileSync(join(imageLower, 'etc/group'), 'utf8').endsWith('more\n'));
  // A deleted image file is a whiteout (char 0:0) in the upper layer and gone from the view.
  const wh = run('stat', ['-c', '%F %t:%T', join(upper, 'bin/zcat')]);
  assert.equal((await wh).stdout.trim(), 'character special file 0:0');
  assert.equal((await s(['exec', 'cow-a', 'ls', '/bin/zcat'])).code, 1);
  assert.ok(existsSync(join(imageLower, 'bin/zcat')), 'image layer keeps the deleted file');

  // The other container of the same image sees none of it.
  assert.equal((await s(['exec', 'cow-b', 'cat', '/newfile'])).code, 1);
  assert.equal((await ok(['exec', 'cow-b', 'ls', '/bin/zcat'])), '/bin/zcat');

  // stop/start keeps the container's data.
  await ok(['stop', '-t', '1', 'cow-a']);
  assert.equal((await inspect('cow-a')).State.Status, 'exited');
  await ok(['start', 'cow-a']);
  assert.equal(await ok(['exec', 'cow-a', 'cat', '/newfile']), 'new');

  // rm drops the layer; the image layers are unchanged throughout.
  await ok(['rm', '-f', 'cow-a', 'cow-b']);
  assert.ok(!existsSync(upper));
  assert.equal((await ok(['image', 'inspect', '-f', '{{json .GraphDriver.Data}}', 'busybox'])).trim(), imageLayers);
  assert.deepEqual(mountsUnder(root), [], 'no mount left behind');
  assert.deepEqual(readdirSync(join(root, 'image/overlay2/layerdb/mounts')), []);
});

test('run: exit codes, output, --rm, names, docker messages', { skip }, async () => {
  const r = await s(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.equal(r.code, 3);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
  assert.equal((await ok(['ps', '-aq'])), '', '--rm removed it');

  const notFound = await s(['run', '--rm', '--network', 'none', 'busybox', 'nosuchcmd']);
  assert.equal(notFound.code, 127);
  assert.match(notFound.stderr, /executable file not found/);

  const noImage = await s(['run', '--rm', 'nosuchimage']);
  assert.equal(noImage.code, 125);
  assert.match(noImage.stderr, /Unable to find image 'nosuchimage:latest' locally/);

  await ok(['create', '--name', 'named1', '--network', 'none', 'busybox', 'true']);
  const dup = await s(['create', '--name', 'named1', '--network', 'none', 'busybox', 'true']);
  assert.equal(dup.code, 125);
  assert.match(dup.stderr, /Conflict\. The container name "\/named1" is already in use by container "[0-9a-f]{64}"/);
  const bad = await s(['create', '--name', 'a/b', 'busybox', 'true']);
  assert.match(bad.stderr, /Invalid container name \(a\/b\), only \[a-zA-Z0-9\]\[a-zA-Z0-9_.-\] are allowed/);
  assert.equal((await inspect('named1')).State.Status, 'created');
  await ok(['rename', 'named1', 'named2']);
  assert.equal((await inspect('named2')).Name, '/named2');
  assert.equal((await s(['inspect', 'named1'])).code, 1);
  await ok(['start', 'named2']);
  assert.equal(await ok(['wait', 'named2']), '0');
  assert.match(await ok(['ps', '-a', '--format', '{{.Names}} {{.Status}}']), /named2 Exited \(0\)/);
  await ok(['rm', 'named2']);

  // -e, -w, -u, --entrypoint, --hostname, --read-only
  const env = await ok(['run', '--rm', '--network', 'none', '-e', 'FOO=bar', '-w', '/tmp/work', '-u', '1000:1000', '--hostname', 'boxy',
    'busybox', 'sh', '-c', 'echo $FOO $(pwd) $(id -u):$(id -g) $(hostname)']);
  assert.equal(env, 'bar /tmp/work 1000:1000 boxy');
  assert.equal(await ok(['run', '--rm', '--network', 'none', '--entrypoint', 'echo', 'busybox', 'via', 'entrypoint']), 'via entrypoint');
  const ro = await s(['run', '--rm', '--network', 'none', '--read-only', 'busybox', 'touch', '/x']);
  assert.notEqual(ro.code, 0);
  assert.match(ro.stderr, /Read-only file system/);
});

test('detached: logs, exec, kill, stop, wait, restart, inspect state', { skip }, async () => {
  const id = await ok(['run', '-d', '--network', 'none', '--name', 'looper', 'busybox', 'sh', '-c', 'i=0; while true; do echo line$i; i=$((i+1)); sleep 0.2; done']);
  assert.match(id, /^[0-9a-f]{64}$/);
  await sleep(700);
  const logs = await ok(['logs', 'looper']);
  assert.match(logs, /^line0\nline1\n/);
  assert.equal(await ok(['exec', 'looper', 'echo', 'in', 'container']), 'in container');
  assert.equal((await s(['exec', 'looper', 'sh', '-c', 'exit 7'])).code, 7);
  const st = await inspect('looper');
  assert.equal(st.State.Running, true);
  assert.ok(st.State.Pid > 0);
  const ps = await ok(['ps', '--format', '{{.ID}} {{.Names}} {{.Command}}']);
  assert.ok(ps.startsWith(`${id.slice(0, 12)} looper "sh -c 'i=0; while`) || ps.includes('looper'), ps);
  await ok(['kill', 'looper']);
  assert.equal(await ok(['wait', 'looper']), '137');
  const killAgain = await s(['kill', 'looper']);
  assert.match(killAgain.stderr, /is not running/);
  await ok(['restart', 'looper']);
  assert.equal((await inspect('looper')).State.Status, 'running');
  await ok(['stop', '-t', '0', 'looper']);
  assert.equal((await inspect('looper')).State.ExitCode, 137);
  const rmRunning = await ok(['start', 'looper']).then(() => s(['rm', 'looper']));
  assert.match(rmRunning.stderr, /You cannot remove a running container [0-9a-f]{64}\. Stop the container before attempting removal or force remove/);
  await ok(['rm', '-f', 'looper']);
  assert.deepEqual(mountsUnder(root), []);
});

test('a killed monitor is reconciled: exited 137, mounts released', { skip }, async () => {
  await ok(['run', '-d', '--network', 'none', '--name', 'orphan', 'busybox', 'sleep', '1000']);
  const c = await inspect('orphan');
  // The monitor is the parent of runc; kill it hard, as a crash would.
  const ppid = (await run('ps', ['-o', 'ppid=', '-p', String(c.State.Pid)])).stdout.trim();
  const runcPid = ppid;
  const monitorPid = (await run('ps', ['-o', 'ppid=', '-p', runcPid])).stdout.trim();
  process.kill(Number(monitorPid), 'SIGKILL');
  await sleep(200);
  const after = await inspect('orphan');
  assert.equal(after.State.Status, 'exited');
  assert.equal(after.State.ExitCode, 137);
  assert.deepEqual(mountsUnder(join(root, 'overlay2')), [], 'reconciliation released the rootfs mount');
  await ok(['rm', 'orphan']);
});

test('diff, commit (author, message, --change), export', { skip }, async () => {
  await ok(['run', '--network', 'none', '--name', 'changer', 'busybox', 'sh', '-c', 'mkdir -p /app && echo v1 > /app/data && rm /bin/zcat && echo x >> /etc/group']);
  const diff = (await ok(['diff', 'changer'])).split('\n').sort();
  assert.deepEqual(diff, ['A /app', 'A /app/data', 'C /bin', 'C /etc', 'C /etc/group', 'D /bin/zcat']);
  const imageId = await ok(['commit', '-a', 'tester', '-m', 'added app', '-c', 'CMD ["cat","/app/data"]', '-c', 'ENV MODE=prod', 'changer', 'app:v1']);
  assert.match(imageId, /^sha256:[0-9a-f]{64}$/);
  assert.equal(await ok(['run', '--rm', '--network', 'none', 'app:v1']), 'v1');
  assert.equal(await ok(['run', '--rm', '--network', 'none', 'app:v1', 'sh', '-c', 'echo $MODE; ls /bin/zcat 2>&1 || true']), 'prod\nls: /bin/zcat: No such file or directory');
  const img = JSON.parse(await ok(['image', 'inspect', 'app:v1']))[0];
  assert.equal(img.Author, 'tester');
  assert.equal(img.RootFS.Layers.length, 2);
  const hist = await ok(['history', '--format', '{{.Comment}}|{{.CreatedBy}}', 'app:v1']);
  assert.match(hist.split('\n')[0]!, /^added app\|sh -c mkdir -p \/app/);

  const tar = join(dir, 'export.tar');
  await ok(['export', '-o', tar, 'changer']);
  const list = (await run('tar', ['-tf', tar])).stdout.split('\n');
  assert.ok(list.includes('app/data') && list.includes('bin/busybox') && !list.includes('bin/zcat'));
  assert.ok(list.includes('.dockerenv') && list.includes('etc/hosts'), 'export includes the init layer, as docker export does');
  await ok(['rm', 'changer']);
  await ok(['rmi', 'app:v1']);
});

test('volumes: bind (ro), anonymous and named volumes, rm -v keeps named data', { skip }, async () => {
  const host = join(dir, 'hostdir');
  mkdirSync(host, { recursive: true });
  writeFileSync(join(host, 'index.html'), 'from host\n');
  assert.equal(await ok(['run', '--rm', '--network', 'none', '-v', `${host}:/www:ro`, 'busybox', 'cat', '/www/index.html']), 'from host');
  const ro = await s(['run', '--rm', '--network', 'none', '-v', `${host}:/www:ro`, 'busybox', 'touch', '/www/x']);
  assert.match(ro.stderr, /Read-only file system/);
  await ok(['run', '--rm', '--network', 'none', '-v', `${host}:/www`, 'busybox', 'sh', '-c', 'echo from container > /www/back']);
  assert.equal(readFileSync(join(host, 'back'), 'utf8'), 'from container\n');

  await ok(['run', '--network', 'none', '--name', 'vols', '-v', '/etc', '-v', 'keepme:/data', 'busybox', 'sh', '-c', 'echo kept > /data/f']);
  const mounts = (await inspect('vols')).Mounts as Array<Record<string, any>>;
  const anon = mounts.find((m) => m.Destination === '/etc')!;
  assert.match(anon.Name, /^[0-9a-f]{64}$/);
  assert.equal(anon.Source, join(root, 'volumes', anon.Name, '_data'));
  assert.ok(existsSync(join(anon.Source, 'group')), 'anonymous volume prepopulated from the image');
  await ok(['rm', '-v', 'vols']);
  assert.ok(!existsSync(join(root, 'volumes', anon.Name)), 'rm -v removed the anonymous volume');
  assert.equal(readFileSync(join(root, 'volumes', 'keepme', '_data', 'f'), 'utf8'), 'kept\n', 'named volume kept');
});

test('cp: both directions, docker destination rules, container symlinks never reach host files', { skip }, async () => {
  const work = join(dir, 'cpwork');
  mkdirSync(work, { recursive: true });
  await ok(['run', '--network', 'none', '--name', 'cpbox', 'busybox', 'sh', '-c',
    'ln -s /etc /link && ln -s / /rootlink && echo ctr > /etc/motd && mkdir -p /d/e && echo deep > /d/e/f']);
  // Out of the container: a link in the path is resolved inside the container's filesystem.
  await ok(['cp', 'cpbox:/link/motd', join(work, 'motd')]);
  assert.equal(readFileSync(join(work, 'motd'), 'utf8'), 'ctr\n');
  await ok(['cp', 'cpbox:/rootlink/etc/motd', join(work, 'motd2')]);
  assert.equal(readFileSync(join(work, 'motd2'), 'utf8'), 'ctr\n', 'an absolute link restarts at the container root');
  // A directory into an existing directory lands under its own name; `dir/.` copies contents.
  await ok(['cp', 'cpbox:/d', work]);
  assert.equal(readFileSync(join(work, 'd/e/f'), 'utf8'), 'deep\n');
  mkdirSync(join(work, 'contents'));
  await ok(['cp', 'cpbox:/d/.', join(work, 'contents')]);
  assert.equal(readFileSync(join(work, 'contents/e/f'), 'utf8'), 'deep\n');
  // Into the container: a destination link is followed inside the container, not on the host.
  writeFileSync(join(work, 'hostfile'), 'from host\n');
  await ok(['cp', join(work, 'hostfile'), 'cpbox:/link/']);
  assert.ok(!existsSync('/etc/hostfile'), 'nothing written to the host /etc');
  const diff = (await ok(['diff', 'cpbox'])).split('\n');
  assert.ok(diff.includes('A /etc/hostfile'), diff.join(','));
  const missing = await s(['cp', 'cpbox:/nope', work]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Could not find the file \/nope/);
  await ok(['rm', 'cpbox']);
});

test('network: run -d -p HOST:80 httpd, curl 127.0.0.1, exec/logs/stop/rm; bridge, none and host modes; clean teardown', { skip: skip ?? (existsSync('/usr/lib/cni/bridge') ? undefined : 'CNI plugins missing; run scripts/setup.sh') }, async () => {
  const www = join(dir, 'www');
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, 'index.html'), '<h1>strata</h1>\n');
  const port = 18000 + Math.floor(Math.random() * 1000);
  const id = await ok(['run', '-d', '--name', 'web', '-p', `${port}:80`, '-v', `${www}:/www`, 'busybox', 'httpd', '-f', '-vv', '-p', '80', '-h', '/www']);
  let body = '';
  for (let i = 0; i < 50 && body === ''; i++) {
    body = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text()).catch(() => '');
    if (body === '') await sleep(100);
  }
  assert.equal(body, '<h1>strata</h1>\n');
  const net = (await inspect('web')).NetworkSettings;
  assert.match(net.IPAddress, /^172\.30\.\d+\.\d+$/);
  assert.deepEqual(net.Ports, { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: String(port) }] });
  assert.match(await ok(['ps', '--format', '{{.Ports}}']), new RegExp(`0\\.0\\.0\\.0:${port}->80/tcp`));
  assert.match(await ok(['exec', 'web', 'ip', 'addr', 'show', 'eth0']), /inet 172\.30\./);
  // Containers on the bridge reach each other.
  const fetched = await ok(['run', '--rm', 'busybox', 'wget', '-qO-', `http://${net.IPAddress}/`]);
  assert.equal(fetched, '<h1>strata</h1>');
  assert.match((await strata(['logs', 'web'], o())).stderr, /url:\/\n.*response:200/);
  // none: only lo; host: the host's interfaces.
  assert.doesNotMatch(await ok(['run', '--rm', '--network', 'none', 'busybox', 'ip', 'link']), /eth0/);
  const hostLinks = (await run('ip', ['-o', 'link'])).stdout.trim().split('\n').length;
  const ctrLinks = (await ok(['run', '--rm', '--network', 'host', 'busybox', 'ip', '-o', 'link'])).split('\n').length;
  assert.equal(ctrLinks, hostLinks, 'host network namespace shared');
  await ok(['stop', 'web']);
  await ok(['rm', 'web']);
  const nat = (await run('iptables', ['-t', 'nat', '-S'])).stdout;
  assert.ok(!nat.includes(`--dport ${port}`), 'port forward removed');
  assert.ok(!nat.includes(id), 'no rule names the container');
  assert.deepEqual(mountsUnder('/run/strata').filter((m) => m.includes(id)), [], 'netns unmounted');
});

test('terminals: run -itd keeps a shell on its pty (the seeds\' form), run -t gives tty output', { skip }, async () => {
  await ok(['run', '-itd', '--name', 'shell', '--network', 'none', 'busybox', 'sh']);
  await sleep(300);
  assert.equal((await inspect('shell')).State.Status, 'running', 'the shell waits on its terminal instead of seeing EOF');
  assert.equal((await inspect('shell')).Config.Tty, true);
  assert.equal(await ok(['exec', 'shell', 'sh', '-c', 'tty <&0 >/dev/null 2>&1 && echo has-tty || readlink /proc/1/fd/0']), '/dev/pts/0');
  const t = await s(['run', '-t', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'tty; echo done']);
  assert.equal(t.stdout, '/dev/pts/0\r\ndone\r\n', 'a terminal turns \\n into \\r\\n, as with docker run -t');
  await ok(['rm', '-f', 'shell']);
});
