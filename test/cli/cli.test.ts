/**
 * The strata CLI end to end (`bin/strata --data-root <tmp> …`): docker's output,
 * messages and exit statuses for load, images, inspect, tag, rmi, history, save, import,
 * prune, info and system df, and for usage errors.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

import { STRATA_BIN, releaseTempRoot, run, strata, strataSkipReason, type RunResult } from '../helpers/strata-cli.js';
import { buildTar, dockerArchive, hex, imageFromLayers, readArchive, sha256 } from '../helpers/fixtures.js';

const skip = strataSkipReason() ?? (process.getuid?.() === 0 ? undefined : 'needs root (overlay2)');

const l1 = buildTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/os', data: 'strata\n' }]);
const l2 = buildTar([{ name: 'app', data: Buffer.alloc(2_000_000, 7) }]);
const app = imageFromLayers([l1, l2], ['cli/app:1'], {
  created: '2023-11-14T22:13:20Z',
  history: [
    { created: '2023-11-14T22:13:20Z', created_by: '/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789abcdef in /' },
    { created: '2023-11-14T22:13:20Z', created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true },
    { created: '2023-11-14T22:13:20Z', created_by: 'COPY app /app' },
  ],
});
const loose = imageFromLayers([l1], []);

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

describe('strata CLI', { skip }, () => {
  let dir: string;
  let root: string;
  let archive: string;
  const s = (args: string[], input?: Buffer | string) => strata(args, { root, input });

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'strata-cli-'));
    root = path.join(dir, 'root');
    archive = path.join(dir, 'app.tar');
    writeFileSync(archive, dockerArchive([app]));
  });
  after(() => releaseTempRoot(dir));

  it('prints its version and help without touching a data root', async () => {
    const v = ok(await run(STRATA_BIN, ['--version']), 'version');
    assert.match(v.stdout, /^strata version \d+\.\d+\.\d+\n$/);
    const h = ok(await run(STRATA_BIN, ['--help']), 'help');
    assert.match(h.stdout, /Usage: {2}strata \[OPTIONS\] COMMAND/);
    const ih = ok(await s(['images', '--help']), 'images --help');
    assert.match(ih.stdout, /Usage: {2}strata images \[OPTIONS\] \[REPOSITORY\[:TAG\]\]/);
    assert.match(ih.stdout, /-q, --quiet +Only show image IDs/);
  });

  it('usage errors: docker’s wording and exit statuses', async () => {
    const unknownFlag = await s(['images', '--foo']);
    assert.equal(unknownFlag.code, 125);
    assert.equal(unknownFlag.stderr, "unknown flag: --foo\nSee 'strata images --help'.\n");
    const badFilter = await s(['images', '-f', 'dangling']);
    assert.equal(badFilter.code, 125);
    assert.match(badFilter.stderr, /^invalid argument "dangling" for "-f, --filter" flag: bad format of filter \(expected name=value\)\n/);
    const noArgs = await s(['rmi']);
    assert.equal(noArgs.code, 1);
    assert.equal(noArgs.stderr, `"strata rmi" requires at least 1 argument.\nSee 'strata rmi --help'.\n\nUsage:  strata rmi [OPTIONS] IMAGE [IMAGE...]\n\nRemove one or more images\n`);
    const tagArgs = await s(['image', 'tag', 'a']);
    assert.match(tagArgs.stderr, /^"strata image tag" requires exactly 2 arguments\./);
    const cmd = await s(['frobnicate']);
    assert.equal(cmd.code, 1);
    assert.equal(cmd.stderr, "strata: 'frobnicate' is not a strata command.\nSee 'strata --help'\n");
    const missing = await s(['load', '-i', path.join(dir, 'nope.tar')]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, `open ${path.join(dir, 'nope.tar')}: no such file or directory\n`);
  });

  it('load prints Loaded image lines; untagged archives print Loaded image ID', async () => {
    assert.equal(ok(await s(['load', '-i', archive]), 'load').stdout, 'Loaded image: cli/app:1\n');
    const r = ok(await s(['load'], gzipSync(dockerArchive([loose]))), 'load from stdin');
    assert.equal(r.stdout, `Loaded image ID: ${loose.id}\n`);
    const other = imageFromLayers([l2], ['cli/app:1']);
    const moved = ok(await s(['load', '-i', '-'], dockerArchive([other])), 'load moving a tag');
    assert.equal(moved.stdout, `The image cli/app:1 already exists, renaming the old one with ID ${app.id} to empty string\nLoaded image: cli/app:1\n`);
    ok(await s(['load', '-q', '-i', archive]), 'load back');
    const bad = await s(['load'], 'not an archive at all\n'.repeat(100));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^Error response from daemon: /);
  });

  it('images: table, quiet, formats, filters', async () => {
    const table = ok(await s(['images']), 'images').stdout.split('\n');
    assert.match(table[0]!, /^REPOSITORY {3}TAG {7}IMAGE ID {7}CREATED {3,}SIZE$/);
    assert.ok(table.some((l) => new RegExp(`^cli/app +1 +${hex(app.id).slice(0, 12)} +\\d+ \\w+ ago +2MB$`).test(l)), table.join('\n'));
    const ids = ok(await s(['images', '-q', '--no-trunc']), 'images -q').stdout.trim().split('\n').sort();
    assert.deepEqual(ids, [app.id, loose.id, imageFromLayers([l2], ['cli/app:1']).id].sort());
    assert.equal(ok(await s(['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}', 'cli/app']), 'format').stdout, 'cli/app:1\n');
    const json = JSON.parse(ok(await s(['images', '--format', 'json', 'cli/app:1']), 'json').stdout) as Record<string, string>;
    assert.deepEqual(Object.keys(json), ['Containers', 'CreatedAt', 'CreatedSince', 'Digest', 'ID', 'Repository', 'SharedSize', 'Size', 'Tag', 'UniqueSize', 'VirtualSize']);
    assert.equal(json.Digest, '<none>');
    const dangling = ok(await s(['images', '-f', 'dangling=true', '--format', '{{.ID}} {{.Repository}}']), 'dangling').stdout.trim().split('\n').sort();
    assert.equal(dangling.length, 2);
    assert.ok(dangling.every((l) => l.endsWith(' <none>')));
    assert.match(ok(await s(['images', '--digests']), 'digests').stdout, /^REPOSITORY {3}TAG {7}DIGEST {4}IMAGE ID/);
    const badKey = await s(['images', '-f', 'colour=red']);
    assert.equal(badKey.stderr, "Error response from daemon: Invalid filter 'colour'\n");
  });

  it('inspect: 4-space JSON array, --format, missing images', async () => {
    const r = ok(await s(['image', 'inspect', 'cli/app:1']), 'inspect');
    assert.ok(r.stdout.startsWith('[\n    {\n        "Id": "'), r.stdout.slice(0, 60));
    const [ins] = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    assert.equal(ins!.Id, app.id);
    assert.equal(ok(await s(['image', 'inspect', '-f', '{{.Id}} {{len .RootFS.Layers}}', 'cli/app:1']), 'format').stdout, `${app.id} 2\n`);
    const missing = await s(['image', 'inspect', 'nope']);
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, '[]\n');
    assert.equal(missing.stderr, 'Error: No such image: nope\n');
    const obj = await s(['inspect', 'nope']);
    assert.equal(obj.stderr, 'Error: No such object: nope\n');
    const tpl = await s(['image', 'inspect', '-f', '{{.Id', 'cli/app:1']);
    assert.equal(tpl.code, 1);
    assert.match(tpl.stderr, /^Template parsing error: template: :1: /);
  });

  it('tag, history and rmi', async () => {
    ok(await s(['tag', 'cli/app:1', 'cli/other']), 'tag');
    const bad = await s(['tag', 'cli/app:1', 'BAD']);
    assert.equal(bad.stderr, 'Error parsing reference: "BAD" is not a valid repository/tag: invalid reference format: repository name must be lowercase\n');
    const noSource = await s(['tag', 'nosuch', 'x']);
    assert.equal(noSource.stderr, 'Error response from daemon: No such image: nosuch:latest\n');

    const h = ok(await s(['history', 'cli/app:1']), 'history').stdout.split('\n');
    assert.match(h[0]!, /^IMAGE {10}CREATED {3,}CREATED BY {3,}SIZE {6}COMMENT$/);
    assert.match(h[1]!, new RegExp(`^${hex(app.id).slice(0, 12)} +\\S.* ago +COPY app /app +2MB +$`));
    assert.match(h[3]!, /^<missing> +.* ago +\/bin\/sh -c #\(nop\) ADD file:0123456789abcdef0… +/);
    const q = ok(await s(['image', 'history', '-q', '--no-trunc', 'cli/app:1']), 'history -q').stdout;
    assert.equal(q, `${app.id}\n<missing>\n<missing>\n`);
    const raw = ok(await s(['history', '-H=false', '--format', '{{.CreatedSince}} {{.Size}}', 'cli/app:1']), 'history -H=false').stdout;
    assert.match(raw.split('\n')[0]!, /^2023-11-1\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) 2000\d{3}$/);

    const short = hex(app.id).slice(0, 12);
    const conflict = await s(['rmi', short]);
    assert.equal(conflict.code, 1);
    assert.equal(conflict.stderr, `Error response from daemon: conflict: unable to delete ${short} (must be forced) - image is referenced in multiple repositories\n`);
    const several = await s(['rmi', 'cli/other', 'nosuch', 'BAD']);
    assert.equal(several.code, 1);
    assert.equal(several.stdout, 'Untagged: cli/other:latest\n');
    assert.equal(several.stderr, 'Error: No such image: nosuch\nError response from daemon: invalid reference format: repository name must be lowercase\n');
  });

  it('save: -o file (temp + rename, 0600), stdout, unknown image writes nothing', async () => {
    const out = path.join(dir, 'out', 'saved.tar');
    const noDir = await s(['save', '-o', out, 'cli/app:1']);
    assert.equal(noDir.stderr, `failed to save image: invalid output path: directory ${JSON.stringify(path.dirname(out))} does not exist\n`);
    const file = path.join(dir, 'saved.tar');
    ok(await s(['save', '-o', file, 'cli/app:1']), 'save');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const arch = readArchive(file);
    assert.equal(sha256(arch.images[0]!.config), app.id);
    assert.ok(arch.images[0]!.layers[1]!.equals(l2));
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.strata_temp_')), []);
    const stdout = await run(STRATA_BIN, ['--data-root', root, 'save', 'cli/app:1']);
    assert.equal(stdout.code, 0, stdout.stderr);
    assert.ok(stdout.stdout.length > 2_000_000);
    const none = path.join(dir, 'none.tar');
    const missing = await s(['save', '-o', none, 'nosuch']);
    assert.equal(missing.stderr, 'Error response from daemon: No such image: nosuch\n');
    assert.ok(!existsSync(none));
    if (spawnSync('sh', ['-c', 'command -v script']).status === 0) {
      const tty = spawnSync('script', ['-qec', `${STRATA_BIN} --data-root ${root} save cli/app:1`, '/dev/null'], { encoding: 'utf8' });
      assert.match(tty.stdout, /cowardly refusing to save to a terminal\. Use the -o flag or redirect/);
    }
  });

  it('import from a file and from stdin', async () => {
    const rootfs = path.join(dir, 'rootfs.tar');
    writeFileSync(rootfs, buildTar([{ name: 'hello', data: 'hi\n' }]));
    const a = ok(await s(['import', '-m', 'msg', '-c', 'CMD ["sh"]', rootfs, 'imp/x:1']), 'import');
    assert.match(a.stdout, /^sha256:[0-9a-f]{64}\n$/);
    const b = ok(await s(['image', 'import', '-', 'imp/y'], readFileSync(rootfs)), 'import -');
    const [ins] = JSON.parse(ok(await s(['image', 'inspect', 'imp/y']), 'inspect').stdout) as Array<Record<string, unknown>>;
    assert.equal(`${ins!.Id}\n`, b.stdout);
    assert.equal(ins!.Comment, 'Imported from -');
    const bad = await s(['import', '-c', 'RUN x', rootfs]);
    assert.equal(bad.stderr, 'Error response from daemon: run is not a valid change command\n');
  });

  it('prune asks first; info and system df report the store', async () => {
    const no = ok(await s(['image', 'prune'], 'n\n'), 'prune, answered no');
    assert.equal(no.stdout, 'WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] ');
    const before = ok(await s(['images', '-aq']), 'images').stdout;
    assert.equal(ok(await s(['images', '-aq']), 'images').stdout, before);
    const yes = ok(await s(['image', 'prune'], 'y\n'), 'prune, answered yes');
    assert.match(yes.stdout, /\[y\/N\] Deleted Images:\ndeleted: sha256:[0-9a-f]{64}\n/);
    assert.match(yes.stdout, /\n\nTotal reclaimed space: \d/);
    assert.equal(ok(await s(['image', 'prune', '-f']), 'prune again').stdout, 'Total reclaimed space: 0B\n');

    const info = ok(await s(['info']), 'info').stdout;
    assert.match(info, /^ Storage Driver: overlay2$/m);
    assert.match(info, /^  Backing Filesystem: /m);
    assert.ok(info.includes(` Docker Root Dir: ${root}\n`));
    assert.equal(ok(await s(['system', 'info', '-f', '{{.Driver}}']), 'info -f').stdout, 'overlay2\n');
    const df = ok(await s(['system', 'df']), 'df').stdout.split('\n');
    assert.equal(df[0], 'TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE');
    assert.match(df[1]!, /^Images +\d+ +0 +[\d.]+[kM]?B +[\d.]+[kM]?B \(100%\)$/);
    assert.equal(df[2], 'Containers      0         0         0B        0B');
    const v = ok(await s(['system', 'df', '-v']), 'df -v').stdout;
    assert.match(v, /^Images space usage:\n\nREPOSITORY +TAG +IMAGE ID +CREATED +SIZE +SHARED SIZE +UNIQUE SIZE +CONTAINERS\n/);
  });
});
