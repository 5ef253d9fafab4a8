/**
 * Containers against a private real dockerd (Debian docker.io) on its own data root: the
 * same operations give the same `diff` lines and the same inspect `Mounts`; a strata commit
 * saved and loaded into docker runs the same way there.
 */
import { runcSkipReason } from '../helpers/containers.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Dockerd, dockerSkipReason } from '../helpers/docker.js';
import { buildBusybox, buildBusyboxSkipReason } from '../helpers/fixtures.js';
import { makeTempRoot, releaseTempRoot, rootSkipReason, strata, strataOk, strataSkipReason } from '../helpers/strata-cli.js';

const skip = strataSkipReason() ?? rootSkipReason() ?? buildBusyboxSkipReason() ?? dockerSkipReason() ?? runcSkipReason();

let dir: string;
let root: string;
let docker: Dockerd;
const ok = async (args: string[]) => (await strataOk(args, { root })).stdout.trim();

before(async () => {
  if (skip) return;
  dir = makeTempRoot('ctrd-');
  root = join(dir, 'root');
  const tar = join(dir, 'busybox.tar');
  buildBusybox(tar);
  await ok(['load', '-i', tar]);
  docker = await Dockerd.start();
  await docker.ok(['load', '-i', tar]);
});

after(async () => {
  if (skip) return;
  const ids = (await strata(['ps', '-aq'], { root })).stdout.split('\n').filter(Boolean);
  if (ids.length > 0) await strata(['rm', '-f', ...ids], { root });
  await docker?.stop();
  releaseTempRoot(dir);
});

const SCRIPT = [
  'mkdir -p /app/sub && echo v1 > /app/sub/data',
  'rm /bin/zcat',
  'echo x >> /etc/group',
  'chmod 700 /home',
  'rm -rf /var && mkdir /var && touch /var/new',
  'ln -s /app/sub/data /link',
  'touch /etc/passwd',
].join(' && ');

test('diff: the same operations give the same lines as docker diff', { skip }, async () => {
  await ok(['run', '--network', 'none', '--name', 'ops', 'busybox', 'sh', '-c', SCRIPT]);
  await docker.ok(['run', '--network', 'none', '--name', 'ops', 'busybox', 'sh', '-c', SCRIPT]);
  const mine = (await ok(['diff', 'ops'])).split('\n').sort();
  const theirs = (await docker.ok(['diff', 'ops'])).stdout.trim().split('\n').sort();
  assert.deepEqual(mine, theirs);
});

test('inspect Mounts: same keys, types and values (ids and data roots aside)', { skip }, async () => {
  const host = join(dir, 'host');
  mkdirSync(host, { recursive: true });
  writeFileSync(join(host, 'f'), 'x');
  const args = [
    'create', '--network', 'none', '--name', 'mounts',
    '-v', '/anon', '-v', 'named1:/named', '-v', `${host}:/bind:ro`, '-v', `${host}:/bindrw`,
    '--mount', `type=bind,src=${host},dst=/mbind`, '--mount', 'type=volume,dst=/mvol', '--mount', 'type=volume,src=named2,dst=/mnamed,readonly',
    'busybox', 'true',
  ];
  await ok(args);
  await docker.ok(args);
  const normalize = (mounts: Array<Record<string, unknown>>, dataRoot: string) =>
    mounts
      .map((m) => {
        const out: Record<string, unknown> = { ...m };
        if (typeof out.Name === 'string' && /^[0-9a-f]{64}$/.test(out.Name)) out.Name = '<anon>';
        if (typeof out.Source === 'string') out.Source = out.Source.replace(dataRoot, '<root>').replace(/[0-9a-f]{64}/, '<anon>');
        return JSON.stringify(out);
      })
      .sort();
  const mine = JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', 'mounts']));
  const theirs = JSON.parse((await docker.ok(['inspect', '-f', '{{json .Mounts}}', 'mounts'])).stdout);
  assert.deepEqual(normalize(mine, root), normalize(theirs, docker.dataRoot));
  // `volume inspect` of a volume made by a mount and of ones made by `volume create`.
  await ok(['volume', 'create', 'made']);
  await docker.ok(['volume', 'create', 'made']);
  await ok(['volume', 'create', '--label', 'a=b', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=1m', 'withopts']);
  await docker.ok(['volume', 'create', '--label', 'a=b', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=1m', 'withopts']);
  for (const name of ['named1', 'made', 'withopts']) {
    const [mine] = JSON.parse(await ok(['volume', 'inspect', name]));
    const [theirs] = JSON.parse((await docker.ok(['volume', 'inspect', name])).stdout);
    for (const v of [mine, theirs]) {
      v.CreatedAt = '<time>';
      v.Mountpoint = v.Mountpoint.replace(root, '<root>').replace(docker.dataRoot, '<root>');
    }
    assert.deepEqual(mine, theirs, name);
  }
});

test('commit in strata, save, load into docker: runs the same there', { skip }, async () => {
  await ok(['run', '--network', 'none', '--name', 'tocommit', 'busybox', 'sh', '-c', 'echo committed-content > /msg']);
  const id = await ok(['commit', '-c', 'CMD ["cat","/msg"]', 'tocommit', 'fromstrata:v1']);
  const tar = join(dir, 'committed.tar');
  await ok(['save', '-o', tar, 'fromstrata:v1']);
  await docker.ok(['load', '-i', tar]);
  const dockerId = (await docker.ok(['image', 'inspect', '-f', '{{.Id}}', 'fromstrata:v1'])).stdout.trim();
  assert.equal(dockerId, id, 'same image ID in docker');
  const out = (await docker.ok(['run', '--rm', '--network', 'none', 'fromstrata:v1'])).stdout;
  assert.equal(out, 'committed-content\n');
  assert.equal(await ok(['run', '--rm', '--network', 'none', 'fromstrata:v1']), 'committed-content');
});
