// Volumes with local driver options really mount on `_data`, with a mount-user count that
// lives on disk (so another process can drop the last user), and removal never reaches
// through a mount into the device's data. Needs root.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';

import { native } from '../../src/native/addon.js';
import { mountsUnder, unmount } from '../../src/sys/mount.js';
import { VolumeService } from '../../src/volumes/service.js';

const rootOnly = process.getuid?.() === 0 ? {} : { skip: 'needs root (mount)' };
const TMPFS_MAGIC = 0x01021994;

async function fresh(t: TestContext): Promise<{ svc: VolumeService; tmp: string }> {
  const tmp = await realpath(await mkdtemp(path.join(os.tmpdir(), 'strata-volmount-')));
  t.after(async () => {
    // Whatever a failed assertion left mounted must go before the tree can be removed.
    for (const m of await mountsUnder(tmp)) await unmount(m, { detach: true });
    await rm(tmp, { recursive: true, force: true });
  });
  return { svc: await VolumeService.open({ dataRoot: path.join(tmp, 'root') }), tmp };
}

async function mountCount(p: string): Promise<number> {
  return (await mountsUnder(p)).filter((m) => m === p).length;
}

test('type=tmpfs: first user mounts, last user unmounts, across service instances', rootOnly, async (t) => {
  const { svc, tmp } = await fresh(t);
  await svc.create({ name: 'scratch', options: { type: 'tmpfs', device: 'tmpfs', o: 'size=64m,mode=1777' } });
  const data = svc.mountpointOf('scratch');
  assert.equal(await mountCount(data), 0);

  assert.equal(await svc.mount('scratch', 'c1'), data);
  assert.equal(native().statfs(data).type, TMPFS_MAGIC);
  await writeFile(path.join(data, 'f'), 'in tmpfs');
  await svc.mount('scratch', 'c2');
  await svc.mount('scratch', 'c2'); // the same user twice counts once
  assert.equal(await mountCount(data), 1);
  assert.deepEqual(await svc.mountUsers('scratch'), ['c1', 'c2']);
  await assert.rejects(svc.remove('scratch'), { name: 'ConflictError', message: 'remove scratch: volume has active mounts' });

  // A second process opening the same root sees the users recorded by the first.
  const other = await VolumeService.open({ dataRoot: path.join(tmp, 'root') });
  await other.unmount('scratch', 'c1');
  assert.equal(await mountCount(data), 1);
  assert.equal(await readFile(path.join(data, 'f'), 'utf8'), 'in tmpfs');
  await other.unmount('scratch', 'c2');
  assert.equal(await mountCount(data), 0);
  assert.deepEqual(await readdir(data), []);
  await other.unmount('scratch', 'c2'); // unknown user: nothing to do

  // Plain volumes need no mount and record no users.
  await svc.create({ name: 'plain' });
  assert.equal(await svc.mount('plain', 'c1'), svc.mountpointOf('plain'));
  assert.deepEqual(await svc.mountUsers('plain'), []);
  await svc.remove('scratch', { trash: false });
});

test('type=none,o=bind: the device shows through _data; removal never deletes the host data', rootOnly, async (t) => {
  const { svc, tmp } = await fresh(t);
  const host = path.join(tmp, 'host-data');
  await mkdir(host);
  await writeFile(path.join(host, 'index.html'), 'hello');
  await svc.create({ name: 'hostvol', options: { type: 'none', o: 'bind', device: host } });
  const data = svc.mountpointOf('hostvol');

  await svc.mount('hostvol', 'c1');
  await svc.mount('hostvol', 'c2');
  assert.equal(await readFile(path.join(data, 'index.html'), 'utf8'), 'hello');
  await writeFile(path.join(data, 'from-container'), 'x');
  assert.equal(await readFile(path.join(host, 'from-container'), 'utf8'), 'x');
  await svc.unmount('hostvol', 'c2');
  assert.equal(await mountCount(data), 1);
  await svc.unmount('hostvol', 'c1');
  assert.equal(await mountCount(data), 0);
  assert.deepEqual(await readdir(data), []);

  // A crash after mounting leaves _data mounted with no recorded user: removal detaches it
  // first, so neither the trash nor a purge can reach the host files.
  await svc.mount('hostvol', 'c3');
  await rm(path.join(svc.root, 'hostvol', 'mounts', 'c3'));
  await svc.remove('hostvol');
  assert.equal(await mountCount(data), 0);
  await svc.purgeTrash();
  assert.deepEqual((await readdir(host)).sort(), ['from-container', 'index.html']);

  // Read-only through the options, like `mount -o bind,ro`.
  await svc.create({ name: 'hostro', options: { type: 'none', o: 'bind,ro', device: host } });
  await svc.mount('hostro', 'c1');
  await assert.rejects(writeFile(path.join(svc.mountpointOf('hostro'), 'nope'), 'x'), { code: 'EROFS' });
  await svc.unmount('hostro', 'c1');

  // A mount failure is Docker's error, and no user is recorded.
  await svc.create({ name: 'broken', options: { type: 'none', o: 'bind', device: path.join(tmp, 'missing') } });
  await assert.rejects(svc.mount('broken', 'c1'), { message: /^failed to mount local volume: mount .*missing:.*_data, data: bind: ENOENT/ });
  assert.deepEqual(await svc.mountUsers('broken'), []);
});

test('a stale mount-user record (reboot) does not block removal or remounting', rootOnly, async (t) => {
  const { svc } = await fresh(t);
  await svc.create({ name: 'tv', options: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' } });
  await svc.mount('tv', 'c1');
  // Simulate a reboot: the mount is gone, the record remains.
  await unmount(svc.mountpointOf('tv'));
  assert.equal(await mountCount(svc.mountpointOf('tv')), 0);
  await svc.mount('tv', 'c2');
  assert.equal(await mountCount(svc.mountpointOf('tv')), 1);
  await svc.unmount('tv', 'c2');
  // c1 is still recorded, so the mount stays, as Docker keeps it for a live user.
  assert.equal(await mountCount(svc.mountpointOf('tv')), 1);
  await svc.unmount('tv', 'c1');
  assert.equal(await mountCount(svc.mountpointOf('tv')), 0);
  await svc.mount('tv', 'c3');
  await unmount(svc.mountpointOf('tv'));
  await svc.remove('tv');
  await svc.restore('tv');
  assert.deepEqual(await svc.mountUsers('tv'), []);
});

/** Why a kernel NFS server + client cannot run here, or undefined if they can. */
function nfsUnavailable(): string | undefined {
  const filesystems = readFileSync('/proc/filesystems', 'utf8');
  const missing = ['nfs', 'nfsd'].filter((fs) => !new RegExp(`\\s${fs}$`, 'm').test(filesystems));
  if (missing.length > 0) {
    let config = '';
    try {
      config = execFileSync('sh', ['-c', 'zcat /proc/config.gz 2>/dev/null | grep -E "^(# )?CONFIG_(NETWORK_FILESYSTEMS|NFSD|NFS_FS|MODULES)[ =]"'], { encoding: 'utf8' }).trim().replace(/\n/g, ', ');
    } catch {
      // No config exposed; the filesystem list is reason enough.
    }
    return `kernel lacks ${missing.join(' and ')} in /proc/filesystems${config ? ` (${config})` : ''}; modules cannot be loaded, so neither the kernel NFS server nor the client can run`;
  }
  for (const tool of ['/usr/sbin/exportfs', '/usr/sbin/rpc.nfsd', '/usr/sbin/rpc.mountd', '/usr/sbin/rpcbind']) {
    if (!existsSync(tool)) return `${tool} missing (apt-get install nfs-kernel-server)`;
  }
  return undefined;
}

const nfsSkip = process.getuid?.() !== 0 ? 'needs root' : nfsUnavailable();

test('type=nfs against nfs-kernel-server on 127.0.0.1', { skip: nfsSkip ?? false }, async (t) => {
  const { svc, tmp } = await fresh(t);
  const exported = path.join(tmp, 'export');
  await mkdir(exported);
  await writeFile(path.join(exported, 'seed'), 'from server');
  const started: ChildProcess[] = [];
  t.after(() => {
    execFileSync('exportfs', ['-u', `127.0.0.1:${exported}`], { stdio: 'ignore' });
    execFileSync('rpc.nfsd', ['0'], { stdio: 'ignore' });
    for (const p of started) if (p.pid !== undefined) process.kill(p.pid);
  });
  if (!existsSync('/proc/fs/nfsd/threads')) execFileSync('mount', ['-t', 'nfsd', 'nfsd', '/proc/fs/nfsd']);
  started.push(spawn('rpcbind', ['-f', '-w'], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 500));
  execFileSync('exportfs', ['-o', 'rw,no_root_squash,no_subtree_check,fsid=0', `127.0.0.1:${exported}`]);
  started.push(spawn('rpc.mountd', ['-F'], { stdio: 'ignore' }));
  execFileSync('rpc.nfsd', ['4']);

  await svc.create({ name: 'nfsvol', options: { type: 'nfs', o: 'addr=127.0.0.1,rw,nfsvers=4.2', device: ':/' } });
  await svc.mount('nfsvol', 'c1');
  await svc.mount('nfsvol', 'c2');
  const data = svc.mountpointOf('nfsvol');
  assert.equal(await readFile(path.join(data, 'seed'), 'utf8'), 'from server');
  await writeFile(path.join(data, 'from-client'), 'x');
  assert.equal(await readFile(path.join(exported, 'from-client'), 'utf8'), 'x');
  await svc.unmount('nfsvol', 'c1');
  assert.equal(await mountCount(data), 1);
  await svc.unmount('nfsvol', 'c2');
  assert.equal(await mountCount(data), 0);
});

test('NFS availability is recorded', () => {
  // Keeps the reason visible in every test run's output, not only as a skip message.
  const reason = nfsUnavailable();
  if (reason) console.log(`# NFS test skipped: ${reason}`);
});
