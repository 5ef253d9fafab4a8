// -v / --mount / --volumes-from parsing and container-inspect Mounts entries, table-driven.
// Expected strings are Docker's (daemon/volume/mounts, docker CLI opts/mount.go).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  assertNoDuplicateMounts,
  imageVolumeMountPoint,
  mountPointFor,
  mountPointJSON,
  parseMountFlag,
  parseVolumeFlag,
  parseVolumesFrom,
  readCsvRecord,
  tmpfsMountOptions,
  volumesFromMountPoint,
  type MountSpec,
} from '../../src/volumes/mount-spec.js';

const cwd = '/home/user/project';
const NAME_CHARS_MSG =
  'includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path';

function pick(m: MountSpec): Record<string, unknown> {
  return { type: m.type, source: m.source, destination: m.destination, readOnly: m.readOnly, mode: m.mode, propagation: m.propagation };
}

test('parseVolumeFlag: valid forms', () => {
  const cases: Array<[string, Record<string, unknown>, Record<string, unknown>?]> = [
    ['/data', { type: 'volume', source: '', destination: '/data', readOnly: false, mode: '', propagation: '' }, { copyData: true, configVolume: true }],
    ['myvol:/data', { type: 'volume', source: 'myvol', destination: '/data', readOnly: false, mode: '', propagation: '' }, { copyData: true, configVolume: false }],
    ['myvol:/data:ro', { type: 'volume', source: 'myvol', destination: '/data', readOnly: true, mode: 'ro', propagation: '' }],
    ['myvol:/data:nocopy', { type: 'volume', source: 'myvol', destination: '/data', readOnly: false, mode: 'nocopy', propagation: '' }, { copyData: false }],
    ['myvol:/data/:z,ro', { type: 'volume', source: 'myvol', destination: '/data', readOnly: true, mode: 'z,ro', propagation: '' }],
    ['/host:/ctr', { type: 'bind', source: '/host', destination: '/ctr', readOnly: false, mode: '', propagation: 'rprivate' }],
    ['/host/:/ctr:ro', { type: 'bind', source: '/host', destination: '/ctr', readOnly: true, mode: 'ro', propagation: 'rprivate' }],
    ['/host:/ctr:rw,rshared', { type: 'bind', source: '/host', destination: '/ctr', readOnly: false, mode: 'rw,rshared', propagation: 'rshared' }],
    ['/host:/ctr:Z,slave,cached', { type: 'bind', source: '/host', destination: '/ctr', readOnly: false, mode: 'Z,slave,cached', propagation: 'slave' }],
    ['/a//b/../c:/x/./y/', { type: 'bind', source: '/a/c', destination: '/x/y', readOnly: false, mode: '', propagation: 'rprivate' }],
    // Relative host paths are made absolute client-side, like the docker CLI does.
    ['./site:/usr/share/nginx/html:ro', { type: 'bind', source: `${cwd}/site`, destination: '/usr/share/nginx/html', readOnly: true, mode: 'ro', propagation: 'rprivate' }],
    ['../shared:/s', { type: 'bind', source: '/home/user/shared', destination: '/s', readOnly: false, mode: '', propagation: 'rprivate' }],
    ['.:/src', { type: 'bind', source: cwd, destination: '/src', readOnly: false, mode: '', propagation: 'rprivate' }],
  ];
  for (const [raw, want, volume] of cases) {
    const got = parseVolumeFlag(raw, { cwd });
    assert.deepEqual(pick(got), want, raw);
    assert.equal(got.origin, 'volume-flag');
    if (volume) for (const [k, v] of Object.entries(volume)) assert.equal((got.volume as unknown as Record<string, unknown>)[k], v, `${raw} ${k}`);
    if (got.type === 'bind') assert.equal(got.bind?.createHostPath, true, raw);
  }
  // An empty mode after a second colon is no mode at all (SplitN keeps the empty part).
  assert.deepEqual(pick(parseVolumeFlag('/a:/b:', { cwd })), { type: 'bind', source: '/a', destination: '/b', readOnly: false, mode: '', propagation: 'rprivate' });
});

test('parseVolumeFlag: every error string', () => {
  const cases: Array<[string, string]> = [
    ['', "invalid volume specification: ''"],
    [':/data', "invalid volume specification: ':/data'"],
    ['/foo:rw', "invalid volume specification: '/foo:rw'"],
    ['/foo:ro,z', "invalid volume specification: '/foo:ro,z'"],
    ['myvol:', "invalid volume specification: 'myvol:'"],
    ['/a:/b:ro:extra', "invalid volume specification: '/a:/b:ro:extra'"],
    ['/a:/b:c:d:e', "invalid volume specification: '/a:/b:c:d:e'"],
    ['/a:/b:xyz', 'invalid mode: xyz'],
    ['/a:/b:ro,rw', 'invalid mode: ro,rw'],
    ['/a:/b:z,Z', 'invalid mode: z,Z'],
    ['/a:/b:shared,slave', 'invalid mode: shared,slave'],
    ['/a:/b:nocopy,nocopy', 'invalid mode: nocopy,nocopy'],
    ['/a:/b:cached,delegated', 'invalid mode: cached,delegated'],
    ['/a::ro', `invalid volume specification: '/a::ro': invalid mount config for type "bind": field Target must not be empty`],
    ['/a:/', `invalid volume specification: '/a:/': invalid mount config for type "bind": invalid specification: destination can't be '/'`],
    ['/a:/b/..', `invalid volume specification: '/a:/b/..': invalid mount config for type "bind": invalid specification: destination can't be '/'`],
    ['/a:b', `invalid volume specification: '/a:b': invalid mount config for type "bind": invalid mount path: 'b' mount path must be absolute`],
    ['data', `invalid volume specification: 'data': invalid mount config for type "volume": invalid mount path: 'data' mount path must be absolute`],
    ['/', `invalid volume specification: '/': invalid mount config for type "volume": invalid specification: destination can't be '/'`],
    ['/a:/b:nocopy', `invalid volume specification: '/a:/b:nocopy': invalid mount config for type "bind": field VolumeOptions must not be specified`],
    ['vol:/b:rshared', `invalid volume specification: 'vol:/b:rshared': invalid mount config for type "volume": field BindOptions must not be specified`],
    ['v:/data', `create v: volume name is too short, names should be at least two alphanumeric characters`],
    ['my vol:/data', `create my vol: "my vol" ${NAME_CHARS_MSG}`],
    ['~/x:/data', `create ~/x: "~/x" ${NAME_CHARS_MSG}`],
  ];
  for (const [raw, message] of cases) {
    assert.throws(() => parseVolumeFlag(raw, { cwd }), (err: Error) => {
      assert.equal(err.name, 'InvalidArgumentError', raw);
      assert.equal(err.message.split('\n')[0], message, raw);
      return true;
    });
  }
});

test('parseVolumeFlag: a relative path that is not ./x gets Docker\'s error plus a hint', () => {
  assert.throws(() => parseVolumeFlag('data/site:/usr/share/nginx/html', { cwd }), (err: Error) => {
    const [first, hint] = err.message.split('\n');
    assert.equal(first, `create data/site: "data/site" ${NAME_CHARS_MSG}`);
    assert.match(hint!, /write \.\/data\/site/);
    return true;
  });
});

test('parseMountFlag: valid forms', () => {
  // Docker stats the source as given, so a trailing slash still finds the directory.
  const exists = (p: string): boolean => ['/srv/www', `${cwd}/conf`].includes(p.replace(/\/+$/, ''));
  const bind = parseMountFlag('type=bind,src=/srv/www/,dst=/usr/share/nginx/html,readonly', { cwd, sourceExists: exists });
  assert.deepEqual(pick(bind), { type: 'bind', source: '/srv/www', destination: '/usr/share/nginx/html', readOnly: true, mode: '', propagation: 'rprivate' });
  assert.equal(bind.bind?.createHostPath, false);

  const rel = parseMountFlag('type=bind,source=./conf,target=/etc/app,bind-propagation=RSLAVE,ro=false', { cwd, sourceExists: exists });
  assert.deepEqual(pick(rel), { type: 'bind', source: `${cwd}/conf`, destination: '/etc/app', readOnly: false, mode: '', propagation: 'rslave' });

  const vol = parseMountFlag('type=volume,src=data,dst=/var/lib/data,volume-nocopy', { cwd });
  assert.deepEqual(pick(vol), { type: 'volume', source: 'data', destination: '/var/lib/data', readOnly: false, mode: '', propagation: '' });
  assert.deepEqual(vol.volume, { copyData: false, driver: '', options: null, labels: null, subpath: '', configVolume: false });

  const dflt = parseMountFlag('dst=/data', { cwd });
  assert.equal(dflt.type, 'volume');
  assert.equal(dflt.source, '');
  assert.deepEqual(dflt.volume, { copyData: true, driver: '', options: null, labels: null, subpath: '', configVolume: false });

  // CSV quoting lets an option value carry commas, as with the docker CLI.
  const nfs = parseMountFlag('"volume-opt=o=addr=127.0.0.1,rw,nfsvers=4",volume-opt=type=nfs,volume-opt=device=:/export,Target=/mnt,volume-label=a=b,source=nfsvol', { cwd });
  assert.deepEqual(nfs.volume?.options, { o: 'addr=127.0.0.1,rw,nfsvers=4', type: 'nfs', device: ':/export' });
  assert.deepEqual(nfs.volume?.labels, { a: 'b' });
  assert.equal(nfs.destination, '/mnt');

  const tmpfs = parseMountFlag('type=tmpfs,destination=/run/cache,tmpfs-size=64m,tmpfs-mode=1770', { cwd });
  assert.deepEqual(pick(tmpfs), { type: 'tmpfs', source: '', destination: '/run/cache', readOnly: false, mode: '', propagation: '' });
  assert.deepEqual(tmpfs.tmpfs, { sizeBytes: 64 << 20, mode: 0o1770 });
  assert.equal(tmpfsMountOptions(tmpfs), 'mode=1770,size=64m');
  assert.equal(tmpfsMountOptions(parseMountFlag('type=tmpfs,dst=/t,tmpfs-size=1536k,ro', { cwd })), 'ro,size=1536k');
  assert.equal(tmpfsMountOptions(parseMountFlag('type=tmpfs,dst=/t,tmpfs-size=1000', { cwd })), 'size=1000');

  const sub = parseMountFlag('src=data,dst=/d,volume-subpath=a/b', { cwd });
  assert.equal(sub.volume?.subpath, 'a/b');
  const nonrec = parseMountFlag('type=bind,src=/srv/www,dst=/w,bind-recursive=writable,readonly', { cwd, sourceExists: exists });
  assert.equal(nonrec.bind?.readOnlyNonRecursive, true);
});

test('parseMountFlag: every error string', () => {
  const exists = (p: string): boolean => p === '/srv/www';
  const flag = (value: string, reason: string): [string, string] => [value, `invalid argument ${JSON.stringify(value)} for "--mount" flag: ${reason}`];
  const cases: Array<[string, string]> = [
    flag('', 'EOF'),
    flag('type=bind,src=/a"b,dst=/x', 'parse error on line 1, column 17: bare " in non-quoted field'),
    flag('"type=bind"x,dst=/x', 'parse error on line 1, column 11: extraneous or missing " in quoted-field'),
    flag('type=bind,bogus,dst=/x', "invalid field 'bogus' must be a key=value pair"),
    flag('type=bind,foo=bar,dst=/x', "unexpected key 'foo' in 'foo=bar'"),
    flag('type=bind,Foo=bar,dst=/x', "unexpected key 'foo' in 'Foo=bar'"),
    flag('type=bind,src=/srv/www,dst=/x,readonly=maybe', 'invalid value for readonly: maybe'),
    flag('type=bind,src=/srv/www,dst=/x,ro=2', 'invalid value for ro: 2'),
    flag('src=v1,dst=/x,volume-nocopy=perhaps', 'invalid value for volume-nocopy: perhaps'),
    flag('type=bind,src=/srv/www,dst=/x,bind-nonrecursive=x', 'invalid value for bind-nonrecursive: x'),
    flag('type=bind,src=/srv/www,dst=/x,bind-recursive=x', 'invalid value for bind-recursive: x (must be "enabled", "disabled", "writable", or "readonly")'),
    flag('type=bind,src=/srv/www,dst=/x,bind-recursive=writable', "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction"),
    flag('type=bind,src=/srv/www,dst=/x,bind-recursive=readonly', "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction"),
    flag('type=bind,src=/srv/www,dst=/x,bind-recursive=readonly,ro', "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction"),
    flag('type=tmpfs,dst=/x,tmpfs-size=lots', 'invalid value for tmpfs-size: lots'),
    flag('type=tmpfs,dst=/x,tmpfs-mode=999', 'invalid value for tmpfs-mode: 999'),
    flag('type=,dst=/x', 'type is required'),
    flag('type=bind,src=/srv/www', 'target is required'),
    flag('type=bind,src=/srv/www,dst=/x,volume-nocopy', "cannot mix 'volume-*' options with mount type 'bind'"),
    flag('type=tmpfs,dst=/x,bind-propagation=shared', "cannot mix 'bind-*' options with mount type 'tmpfs'"),
    flag('type=volume,dst=/x,tmpfs-size=1m', "cannot mix 'tmpfs-*' options with mount type 'volume'"),
    ['type=bind,src=/nope,dst=/x', 'invalid mount config for type "bind": bind source path does not exist: /nope'],
    ['type=bind,dst=/x', 'invalid mount config for type "bind": field Source must not be empty'],
    ['type=bind,src=rel/dir,dst=/x', `invalid mount config for type "bind": invalid mount path: 'rel/dir' mount path must be absolute`],
    ['type=bind,src=/srv/www,dst=/x,bind-propagation=weird', 'invalid mount config for type "bind": invalid propagation mode: weird'],
    ['type=bind,src=/srv/www,dst=rel', `invalid mount config for type "bind": invalid mount path: 'rel' mount path must be absolute`],
    ['type=bind,src=/srv/www,dst=/', `invalid mount config for type "bind": invalid specification: destination can't be '/'`],
    ['type=tmpfs,src=/srv/www,dst=/x', 'invalid mount config for type "tmpfs": field Source must not be specified'],
    ['type=weird,dst=/x', 'invalid mount config for type "weird": mount type unknown'],
    ['dst=/x,volume-subpath=a', 'invalid mount config for type "volume": must not set Subpath when using anonymous volumes'],
    ['src=v1,dst=/x,volume-subpath=../a', 'invalid mount config for type "volume": subpath must be a relative path within the volume'],
    ['src=v1,dst=/x,volume-subpath=/a', 'invalid mount config for type "volume": subpath must be a relative path within the volume'],
    ['src=a/b,dst=/x', `create a/b: "a/b" ${NAME_CHARS_MSG}`],
  ];
  for (const [value, message] of cases) {
    assert.throws(() => parseMountFlag(value, { cwd, sourceExists: exists }), (err: Error) => {
      assert.equal(err.name, 'InvalidArgumentError', value);
      assert.equal(err.message.split('\n')[0], message, value);
      return true;
    });
  }
  // Without an injected check, a bind source is not looked up at all.
  assert.equal(parseMountFlag('type=bind,src=/nope,dst=/x', { cwd }).source, '/nope');
});

test('readCsvRecord follows encoding/csv', () => {
  assert.deepEqual(readCsvRecord('a,b,c'), ['a', 'b', 'c']);
  assert.deepEqual(readCsvRecord('"a,b",c'), ['a,b', 'c']);
  assert.deepEqual(readCsvRecord('"say ""hi""",x'), ['say "hi"', 'x']);
  assert.deepEqual(readCsvRecord('a,'), ['a', '']);
  assert.deepEqual(readCsvRecord(',a'), ['', 'a']);
  assert.deepEqual(readCsvRecord(' a , b'), [' a ', ' b']);
});

test('parseVolumesFrom', () => {
  assert.deepEqual(parseVolumesFrom('datastore'), { container: 'datastore', mode: 'rw', readWrite: true });
  assert.deepEqual(parseVolumesFrom('datastore:'), { container: 'datastore', mode: 'rw', readWrite: true });
  assert.deepEqual(parseVolumesFrom('datastore:ro'), { container: 'datastore', mode: 'ro', readWrite: false });
  assert.deepEqual(parseVolumesFrom('datastore:rw'), { container: 'datastore', mode: 'rw', readWrite: true });
  assert.deepEqual(parseVolumesFrom('datastore:z'), { container: 'datastore', mode: 'z', readWrite: true });
  const errors: Array<[string, string]> = [
    ['', 'volumes-from specification cannot be an empty string'],
    ['c1:bogus', 'invalid mode: bogus'],
    ['c1:ro,rw', 'invalid mode: ro,rw'],
    ['c1:rshared', 'invalid mode: rshared'],
    ['c1:ro,slave', 'invalid mode: ro,slave'],
    ['c1:nocopy', 'invalid mode: nocopy'],
  ];
  for (const [spec, message] of errors) {
    assert.throws(() => parseVolumesFrom(spec), { name: 'InvalidArgumentError', message }, spec);
  }
});

test('duplicate destinations are refused as Docker refuses them', () => {
  const v = (raw: string): MountSpec => parseVolumeFlag(raw, { cwd });
  const m = (raw: string): MountSpec => parseMountFlag(raw, { cwd });
  assertNoDuplicateMounts({ volumeFlags: [v('/a:/x'), v('b1:/y')], tmpfs: ['/run'], mountFlags: [m('type=tmpfs,dst=/z')] });
  assert.throws(() => assertNoDuplicateMounts({ volumeFlags: [v('/a:/x'), v('b1:/x/')] }), { message: 'Duplicate mount point: /x' });
  assert.throws(() => assertNoDuplicateMounts({ volumeFlags: [v('/a:/run')], tmpfs: ['/run'] }), { message: 'Duplicate mount point: /run' });
  // A --mount duplicate is reported with the target as typed.
  assert.throws(() => assertNoDuplicateMounts({ volumeFlags: [v('/a:/x')], mountFlags: [m('dst=/x/')] }), { message: 'Duplicate mount point: /x/' });
  assert.throws(() => assertNoDuplicateMounts({ mountFlags: [m('dst=/x'), m('type=tmpfs,dst=/x')] }), { message: 'Duplicate mount point: /x' });
});

test('mountPointJSON: Docker\'s shape and key order for every case', () => {
  const hex = 'a'.repeat(64);
  const root = '/var/lib/strata/volumes';
  const resolved = (name: string) => ({ name, mountpoint: `${root}/${name}/_data`, driver: 'local' });
  const text = (mp: Parameters<typeof mountPointJSON>[0]): string => JSON.stringify(mountPointJSON(mp));

  assert.equal(
    text(mountPointFor(parseVolumeFlag('myvol:/data', { cwd }), resolved('myvol'))),
    `{"Type":"volume","Name":"myvol","Source":"${root}/myvol/_data","Destination":"/data","Driver":"local","Mode":"z","RW":true,"Propagation":""}`,
  );
  assert.equal(
    text(mountPointFor(parseVolumeFlag('myvol:/data:ro', { cwd }), resolved('myvol'))),
    `{"Type":"volume","Name":"myvol","Source":"${root}/myvol/_data","Destination":"/data","Driver":"local","Mode":"ro","RW":false,"Propagation":""}`,
  );
  assert.equal(
    text(mountPointFor(parseMountFlag('dst=/data', { cwd }), resolved(hex))),
    `{"Type":"volume","Name":"${hex}","Source":"${root}/${hex}/_data","Destination":"/data","Driver":"local","Mode":"z","RW":true,"Propagation":""}`,
  );
  // -v /data is a config volume (like an image VOLUME): Mode ''.
  assert.equal(
    text(mountPointFor(parseVolumeFlag('/data', { cwd }), resolved(hex))),
    `{"Type":"volume","Name":"${hex}","Source":"${root}/${hex}/_data","Destination":"/data","Driver":"local","Mode":"","RW":true,"Propagation":""}`,
  );
  assert.equal(
    text(imageVolumeMountPoint('/var/lib/mysql/', resolved(hex))),
    `{"Type":"volume","Name":"${hex}","Source":"${root}/${hex}/_data","Destination":"/var/lib/mysql","Driver":"local","Mode":"","RW":true,"Propagation":""}`,
  );
  const bindRo = mountPointFor(parseVolumeFlag('/srv/www:/usr/share/nginx/html:ro', { cwd }));
  assert.equal(
    text(bindRo),
    '{"Type":"bind","Source":"/srv/www","Destination":"/usr/share/nginx/html","Mode":"ro","RW":false,"Propagation":"rprivate"}',
  );
  assert.equal(
    text(mountPointFor(parseVolumeFlag('/srv/www:/w', { cwd }))),
    '{"Type":"bind","Source":"/srv/www","Destination":"/w","Mode":"","RW":true,"Propagation":"rprivate"}',
  );
  assert.equal(
    text(mountPointFor(parseMountFlag('type=bind,src=/srv/www,dst=/w,bind-propagation=rshared', { cwd }))),
    '{"Type":"bind","Source":"/srv/www","Destination":"/w","Mode":"","RW":true,"Propagation":"rshared"}',
  );
  assert.equal(
    text(mountPointFor(parseMountFlag('type=tmpfs,dst=/run/x,tmpfs-size=1m', { cwd }))),
    '{"Type":"tmpfs","Source":"","Destination":"/run/x","Mode":"","RW":true,"Propagation":""}',
  );
  // --volumes-from copies everything but Mode, and RW only if both sides allow writing.
  const source = mountPointFor(parseVolumeFlag('myvol:/data', { cwd }), resolved('myvol'));
  assert.equal(
    text(volumesFromMountPoint(source, parseVolumesFrom('dbdata:ro'))),
    `{"Type":"volume","Name":"myvol","Source":"${root}/myvol/_data","Destination":"/data","Driver":"local","Mode":"","RW":false,"Propagation":""}`,
  );
  assert.equal(
    text(volumesFromMountPoint(bindRo, parseVolumesFrom('web'))),
    '{"Type":"bind","Source":"/srv/www","Destination":"/usr/share/nginx/html","Mode":"","RW":false,"Propagation":"rprivate"}',
  );
  assert.throws(() => mountPointFor(parseVolumeFlag('myvol:/data', { cwd })), /needs its resolved volume/);
});
