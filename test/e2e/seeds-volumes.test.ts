/**
 * Seed 000's volume transcripts replayed with strata, real runc, real mounts, bridge network
 * with published ports: an httpd from Debian's busybox-static serving /usr/share/nginx/html
 * plays nginx. Every `curl` of the seeds is an HTTP GET of 127.0.0.1:<published port>.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

import { busyboxRoot, containerSkipReason, releaseBusyboxRoot, type BusyboxRoot } from '../helpers/containers.js';
import { sleep, strata, strataOk } from '../helpers/strata-cli.js';

const skip = containerSkipReason() ?? (existsSync('/usr/lib/cni/bridge') ? undefined : 'CNI plugins are not installed; run scripts/setup.sh');

let suite: BusyboxRoot | undefined;
let dir: string;
let root: string;
const ok = async (args: string[]) => (await strataOk(args, { root })).stdout.trim();
const s = (args: string[]) => strata(args, { root });
const HTML = '/usr/share/nginx/html';

/** A free TCP port on 127.0.0.1 (released before use; the kernel does not hand it out again at once). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** `curl http://127.0.0.1:<port>`, retried while the server comes up. */
async function curl(port: number): Promise<string> {
  let last: unknown;
  for (let i = 0; i < 50; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
      return await res.text();
    } catch (err) {
      last = err;
      await sleep(100);
    }
  }
  throw new Error(`nothing answers on 127.0.0.1:${port}: ${String(last)}`);
}

/** `run -itd --name NAME -p PORT:80 ARGS... nginx`, returning the port. */
async function web(name: string, args: string[], image = 'nginx'): Promise<number> {
  const port = await freePort();
  await ok(['run', '-d', '--name', name, '-p', `${port}:80`, ...args, image]);
  return port;
}

before(async () => {
  if (skip) return;
  suite = await busyboxRoot('seeds-');
  ({ dir, root } = suite);
  // "nginx": busybox httpd serving the image's own default page.
  await ok(['run', '--network', 'none', '--name', 'mk-nginx', 'busybox', 'sh', '-c', `mkdir -p ${HTML} && echo 'Welcome to nginx!' > ${HTML}/index.html`]);
  await ok(['commit', '-c', `CMD ["httpd","-f","-p","80","-h","${HTML}"]`, '-c', 'EXPOSE 80', 'mk-nginx', 'nginx:latest']);
  await ok(['rm', 'mk-nginx']);
});

after(() => releaseBusyboxRoot(suite));

test('bind mount: host page served, host edits visible, rm keeps host data, :ro refuses writes', { skip }, async () => {
  const html = join(dir, 'html');
  mkdirSync(html, { recursive: true });
  writeFileSync(join(html, 'index.html'), 'hello\n');
  const port = await web('cynginx', ['-v', `${html}:${HTML}`]);
  assert.equal(await curl(port), 'hello\n');
  writeFileSync(join(html, 'index.html'), 'hello huayu\n');
  assert.equal(await curl(port), 'hello huayu\n');
  await ok(['stop', 'cynginx']);
  await ok(['rm', 'cynginx']);
  assert.equal(readFileSync(join(html, 'index.html'), 'utf8'), 'hello huayu\n');

  await web('cynginx1', ['-v', `${html}:${HTML}:ro`]);
  const w = await s(['exec', 'cynginx1', 'sh', '-c', `echo huayu123 > ${HTML}/index.html`]);
  assert.notEqual(w.code, 0);
  assert.match(w.stderr, /Read-only file system/);
  await ok(['rm', '-f', 'cynginx1']);
});

test('docker-managed volume: 64-hex volume prepopulated from the image, _data edits visible', { skip }, async () => {
  const port = await web('cynginx2', ['-v', `${HTML}/`]);
  const mounts = JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', 'cynginx2']));
  assert.equal(mounts.length, 1);
  assert.match(mounts[0].Name, /^[0-9a-f]{64}$/);
  assert.equal(mounts[0].Source, join(root, 'volumes', mounts[0].Name, '_data'));
  assert.equal(mounts[0].Destination, HTML);
  assert.equal(readFileSync(join(mounts[0].Source, 'index.html'), 'utf8'), 'Welcome to nginx!\n');
  assert.equal(await curl(port), 'Welcome to nginx!\n');
  writeFileSync(join(mounts[0].Source, 'index.html'), 'huayu1234\n');
  assert.equal(await curl(port), 'huayu1234\n');
});

test('volume create + -v name:/path', { skip }, async () => {
  await ok(['volume', 'create', 'cyhuayu']);
  assert.match(await ok(['volume', 'ls']), /local\s+cyhuayu/);
  const port = await web('cynginx3', ['-v', `cyhuayu:${HTML}/`]);
  assert.equal(await curl(port), 'Welcome to nginx!\n');
  assert.equal(readFileSync(join(root, 'volumes/cyhuayu/_data/index.html'), 'utf8'), 'Welcome to nginx!\n');
});

test('three containers share one host directory', { skip }, async () => {
  const html = join(dir, 'shared');
  mkdirSync(html, { recursive: true });
  writeFileSync(join(html, 'index.html'), 'shared page\n');
  const ports = [];
  for (const name of ['apache1', 'apache2', 'apache3']) ports.push(await web(name, ['-v', `${html}:${HTML}/`]));
  for (const p of ports) assert.equal(await curl(p), 'shared page\n');
  writeFileSync(join(html, 'index.html'), 'changed once\n');
  for (const p of ports) assert.equal(await curl(p), 'changed once\n');
  await ok(['rm', '-f', 'apache1', 'apache2', 'apache3']);
});

test('--volumes-from a created-only volume container', { skip }, async () => {
  const html = join(dir, 'vc');
  mkdirSync(html, { recursive: true });
  writeFileSync(join(html, 'index.html'), 'from volume container\n');
  await ok(['create', '--name', 'cy_data', '-v', `${html}:${HTML}`, 'busybox']);
  assert.equal(JSON.parse(await ok(['inspect', 'cy_data']))[0].State.Status, 'created');
  const ports = [];
  for (const name of ['vf1', 'vf2', 'vf3']) ports.push(await web(name, ['--volumes-from', 'cy_data']));
  const mounts = JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', 'vf1']));
  assert.equal(mounts[0].Source, html);
  for (const p of ports) assert.equal(await curl(p), 'from volume container\n');
  writeFileSync(join(html, 'index.html'), 'welcome to huayuedu\n');
  for (const p of ports) assert.equal(await curl(p), 'welcome to huayuedu\n');
  await ok(['rm', '-f', 'vf1', 'vf2', 'vf3']);
});

test('data-packed volume container: image data + VOLUME, created, then --volumes-from', { skip }, async () => {
  await ok(['run', '--network', 'none', '--name', 'packer', 'busybox', 'sh', '-c', `mkdir -p ${HTML} && echo packed huayu > ${HTML}/index.html`]);
  await ok(['commit', '-c', `VOLUME ${HTML}`, '-c', 'CMD ["/bin/sh"]', 'packer', 'cy_hy']);
  await ok(['rm', 'packer']);
  await ok(['create', '--name', 'cy_data123', 'cy_hy']);
  const port = await web('cynginx7', ['--volumes-from', 'cy_data123']);
  assert.equal(await curl(port), 'packed huayu\n');
  const [m] = JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', 'cynginx7']));
  assert.equal(m.Type, 'volume');
  assert.match(m.Name, /^[0-9a-f]{64}$/);
});

test('rm -f -v removes the anonymous volume and keeps the named one', { skip }, async () => {
  await ok(['run', '-d', '--name', 'both', '--network', 'none', '-v', '/anon', '-v', 'keepnamed:/named', 'busybox', 'sleep', '100']);
  const mounts: Array<{ Name: string; Destination: string }> = JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', 'both']));
  const anon = mounts.find((m) => m.Destination === '/anon')!.Name;
  await ok(['rm', '-f', '-v', 'both']);
  const names = (await ok(['volume', 'ls', '-q'])).split('\n');
  assert.ok(!names.includes(anon), 'anonymous volume removed');
  assert.ok(names.includes('keepnamed'), 'named volume kept');
});
