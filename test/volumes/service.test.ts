// VolumeService against a real temp data root: Docker's layout, JSON, messages, references,
// prune rules, the trash, and cross-process use of one root.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, readdir, realpath, rm, stat, symlink, link, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { mountsUnder, unmount } from '../../src/sys/mount.js';
import { formatRFC3339 } from '../../src/volumes/go-compat.js';
import { VolumeService, type VolumeServiceOptions } from '../../src/volumes/service.js';

const NAME_CHARS_MSG =
  'includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path';
const ANON = 'com.docker.volume.anonymous';

async function fresh(t: TestContext, options: Partial<VolumeServiceOptions> = {}): Promise<{ svc: VolumeService; tmp: string }> {
  const tmp = await realpath(await mkdtemp(path.join(os.tmpdir(), 'strata-volumes-')));
  t.after(async () => {
    for (const m of await mountsUnder(tmp)) await unmount(m, { detach: true });
    await rm(tmp, { recursive: true, force: true });
  });
  return { svc: await VolumeService.open({ dataRoot: path.join(tmp, 'root'), ...options }), tmp };
}

async function mode(p: string): Promise<number> {
  return (await lstat(p)).mode & 0o7777;
}

test('create: Docker layout, modes, metadata and opts.json bytes', async (t) => {
  const { svc } = await fresh(t);
  assert.equal(await mode(svc.root), 0o701);
  const v = await svc.create({ name: 'myvol', labels: {}, options: {} });
  const dir = path.join(svc.root, 'myvol');
  assert.equal(v.Mountpoint, path.join(dir, '_data'));
  assert.equal(await mode(dir), 0o701);
  assert.equal(await mode(path.join(dir, '_data')), 0o755);
  assert.equal(await mode(path.join(dir, 'strata.json')), 0o600);
  assert.deepEqual((await readdir(dir)).sort(), ['_data', 'mounts', 'refs', 'strata.json']);
  const meta = JSON.parse(await readFile(path.join(dir, 'strata.json'), 'utf8'));
  assert.deepEqual(Object.keys(meta), ['Name', 'Driver', 'Labels', 'Options', 'CreatedAt']);
  assert.deepEqual([meta.Name, meta.Driver, meta.Labels, meta.Options], ['myvol', 'local', {}, {}]);
  // Nothing is staged or left over.
  assert.deepEqual(await readdir(path.join(svc.root, '.staging')), []);

  await svc.create({ name: 'tmpvol', options: { type: 'tmpfs', device: 'tmpfs', o: 'size=64m,uid=1000' } });
  const opts = path.join(svc.root, 'tmpvol', 'opts.json');
  assert.equal(await readFile(opts, 'utf8'), '{"MountType":"tmpfs","MountOpts":"size=64m,uid=1000","MountDevice":"tmpfs","Quota":{"Size":0}}');
  assert.equal(await mode(opts), 0o600);
});

test('inspect: Docker\'s exact JSON shape, key order, null vs {} and CreatedAt from ctime', async (t) => {
  const { svc } = await fresh(t);
  const created = await svc.create({ name: 'myvol', labels: {}, options: {} });
  const ctime = (await stat(path.join(svc.root, 'myvol'))).ctime;
  const mp = path.join(svc.root, 'myvol', '_data');
  const expected = `{"CreatedAt":"${formatRFC3339(ctime)}","Driver":"local","Labels":{},"Mountpoint":"${mp}","Name":"myvol","Options":{},"Scope":"local"}`;
  assert.equal(JSON.stringify(created), expected);
  assert.equal(JSON.stringify(await svc.inspect('myvol')), expected);
  assert.match(created.CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/);

  // Implicit creation (run -v name:/x) sends no maps: null, null.
  const implicit = await svc.create({ name: 'implicit' });
  assert.equal(implicit.Labels, null);
  assert.equal(implicit.Options, null);
  assert.match(JSON.stringify(implicit), /"Labels":null,"Mountpoint":"[^"]+","Name":"implicit","Options":null,"Scope":"local"}$/);

  // Labels and options come out sorted, as Go marshals maps.
  const labelled = await svc.create({ name: 'labelled', labels: { zeta: '1', alpha: '2', Beta: '3' }, options: { type: 'tmpfs', device: 'tmpfs' } });
  assert.match(JSON.stringify(labelled), /"Labels":\{"Beta":"3","alpha":"2","zeta":"1"\},.*"Options":\{"device":"tmpfs","type":"tmpfs"\}/);

  // Re-creating returns the existing volume; the new labels are ignored.
  const again = await svc.create({ name: 'myvol', labels: { new: 'x' }, options: { bogus: 'y' } });
  assert.deepEqual(again, await svc.inspect('myvol'));
  assert.deepEqual(again.Labels, {});

  await assert.rejects(svc.inspect('nope'), { name: 'NotFoundError', message: 'get nope: no such volume' });
  await assert.rejects(svc.inspect('../etc'), { name: 'NotFoundError', message: 'get ../etc: no such volume' });
});

test('anonymous volumes: 64-hex name, Docker 23+ label, null options', async (t) => {
  const { svc } = await fresh(t);
  const v = await svc.create({});
  assert.match(v.Name, /^[0-9a-f]{64}$/);
  assert.deepEqual(v.Labels, { [ANON]: '' });
  assert.equal(v.Options, null);
  const withLabels = await svc.create({ labels: { app: 'db' } });
  assert.deepEqual(withLabels.Labels, { app: 'db', [ANON]: '' });
  assert.equal((await svc.get(v.Name)).anonymous, true);
  assert.equal((await svc.get((await svc.create({ name: 'named' })).Name)).anonymous, false);
});

test('names and options are validated with Docker\'s messages', async (t) => {
  const { svc } = await fresh(t);
  const bad: Array<[string, Record<string, string> | undefined, string, string]> = [
    ['a', undefined, 'InvalidArgumentError', 'create a: volume name is too short, names should be at least two alphanumeric characters'],
    ['a/b', undefined, 'InvalidArgumentError', `create a/b: "a/b" ${NAME_CHARS_MSG}`],
    ['-ab', undefined, 'InvalidArgumentError', `create -ab: "-ab" ${NAME_CHARS_MSG}`],
    ['.ab', undefined, 'InvalidArgumentError', `create .ab: ".ab" ${NAME_CHARS_MSG}`],
    ['my vol', undefined, 'InvalidArgumentError', `create my vol: "my vol" ${NAME_CHARS_MSG}`],
    ['été', undefined, 'InvalidArgumentError', `create été: "été" ${NAME_CHARS_MSG}`],
    ['v1', { foo: 'bar' }, 'InvalidArgumentError', 'create v1: invalid option: "foo"'],
    ['v1', { type: 'tmpfs' }, 'InvalidArgumentError', 'create v1: missing required option: "device"'],
    ['v1', { device: 'tmpfs' }, 'InvalidArgumentError', 'create v1: missing required option: "type"'],
    ['v1', { o: 'size=1m' }, 'InvalidArgumentError', 'create v1: missing required option: "device"'],
    ['v1', { o: 'size=1m', device: 'tmpfs' }, 'InvalidArgumentError', 'create v1: missing required option: "type"'],
    ['v1', { o: 'size=1m', type: 'tmpfs' }, 'InvalidArgumentError', 'create v1: missing required option: "device"'],
    ['v1', { size: '10m' }, 'InvalidArgumentError', 'create v1: quota size requested but no quota support'],
    ['v1', { size: 'huge' }, 'InvalidArgumentError', "create v1: invalid size: 'huge'"],
    ['v1', { type: 'cifs', device: '//srv:445/share', o: 'user=x' }, 'InvalidArgumentError', "create v1: port not allowed in CIFS device URL, include 'port' in 'o='"],
  ];
  for (const [name, options, errName, message] of bad) {
    await assert.rejects(svc.create({ name, options }), { name: errName, message }, `${name} ${JSON.stringify(options)}`);
  }
  await assert.rejects(svc.create({ name: 'x1', driver: 'foo' }), { name: 'NotFoundError', message: 'create x1: error looking up volume plugin foo: plugin "foo" not found' });
  await assert.rejects(svc.create({ name: 'x'.repeat(300) }), { name: 'InvalidArgumentError', message: /file name too long/ });
  // Nothing of the refused requests was left behind.
  assert.deepEqual(await svc.list(), []);
  assert.deepEqual(await readdir(path.join(svc.root, '.staging')), []);

  for (const name of ['ab', '0a', 'a.b-c_d', 'A1', 'x'.repeat(200)]) await svc.create({ name });
  const good: Array<Record<string, string>> = [{ size: '0' }, { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' }, { type: 'none', device: '/srv', o: 'bind' }, { type: 'cifs', device: '//srv/share' }];
  for (const options of good) {
    await svc.create({ name: `ok${Object.keys(options).join('')}${Object.values(options).length}`, options });
  }
});

test('list: natural order and the dangling, name, driver and label filters', async (t) => {
  const { svc } = await fresh(t);
  for (const name of ['vol10', 'vol2', 'vol1', 'data']) await svc.create({ name });
  await svc.create({ name: 'web', labels: { env: 'prod', tier: 'front' } });
  await svc.create({ name: 'web2', labels: { env: 'dev' } });
  await svc.addReference('vol1', 'c1');
  await svc.addReference('web', 'c2');
  const names = async (filters?: Record<string, string[]>): Promise<string[]> => (await svc.list({ filters })).map((v) => v.Name);

  assert.deepEqual(await names(), ['data', 'vol1', 'vol2', 'vol10', 'web', 'web2']);
  assert.deepEqual(await names({ dangling: ['true'] }), ['data', 'vol2', 'vol10', 'web2']);
  assert.deepEqual(await names({ dangling: ['1'] }), ['data', 'vol2', 'vol10', 'web2']);
  assert.deepEqual(await names({ dangling: ['false'] }), ['vol1', 'web']);
  assert.deepEqual(await names({ name: ['vol'] }), ['vol1', 'vol2', 'vol10']);
  assert.deepEqual(await names({ name: ['^web$'] }), ['web']);
  assert.deepEqual(await names({ name: ['data', 'vol2'] }), ['data', 'vol2']);
  assert.deepEqual(await names({ driver: ['local'] }), ['data', 'vol1', 'vol2', 'vol10', 'web', 'web2']);
  assert.deepEqual(await names({ driver: ['other'] }), []);
  assert.deepEqual(await names({ label: ['env'] }), ['web', 'web2']);
  assert.deepEqual(await names({ label: ['env=prod'] }), ['web']);
  assert.deepEqual(await names({ label: ['env', 'tier=front'] }), ['web']);
  assert.deepEqual(await names({ label: ['env=test'] }), []);
  assert.deepEqual(await names({ label: ['env'], dangling: ['true'] }), ['web2']);

  await assert.rejects(svc.list({ filters: { foo: ['x'] } }), { name: 'InvalidArgumentError', message: "invalid filter 'foo'" });
  await assert.rejects(svc.list({ filters: { dangling: ['maybe'] } }), { message: "invalid filter 'dangling=[maybe]'" });
  await assert.rejects(svc.list({ filters: { dangling: ['true', 'false'] } }), { message: "invalid filter 'dangling=[true false]'" });
  await assert.rejects(svc.list({ filters: { 'label!': ['x'] } }), { message: "invalid filter 'label!'" });
});

test('remove: refused while referenced (force too), works after release; unknown names', async (t) => {
  const { svc } = await fresh(t);
  await svc.create({ name: 'shared' });
  const c1 = 'b'.repeat(64);
  const c2 = 'a'.repeat(64);
  await svc.addReference('shared', c1);
  await svc.addReference('shared', c2);
  await svc.addReference('shared', c2); // idempotent
  assert.deepEqual(await svc.references('shared'), [c2, c1]);
  for (const force of [false, true]) {
    await assert.rejects(svc.remove('shared', { force }), { name: 'ConflictError', message: `remove shared: volume is in use - [${c2}, ${c1}]` });
  }
  await svc.releaseReference('shared', c1);
  await assert.rejects(svc.remove('shared'), { message: `remove shared: volume is in use - [${c2}]` });
  await svc.releaseReference('shared', c2);
  await svc.releaseReference('shared', c2); // idempotent
  await svc.releaseReference('gone', c2); // a missing volume is not an error (Docker's Release)
  await svc.remove('shared');
  assert.equal(await svc.exists('shared'), false);

  await assert.rejects(svc.remove('nope'), { name: 'NotFoundError', message: 'get nope: no such volume' });
  await svc.remove('nope', { force: true });
  await assert.rejects(svc.addReference('nope', c1), { name: 'NotFoundError', message: 'get nope: no such volume' });
  await assert.rejects(svc.addReference('x1', '../evil'), { name: 'InvalidArgumentError' });

  // create with a reference records it atomically, also for an existing volume.
  await svc.create({ name: 'db', reference: c1 });
  await svc.create({ name: 'db', reference: c2 });
  assert.deepEqual(await svc.references('db'), [c2, c1]);
  const anon = await svc.create({ reference: c1 });
  assert.deepEqual(await svc.references(anon.Name), [c1]);
});

test('prune: anonymous only by default, named with all, never referenced, never with options', async (t) => {
  const { svc } = await fresh(t);
  const anonFree = (await svc.create({})).Name;
  const anonUsed = (await svc.create({ reference: 'c1' })).Name;
  const anonKeep = (await svc.create({ labels: { keep: 'yes' } })).Name;
  await svc.create({ name: 'named' });
  await svc.create({ name: 'named-used', reference: 'c2' });
  await svc.create({ name: 'with-opts', options: { type: 'tmpfs', device: 'tmpfs' } });
  await svc.create({ name: 'sized', options: { size: '0' } });

  // Docker's calcSize: file bytes, each inode once, symlinks by target length, dirs free.
  const data = path.join(svc.root, anonFree, '_data');
  await writeFile(path.join(data, 'f'), Buffer.alloc(1000));
  await link(path.join(data, 'f'), path.join(data, 'f2'));
  await symlink('abc', path.join(data, 'l'));
  await mkdir(path.join(data, 'd'));
  await writeFile(path.join(data, 'd', 'empty'), '');

  const report = await svc.prune({ filters: { 'label!': ['keep'] } });
  assert.deepEqual(report, { VolumesDeleted: [anonFree], SpaceReclaimed: 1003 });
  assert.deepEqual(Object.keys(report), ['VolumesDeleted', 'SpaceReclaimed']);
  assert.equal(await svc.exists(anonKeep), true);

  const second = await svc.prune();
  assert.deepEqual(second.VolumesDeleted, [anonKeep]);

  const all = await svc.prune({ all: true });
  assert.deepEqual(all.VolumesDeleted, ['named']);
  assert.deepEqual((await svc.list()).map((v) => v.Name).sort(), [anonUsed, 'named-used', 'sized', 'with-opts'].sort());

  // The `all` filter of the API works like the option, with Docker's validation.
  await svc.create({ name: 'named2' });
  assert.deepEqual((await svc.prune({ filters: { all: ['false'] } })).VolumesDeleted, []);
  assert.deepEqual((await svc.prune({ filters: { all: ['1'], label: ['nothing'] } })).VolumesDeleted, []);
  assert.deepEqual((await svc.prune({ filters: { all: ['true'] } })).VolumesDeleted, ['named2']);
  await assert.rejects(svc.prune({ filters: { all: ['x'] } }), { message: `invalid filter 'all': strconv.ParseBool: parsing "x": invalid syntax` });
  await assert.rejects(svc.prune({ filters: { all: ['true', 'false'] } }), { message: "invalid filter 'all=[true false]': only one value is expected" });
  await assert.rejects(svc.prune({ filters: { dangling: ['true'] } }), { message: "invalid filter 'dangling'" });
});

test('trash: remove and prune keep the data restorable; restore brings back data and labels', async (t) => {
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const { svc } = await fresh(t, { now: () => clock, trashGraceMs: 60_000 });
  await svc.create({ name: 'precious', labels: { owner: 'me' } });
  await writeFile(path.join(svc.mountpointOf('precious'), 'db.sqlite'), 'important');
  await svc.remove('precious');
  assert.equal(await svc.exists('precious'), false);
  const trash = await svc.listTrash();
  assert.deepEqual(trash.map((e) => [e.name, e.removedAt.getTime()]), [['precious', clock]]);
  assert.equal(path.basename(trash[0]!.path), `precious-${clock}`);

  // A new volume of the same name blocks the restore until it is gone.
  await svc.create({ name: 'precious' });
  await assert.rejects(svc.restore('precious'), { name: 'ConflictError', message: 'restore precious: a volume with this name already exists' });
  clock += 1000;
  await svc.remove('precious');
  const restored = await svc.restore('precious');
  // The newest removal comes back: that is the empty one; the older one is still in the trash.
  assert.deepEqual(await readdir(restored.Mountpoint), []);
  assert.equal(restored.Labels, null);
  clock += 1000;
  await svc.remove('precious');
  await svc.purgeTrash({ name: 'precious' }).then((gone) => assert.equal(gone.length, 2));

  await svc.create({ name: 'old', labels: { owner: 'me' } });
  await writeFile(path.join(svc.mountpointOf('old'), 'f'), 'v1');
  await svc.remove('old');
  const back = await svc.restore('old');
  assert.deepEqual(back.Labels, { owner: 'me' });
  assert.equal(await readFile(path.join(back.Mountpoint, 'f'), 'utf8'), 'v1');
  await assert.rejects(svc.restore('never'), { name: 'NotFoundError', message: 'restore never: no such volume in trash' });

  // prune goes to the trash too.
  const anon = (await svc.create({})).Name;
  await svc.prune();
  assert.deepEqual((await svc.listTrash()).map((e) => e.name), [anon]);
  await svc.restore(anon);

  // Opting out deletes at once.
  await svc.remove('old', { trash: false });
  assert.deepEqual((await svc.listTrash()).map((e) => e.name), []);
  assert.deepEqual(await readdir(path.join(svc.root, '.staging')), []);

  // Entries older than the grace period go with a later mutation (expiry is checked at most
  // once a minute per service instance).
  await svc.remove(anon);
  assert.equal((await svc.listTrash()).length, 1);
  clock += 59_000;
  await svc.create({ name: 'tick' });
  assert.equal((await svc.listTrash()).length, 1);
  clock += 62_000;
  await svc.create({ name: 'tock' });
  assert.deepEqual(await svc.listTrash(), []);
  await assert.rejects(svc.restore(anon), { name: 'NotFoundError' });
});

test('crash leftovers are reaped; a volume without strata.json is still listed', async (t) => {
  const { svc } = await fresh(t);
  await mkdir(path.join(svc.root, '.staging', 'create-abc', '_data'), { recursive: true });
  await mkdir(path.join(svc.root, 'orphan', '_data'), { recursive: true });
  await writeFile(path.join(svc.root, 'orphan', '_data', 'keep'), 'x');
  await mkdir(path.join(svc.root, 'withopts'), { recursive: true });
  await writeFile(path.join(svc.root, 'withopts', 'opts.json'), '{"MountType":"tmpfs","MountOpts":"size=1m","MountDevice":"tmpfs","Quota":{"Size":0}}');
  await mkdir(path.join(svc.root, 'notavolume'), { recursive: true });
  const listed = await svc.list();
  assert.deepEqual(listed.map((v) => [v.Name, v.Labels, v.Options]), [
    ['orphan', null, null],
    ['withopts', null, { device: 'tmpfs', o: 'size=1m', type: 'tmpfs' }],
  ]);
  assert.equal((await svc.get('withopts')).needsMount, true);
  await svc.create({ name: 'trigger' });
  assert.deepEqual(await readdir(path.join(svc.root, '.staging')), []);
});

test('rm -v / run --rm: references dropped, anonymous volumes removed, named and shared ones kept', async (t) => {
  const { svc } = await fresh(t);
  const ctr = 'c'.repeat(64);
  const other = 'd'.repeat(64);
  const anon = (await svc.create({ reference: ctr })).Name;
  const sharedAnon = (await svc.create({ reference: ctr })).Name;
  await svc.addReference(sharedAnon, other);
  await svc.create({ name: 'named', reference: ctr });
  const mounts = [
    { name: anon, anonymous: true },
    { name: sharedAnon, anonymous: true },
    { name: 'named', anonymous: false },
    { name: 'already-gone', anonymous: true },
  ];
  await svc.releaseContainerVolumes(ctr, mounts, { removeAnonymous: true });
  assert.deepEqual((await svc.list()).map((v) => v.Name).sort(), [sharedAnon, 'named'].sort());
  assert.deepEqual(await svc.references('named'), []);
  assert.deepEqual(await svc.references(sharedAnon), [other]);
  assert.deepEqual((await svc.listTrash()).map((e) => e.name), [anon]);
  // Plain `rm` (no -v) only drops references.
  await svc.releaseContainerVolumes(other, [{ name: sharedAnon, anonymous: true }], { removeAnonymous: false });
  assert.equal(await svc.exists(sharedAnon), true);
});

test('damaged or foreign entries never break listing; adopted volumes take references', async (t) => {
  const { svc, tmp } = await fresh(t);
  await svc.create({ name: 'good', labels: { a: 'b' } });
  await svc.create({ name: 'damaged' });
  await writeFile(path.join(svc.root, 'damaged', 'strata.json'), '{"Name":');
  await mkdir(path.join(tmp, 'elsewhere', '_data'), { recursive: true });
  await symlink(path.join(tmp, 'elsewhere'), path.join(svc.root, 'linked'));
  assert.deepEqual((await svc.list()).map((v) => [v.Name, v.Labels]), [['damaged', null], ['good', { a: 'b' }]]);
  await mkdir(path.join(svc.root, 'fromdocker', '_data'), { recursive: true });
  await svc.addReference('fromdocker', 'c1');
  assert.deepEqual(await svc.references('fromdocker'), ['c1']);
  await assert.rejects(svc.remove('fromdocker'), { name: 'ConflictError' });
});

test('prepopulate does not follow a symlink at the source path', async (t) => {
  const { svc, tmp } = await fresh(t);
  await mkdir(path.join(tmp, 'hostdir'));
  await writeFile(path.join(tmp, 'hostdir', 'secret'), 'host file');
  await symlink(path.join(tmp, 'hostdir'), path.join(tmp, 'escape'));
  await svc.create({ name: 'v1' });
  assert.equal(await svc.prepopulate('v1', path.join(tmp, 'escape')), false);
  assert.deepEqual(await readdir(svc.mountpointOf('v1')), []);
});

const here = path.dirname(fileURLToPath(import.meta.url));
const serviceModule = path.resolve(here, '../../src/volumes/service.js');

test('several processes share one root: every create and reference lands', async (t) => {
  const { tmp } = await fresh(t);
  const root = path.join(tmp, 'root');
  const script = `
    const { VolumeService } = await import(${JSON.stringify(serviceModule)});
    const svc = await VolumeService.open({ dataRoot: ${JSON.stringify(root)} });
    const me = process.argv[1];
    for (let i = 0; i < 25; i++) {
      await svc.create({ name: 'shared' + (i % 5), reference: 'p' + me + 'x' + i });
      await svc.create({ name: 'own-' + me + '-' + i });
    }
  `;
  const run = promisify(execFile);
  await Promise.all([0, 1, 2, 3].map((n) => run(process.execPath, ['--input-type=module', '-e', script, String(n)])));
  const svc = await VolumeService.open({ dataRoot: root });
  const names = (await svc.list()).map((v) => v.Name);
  assert.equal(names.length, 5 + 100);
  for (let s = 0; s < 5; s++) assert.equal((await svc.references(`shared${s}`)).length, 20);
  assert.deepEqual(await readdir(path.join(svc.root, '.staging')), []);
});
