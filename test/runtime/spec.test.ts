// OCI spec generation and Docker-style user resolution. Pure file work: no root needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { NotFoundError } from '../../src/errors.js';
import {
  DEFAULT_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  buildExecProcess,
  buildSpec,
  containerEnv,
  effectiveCapabilities,
} from '../../src/runtime/spec.js';
import { resolveInRoot, resolveUser } from '../../src/runtime/user.js';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/bin/false',
  'app:x:1000:1000:app user:/home/app:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
  '',
].join('\n');
const GROUP = ['root:x:0:', 'wheel:x:10:root', 'staff:x:50:app,daemon', 'app:x:1000:', 'nogroup:x:65534:', ''].join('\n');

async function withRootfs(fn: (root: string) => Promise<void>, files: Record<string, string> = { 'etc/passwd': PASSWD, 'etc/group': GROUP }): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'strata-spec-'));
  try {
    for (const [name, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(root, name)), { recursive: true });
      await writeFile(path.join(root, name), content);
    }
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test('users resolve like docker run -u', async () => {
  await withRootfs(async (root) => {
    // No -u: root, with root's memberships from /etc/group.
    assert.deepEqual(await resolveUser(root, undefined), { uid: 0, gid: 0, additionalGids: [0, 10], home: '/root' });
    assert.deepEqual(await resolveUser(root, 'app'), { uid: 1000, gid: 1000, additionalGids: [1000, 50], home: '/home/app' });
    // A number that has an entry uses it; one without runs with gid 0 and HOME=/.
    assert.deepEqual(await resolveUser(root, '1000'), { uid: 1000, gid: 1000, additionalGids: [1000, 50], home: '/home/app' });
    assert.deepEqual(await resolveUser(root, '4242'), { uid: 4242, gid: 0, additionalGids: [0], home: '/' });
    // An explicit group means exactly that group: no memberships.
    assert.deepEqual(await resolveUser(root, '1000:1000'), { uid: 1000, gid: 1000, additionalGids: [1000], home: '/home/app' });
    assert.deepEqual(await resolveUser(root, 'app:staff'), { uid: 1000, gid: 50, additionalGids: [50], home: '/home/app' });
    assert.deepEqual(await resolveUser(root, 'app', ['wheel', '7']), { uid: 1000, gid: 1000, additionalGids: [1000, 50, 10, 7], home: '/home/app' });
    await assert.rejects(resolveUser(root, 'ghost'), (err: unknown) => {
      assert.ok(err instanceof NotFoundError);
      assert.equal(err.message, 'unable to find user ghost: no matching entries in passwd file');
      return true;
    });
    await assert.rejects(resolveUser(root, 'app:ghosts'), /unable to find group ghosts: no matching entries in group file/);
    await assert.rejects(resolveUser(root, '99999999999'), /out of range/);
  });
});

test('an image without /etc/passwd still runs numeric users', async () => {
  await withRootfs(async (root) => {
    assert.deepEqual(await resolveUser(root, undefined), { uid: 0, gid: 0, additionalGids: [0], home: '/' });
    assert.deepEqual(await resolveUser(root, '1000:1000'), { uid: 1000, gid: 1000, additionalGids: [1000], home: '/' });
    await assert.rejects(resolveUser(root, 'app'), NotFoundError);
  }, {});
});

test('/etc/passwd symlinks are followed inside the rootfs, never out of it', async () => {
  await withRootfs(async (root) => {
    // An absolute link and a ../ climb both stay in the rootfs.
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await mkdir(path.join(root, 'real'), { recursive: true });
    await writeFile(path.join(root, 'real', 'passwd'), 'evil:x:7:7::/evil:/bin/sh\n');
    await symlink('/../../../../real/passwd', path.join(root, 'etc', 'passwd'));
    // On the host this would be /etc/group; in the rootfs it is <root>/real/group, absent.
    await symlink('../../../../../../real/group', path.join(root, 'etc', 'group'));
    assert.equal(await resolveInRoot(root, '/etc/passwd'), path.join(root, 'real', 'passwd'));
    assert.equal(await resolveInRoot(root, '/etc/group'), path.join(root, 'real', 'group'));
    assert.deepEqual(await resolveUser(root, 'evil'), { uid: 7, gid: 7, additionalGids: [7], home: '/evil' });
    await symlink('loop', path.join(root, 'loop'));
    await assert.rejects(resolveInRoot(root, '/loop/x'), /too many levels of symbolic links/);
  }, {});
});

test('the spec carries Docker defaults', async () => {
  await withRootfs(async (root) => {
    const spec = await buildSpec({
      id: 'abc',
      rootfs: root,
      args: ['sh', '-c', 'id'],
      env: ['FOO=bar', 'PATH=/bin'],
      hostname: 'h1',
      user: 'app',
      cwd: '/tmp',
      readonlyRootfs: true,
      mounts: [
        { source: '/tmp/x/hosts', destination: '/etc/hosts' },
        { source: '/tmp/v', destination: '/data/sub', readonly: true },
        { source: '/tmp/w', destination: '/data' },
      ],
    });
    assert.equal(spec.ociVersion, '1.0.2-dev');
    assert.deepEqual(spec.root, { path: root, readonly: true });
    assert.equal(spec.hostname, 'h1');
    assert.deepEqual(spec.process.user, { uid: 1000, gid: 1000, additionalGids: [1000, 50] });
    assert.equal(spec.process.cwd, '/tmp');
    assert.equal(spec.process.noNewPrivileges, false);
    assert.deepEqual(spec.process.env, ['PATH=/bin', 'HOSTNAME=h1', 'FOO=bar']);
    assert.deepEqual(spec.process.capabilities.bounding, [...DEFAULT_CAPABILITIES]);
    assert.equal(spec.process.capabilities.inheritable, undefined);
    assert.equal(spec.process.rlimits?.[0]?.type, 'RLIMIT_NOFILE');
    assert.deepEqual(
      spec.mounts.map((m) => m.destination),
      ['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm', '/data', '/etc/hosts', '/data/sub'],
    );
    const shm = spec.mounts.find((m) => m.destination === '/dev/shm')!;
    assert.deepEqual(shm.options, ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k']);
    assert.deepEqual(spec.mounts.find((m) => m.destination === '/data/sub')!.options, ['rbind', 'rprivate', 'ro']);
    assert.deepEqual(spec.linux.namespaces.map((n) => n.type), ['pid', 'network', 'ipc', 'uts', 'mount']);
    assert.equal(spec.linux.cgroupsPath, '/strata/abc');
    assert.deepEqual(spec.linux.maskedPaths, [...DEFAULT_MASKED_PATHS]);
    assert.ok(spec.linux.readonlyPaths.includes('/proc/sys'));
    assert.deepEqual(spec.linux.resources.devices[0], { allow: false, access: 'rwm' });
    assert.equal((spec.linux as Record<string, unknown>).seccomp, undefined);
  });
});

test('namespaces, shm and capabilities follow the options', async () => {
  await withRootfs(async (root) => {
    const host = await buildSpec({ id: 'a', rootfs: root, args: ['true'], network: 'host', utsMode: 'host', hostname: 'ignored', shm: { path: '/tmp/shm' } });
    assert.deepEqual(host.linux.namespaces.map((n) => n.type), ['pid', 'ipc', 'mount']);
    assert.equal(host.hostname, undefined);
    assert.deepEqual(host.mounts.find((m) => m.destination === '/dev/shm'), {
      destination: '/dev/shm', type: 'bind', source: '/tmp/shm', options: ['rbind', 'nosuid', 'noexec', 'nodev'],
    });
    const joined = await buildSpec({ id: 'a', rootfs: root, args: ['true'], network: { path: '/run/netns/x' } });
    assert.deepEqual(joined.linux.namespaces.find((n) => n.type === 'network'), { type: 'network', path: '/run/netns/x' });
    const volumeShm = await buildSpec({ id: 'a', rootfs: root, args: ['true'], mounts: [{ source: '/v', destination: '/dev/shm' }] });
    assert.equal(volumeShm.mounts.filter((m) => m.destination === '/dev/shm').length, 1);
    assert.equal(volumeShm.mounts.find((m) => m.destination === '/dev/shm')!.source, '/v');

    assert.deepEqual(effectiveCapabilities(['sys_admin'], ['NET_RAW', 'cap_mknod']).filter((c) => !DEFAULT_CAPABILITIES.includes(c)), ['CAP_SYS_ADMIN']);
    assert.ok(!effectiveCapabilities([], ['NET_RAW']).includes('CAP_NET_RAW'));
    assert.deepEqual(effectiveCapabilities(['chown'], ['ALL']), ['CAP_CHOWN']);
    assert.ok(effectiveCapabilities(['ALL']).includes('CAP_SYS_ADMIN'));
    assert.throws(() => effectiveCapabilities(['NOPE']), /unknown capability/);
    await assert.rejects(buildSpec({ id: 'a', rootfs: root, args: [] }), /no command specified/);
    await assert.rejects(buildSpec({ id: 'a', rootfs: root, args: ['x'], cwd: 'rel' }), /needs to be an absolute path/);
  });
});

test('environment merging follows dockerd', () => {
  assert.deepEqual(containerEnv([], 'h', false), ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=h']);
  assert.deepEqual(containerEnv(['A=1', 'HOSTNAME=mine', 'A=2'], 'h', true), [
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=mine', 'TERM=xterm', 'A=2',
  ]);
});

test('exec processes inherit the container process and override what was asked', async () => {
  await withRootfs(async (root) => {
    const spec = await buildSpec({ id: 'a', rootfs: root, args: ['sleep', '1'], env: ['A=1'], hostname: 'h' });
    const p = await buildExecProcess(spec, { args: ['id'], user: 'app', env: ['A=2', 'B=3'], cwd: '/home' });
    assert.deepEqual(p.args, ['id']);
    assert.deepEqual(p.user, { uid: 1000, gid: 1000, additionalGids: [1000, 50] });
    assert.equal(p.cwd, '/home');
    assert.deepEqual(p.env.slice(1), ['HOSTNAME=h', 'A=2', 'B=3']);
    assert.deepEqual(p.capabilities, spec.process.capabilities);
    const same = await buildExecProcess(spec, { args: ['true'] });
    assert.deepEqual(same.user, spec.process.user);
    assert.equal(same.cwd, '/');
  });
});
