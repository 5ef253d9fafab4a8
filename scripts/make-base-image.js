#!/usr/bin/env node
// Writes a loadable docker-archive of a one-layer busybox base image built from the host's
// statically linked busybox (Debian's busybox-static): /bin/busybox plus a symlink per applet,
// a minimal /etc, and an image config with Cmd ["sh"], PATH, history. No Docker involved.
//
//   node scripts/make-base-image.js [-o busybox.tar] [-t busybox:latest] [--busybox PATH] [--gzip] [--json] [--quiet]
//
// The output is deterministic for a given busybox binary: GNU tar with sorted names, numeric
// owner 0, and all times set to the binary's mtime (or SOURCE_DATE_EPOCH when set).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, closeSync,
  readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

function usage(code) {
  const out = code === 0 ? process.stdout : process.stderr;
  out.write('usage: make-base-image.js [-o FILE] [-t NAME:TAG] [--busybox PATH] [--gzip] [--json] [--quiet]\n');
  process.exit(code);
}

const opts = { output: 'busybox.tar', tag: 'busybox:latest', busybox: undefined, gzip: false, json: false, quiet: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const val = () => {
    if (i + 1 >= argv.length) usage(2);
    return argv[++i];
  };
  if (a === '-o' || a === '--output') opts.output = val();
  else if (a === '-t' || a === '--tag') opts.tag = val();
  else if (a === '--busybox') opts.busybox = val();
  else if (a === '--gzip') opts.gzip = true;
  else if (a === '--json') opts.json = true;
  else if (a === '-q' || a === '--quiet') opts.quiet = true;
  else if (a === '-h' || a === '--help') usage(0);
  else usage(2);
}
if (!/^[a-z0-9][a-z0-9._\/-]*:[\w][\w.-]{0,127}$/.test(opts.tag)) {
  console.error(`make-base-image: invalid tag "${opts.tag}" (want name:tag)`);
  process.exit(2);
}

function fail(msg) {
  console.error(`make-base-image: ${msg}`);
  process.exit(1);
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'buffer', maxBuffer: 256 << 20, ...options });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString().trim()}`);
  return r.stdout;
}

/** True when the ELF file has no PT_INTERP program header (statically linked). */
function isStaticElf(path) {
  const fd = openSync(path, 'r');
  try {
    const h = Buffer.alloc(64);
    readSync(fd, h, 0, 64, 0);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2) return false; // ELF64 only
    const phoff = Number(h.readBigUInt64LE(32));
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3) return false; // PT_INTERP
    return true;
  } finally {
    closeSync(fd);
  }
}

const candidates = opts.busybox ? [opts.busybox] : ['/bin/busybox', '/usr/bin/busybox', '/usr/sbin/busybox'];
const busybox = candidates.find((p) => existsSync(p));
if (!busybox) fail('busybox not found; install Debian\'s busybox-static (scripts/setup.sh does)');
const busyboxReal = realpathSync(busybox);
if (!isStaticElf(busyboxReal)) fail(`${busybox} is not a statically linked ELF64 binary; install busybox-static`);

const epoch = process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : Math.floor(statSync(busyboxReal).mtimeMs / 1000);
const created = new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');
const version = (run(busyboxReal, []).toString().split('\n')[0] ?? 'BusyBox').trim().replace(/ multi-call binary\.?$/, '');
const archMap = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
const architecture = archMap[process.arch] ?? process.arch;

const work = mkdtempSync(join(tmpdir(), 'strata-base-'));
try {
  const rootfs = join(work, 'rootfs');
  const dirs = { bin: 0o755, dev: 0o755, etc: 0o755, home: 0o755, proc: 0o755, root: 0o700, sys: 0o755, tmp: 0o1777, sbin: 0o755, usr: 0o755, 'usr/bin': 0o755, 'usr/sbin': 0o755, var: 0o755, 'var/www': 0o755 };
  for (const [d, mode] of Object.entries(dirs)) {
    mkdirSync(join(rootfs, d), { recursive: true });
    chmodSync(join(rootfs, d), mode);
  }
  copyFileSync(busyboxReal, join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  // one symlink per applet at its usual place (`busybox --list-full`: "bin/sh", "usr/bin/wc", ...)
  const applets = run(busyboxReal, ['--list-full']).toString().split('\n').map((s) => s.trim()).filter(Boolean);
  const seen = new Set(['bin/busybox']);
  for (const rel of applets) {
    if (seen.has(rel) || rel.includes('..') || rel.startsWith('/')) continue;
    seen.add(rel);
    mkdirSync(join(rootfs, dirname(rel)), { recursive: true });
    symlinkSync('/bin/busybox', join(rootfs, rel));
  }
  for (const want of ['bin/sh', 'bin/ls', 'bin/cat', 'bin/echo']) {
    if (!seen.has(want)) fail(`busybox has no ${want} applet`);
  }
  const files = {
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n',
    'etc/group': 'root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n',
    'etc/shadow': 'root:*::0:::::\nwww-data:*::0:::::\nnobody:*::0:::::\n',
    'var/www/index.html': '<h1>strata busybox</h1>\n',
  };
  for (const [p, content] of Object.entries(files)) {
    writeFileSync(join(rootfs, p), content);
    chmodSync(join(rootfs, p), p === 'etc/shadow' ? 0o640 : 0o644);
  }

  const tarCommon = ['--format=gnu', '--sort=name', '--owner=0', '--group=0', '--numeric-owner', `--mtime=@${epoch}`];
  const top = Object.keys(dirs).filter((d) => !d.includes('/')).sort();
  const layer = run('tar', [...tarCommon, '-C', rootfs, '-cf', '-', ...top]);
  const diffId = `sha256:${createHash('sha256').update(layer).digest('hex')}`;

  const config = {
    architecture,
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['sh'],
    },
    created,
    history: [
      { created, created_by: `/bin/sh -c #(nop) ADD file:${diffId.slice(7)} in / (${version}, strata make-base-image)` },
      { created, created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true },
    ],
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [diffId] },
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const imageId = `sha256:${createHash('sha256').update(configBytes).digest('hex')}`;

  const arch = join(work, 'archive');
  const layerDir = diffId.slice(7);
  mkdirSync(join(arch, layerDir), { recursive: true });
  writeFileSync(join(arch, layerDir, 'layer.tar'), layer);
  writeFileSync(join(arch, layerDir, 'VERSION'), '1.0');
  writeFileSync(join(arch, `${imageId.slice(7)}.json`), configBytes);
  const colon = opts.tag.lastIndexOf(':');
  const [repo, tag] = [opts.tag.slice(0, colon), opts.tag.slice(colon + 1)];
  writeFileSync(join(arch, 'manifest.json'), JSON.stringify([{ Config: `${imageId.slice(7)}.json`, RepoTags: [opts.tag], Layers: [`${layerDir}/layer.tar`] }]) + '\n');
  writeFileSync(join(arch, 'repositories'), JSON.stringify({ [repo]: { [tag]: layerDir } }) + '\n');
  const members = [layerDir, `${imageId.slice(7)}.json`, 'manifest.json', 'repositories'];
  let archive = run('tar', [...tarCommon, '-C', arch, '-cf', '-', ...members]);
  if (opts.gzip) archive = run('gzip', ['-n', '-6', '-c'], { input: archive });
  const out = resolve(opts.output);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, archive);

  const info = { file: out, tag: opts.tag, id: imageId, diffIds: [diffId], layerSize: layer.length, applets: seen.size - 1, busybox: version, architecture };
  if (opts.json) process.stdout.write(JSON.stringify(info, null, 2) + '\n');
  else if (!opts.quiet) {
    process.stdout.write(`wrote ${out}: ${opts.tag} ${imageId}\n  layer ${diffId} (${layer.length} bytes, ${info.applets} applets, ${version})\n`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
