/**
 * A private, real registry for tests: Debian's `docker-registry` (distribution 2.x, what
 * `registry:2` runs) on 127.0.0.1 at a free port, with its own temp dir holding config.yml,
 * the storage root and the log. Optional htpasswd basic auth (hashes made by `htpasswd -Bbn`
 * from apache2-utils) or token auth against a caller-provided token server.
 *
 * `stop()` kills the process and removes the temp dir; registries still running when the test
 * process exits are killed by an exit hook, so a failing test cannot leave one behind.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { buildTar, type TarSpec } from './tar-builder.js';

export interface RegistryUser {
  username: string;
  password: string;
}

export interface TokenAuthConfig {
  realm: string;
  service: string;
  issuer: string;
  /** PEM file with the certificate whose key signs the tokens. */
  rootCertBundle: string;
}

export interface StartRegistryOptions {
  /** Basic auth with these users. */
  users?: RegistryUser[];
  /** Bearer token auth. */
  token?: TokenAuthConfig;
}

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

/** Why a test registry cannot run here, or undefined. */
export function registrySkipReason(options: { htpasswd?: boolean; skopeo?: boolean } = {}): string | undefined {
  if (!which('docker-registry')) return 'docker-registry is not installed (apt-get install -y docker-registry)';
  if (options.htpasswd && !which('htpasswd')) return 'htpasswd is not installed (apt-get install -y apache2-utils)';
  if (options.skopeo && !which('skopeo')) return 'skopeo is not installed';
  return undefined;
}

/** A port that was free a moment ago (the registry binds it itself; start() retries on a race). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function probe(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/v2/', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(undefined));
    req.setTimeout(1000, () => req.destroy());
  });
}

export class TestRegistry {
  readonly dir: string;
  readonly storage: string;
  readonly port: number;
  readonly #child: ChildProcess;
  readonly #logFile: string;

  private constructor(dir: string, port: number, child: ChildProcess, logFile: string) {
    this.dir = dir;
    this.storage = join(dir, 'storage');
    this.port = port;
    this.#child = child;
    this.#logFile = logFile;
  }

  /** `127.0.0.1:<port>`: the registry domain references use. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  /** Where the registry keeps a blob's bytes (filesystem driver layout). */
  blobPath(digest: string): string {
    const hex = digest.replace(/^sha256:/, '');
    return join(this.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
  }

  logs(): string {
    try {
      return readFileSync(this.#logFile, 'utf8');
    } catch {
      return '';
    }
  }

  static async start(options: StartRegistryOptions = {}): Promise<TestRegistry> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const dir = await mkdtemp(join(process.env.STRATA_TEST_TMP ?? tmpdir(), 'strata-registry-'));
      try {
        return await TestRegistry.#startIn(dir, options);
      } catch (err) {
        lastError = err;
        await rm(dir, { recursive: true, force: true });
      }
    }
    throw lastError;
  }

  static async #startIn(dir: string, options: StartRegistryOptions): Promise<TestRegistry> {
    const port = await freePort();
    const lines = [
      'version: 0.1',
      'log:',
      '  level: info',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'storage')}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      `  secret: ${randomBytes(16).toString('hex')}`,
    ];
    if (options.users && options.users.length > 0) {
      const entries = options.users.map((u) => {
        const r = spawnSync('htpasswd', ['-Bbn', u.username, u.password], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`htpasswd failed: ${r.stderr}`);
        return r.stdout.trim();
      });
      await writeFile(join(dir, 'htpasswd'), entries.join('\n') + '\n');
      lines.push('auth:', '  htpasswd:', '    realm: strata-test', `    path: ${join(dir, 'htpasswd')}`);
    } else if (options.token) {
      const t = options.token;
      lines.push('auth:', '  token:', `    realm: ${t.realm}`, `    service: ${t.service}`, `    issuer: ${t.issuer}`, `    rootcertbundle: ${t.rootCertBundle}`);
    }
    const config = join(dir, 'config.yml');
    await writeFile(config, lines.join('\n') + '\n');
    const logFile = join(dir, 'registry.log');
    const fd = openSync(logFile, 'a');
    const child = spawn('docker-registry', ['serve', config], { cwd: dir, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    live.add(child);
    let exited = false;
    child.on('exit', () => {
      exited = true;
      live.delete(child);
    });
    const registry = new TestRegistry(dir, port, child, logFile);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (exited) break;
      const status = await probe(port);
      if (status === 200 || status === 401) return registry;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    throw new Error(`docker-registry did not come up on ${port}:\n${registry.logs().slice(-2000)}`);
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// images to push: layer tars built from header specs, and a config listing their diffIDs

export interface TestImage {
  config: Buffer;
  configDigest: `sha256:${string}`;
  layers: { tar: Buffer; diffId: `sha256:${string}` }[];
}

export function sha256Of(data: Uint8Array | string): `sha256:${string}` {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** An image whose layers are `buildTar(spec)` for each spec, with a minimal Docker config. */
export function makeTestImage(layerSpecs: readonly TarSpec[][], options: { architecture?: string; label?: string } = {}): TestImage {
  const layers = layerSpecs.map((spec) => {
    const tar = buildTar(spec);
    return { tar, diffId: sha256Of(tar) };
  });
  const config = Buffer.from(JSON.stringify({
    architecture: options.architecture ?? 'amd64',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'], Labels: { test: options.label ?? 'strata' } },
    created: '2026-01-01T00:00:00Z',
    history: layers.map((_, i) => ({ created: '2026-01-01T00:00:00Z', created_by: `layer ${i}` })),
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  }));
  return { config, configDigest: sha256Of(config), layers };
}

/** Bytes that gzip cannot shrink, from a seeded generator (no crypto RNG needed for tests). */
export function noise(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out.writeUInt32LE(x, Math.min(i, size - 4));
  }
  return out;
}
