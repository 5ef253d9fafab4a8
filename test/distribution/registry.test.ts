// The distribution client against a real registry (Debian's docker-registry, i.e. registry:2)
// on loopback: push, pull back, re-push, cross-repository mount, skopeo interop, a tampered
// blob, and connections cut mid-transfer by a TCP proxy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';

import { DigestMismatchError } from '../../src/errors.js';
import { parseDockerRef } from '../../src/images/reference.js';
import {
  DistributionMetadataStore, MediaTypes, RegistryClient, fetchImage, pushImage,
  type FetchedImage, type HttpExchange, type PushLayer, type RegistryClientOptions,
} from '../../src/distribution/index.js';
import { TestRegistry, makeTestImage, noise, registrySkipReason, sha256Of, type TestImage } from '../helpers/registry.js';
import { buildTar } from '../helpers/tar-builder.js';

const skip = registrySkipReason({ skopeo: true });

function pushLayers(image: TestImage): PushLayer[] {
  return image.layers.map((l) => ({ diffId: l.diffId, open: async () => Readable.from([l.tar]) }));
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Downloads every layer and checks blob digest, size and diffID of the decompressed bytes. */
async function verifyPulled(pulled: FetchedImage, expected: TestImage): Promise<void> {
  assert.deepEqual(pulled.config, expected.config);
  assert.equal(pulled.configDigest, expected.configDigest);
  assert.equal(pulled.layers.length, expected.layers.length);
  for (const [i, layer] of pulled.layers.entries()) {
    const blob = await readAll(await layer.open());
    assert.equal(sha256Of(blob), layer.digest);
    assert.equal(blob.length, layer.descriptor.size);
    const tar = gunzipSync(blob);
    assert.equal(sha256Of(tar), expected.layers[i]!.diffId);
    assert.equal(layer.diffId, expected.layers[i]!.diffId);
    assert.ok(tar.equals(expected.layers[i]!.tar));
  }
}

function run(cmd: string, args: string[]): { stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** Forwards TCP to the registry, counting bytes each way; can cut one connection at a byte count. */
class CutProxy {
  readonly server: net.Server;
  port = 0;
  /** Client → registry bytes forwarded. */
  up = 0;
  /** Registry → client bytes forwarded. */
  down = 0;
  cuts = 0;
  #cutUpAt: number | undefined;
  #cutDownAt: number | undefined;
  readonly #sockets = new Set<net.Socket>();

  constructor(readonly target: number) {
    this.server = net.createServer((client) => this.#connect(client));
  }

  static async start(target: number): Promise<CutProxy> {
    const p = new CutProxy(target);
    await new Promise<void>((resolve) => p.server.listen(0, '127.0.0.1', resolve));
    p.port = (p.server.address() as net.AddressInfo).port;
    return p;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Cut the connection carrying the byte at `up` client→registry bytes from now. */
  cutUploadAfter(bytes: number): void {
    this.#cutUpAt = this.up + bytes;
  }

  cutDownloadAfter(bytes: number): void {
    this.#cutDownAt = this.down + bytes;
  }

  #connect(client: net.Socket): void {
    const upstream = net.connect(this.target, '127.0.0.1');
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    const kill = () => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    const forward = (from: net.Socket, to: net.Socket, dir: 'up' | 'down') => {
      from.on('data', (data: Buffer) => {
        const limit = dir === 'up' ? this.#cutUpAt : this.#cutDownAt;
        let chunk = data;
        let cut = false;
        if (limit !== undefined && this[dir] + chunk.length >= limit) {
          chunk = chunk.subarray(0, Math.max(0, limit - this[dir]));
          cut = true;
          if (dir === 'up') this.#cutUpAt = undefined;
          else this.#cutDownAt = undefined;
        }
        this[dir] += chunk.length;
        if (cut) {
          this.cuts++;
          // What was forwarded reaches the other side; then the connection dies.
          to.write(chunk, () => kill());
          return;
        }
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.on('end', () => to.end());
      from.on('error', kill);
      from.on('close', kill);
    };
    forward(client, upstream, 'up');
    forward(upstream, client, 'down');
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('distribution client against docker-registry', { skip }, () => {
  let registry: TestRegistry;
  let work: string;
  let exchanges: HttpExchange[] = [];
  const clients: RegistryClient[] = [];
  const client = (o: RegistryClientOptions = {}) => {
    const c = new RegistryClient({ onExchange: (e) => exchanges.push(e), ...o });
    clients.push(c);
    return c;
  };

  // Three layers: a few small files, 3 MiB of noise, 1 MiB of text that compresses well.
  const image = makeTestImage([
    [{ name: 'etc/', mode: 0o755 }, { name: 'etc/hostname', body: 'strata\n' }, { name: 'bin/', mode: 0o755 }],
    [{ name: 'data/', mode: 0o755 }, { name: 'data/noise.bin', body: noise(3 << 20, 7) }],
    [{ name: 'srv/', mode: 0o755 }, { name: 'srv/words.txt', body: 'all work and no play\n'.repeat(50_000) }],
  ]);

  before(async () => {
    registry = await TestRegistry.start();
    work = await mkdtemp(join(tmpdir(), 'strata-dist-test-'));
  });

  after(async () => {
    for (const c of clients) c.close();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('push a 3-layer image, pull it back: same manifest, config and layers; metadata in Docker format', async () => {
    const metadata = new DistributionMetadataStore(join(work, 'image-a'));
    exchanges = [];
    const c = client({ chunkSize: 1 << 20 });
    const ref = parseDockerRef(`${registry.host}/strata/app:1`);
    const pushed = await pushImage(c, { reference: ref, config: image.config, layers: pushLayers(image), metadata });
    assert.equal(pushed.mediaType, MediaTypes.dockerManifest);
    assert.equal(pushed.configDigest, image.configDigest);
    assert.equal(pushed.configAction, 'uploaded');
    assert.deepEqual(pushed.layers.map((l) => l.action), ['uploaded', 'uploaded', 'uploaded']);
    // The 3 MiB noise layer went up in several 1 MiB PATCHes.
    assert.ok(exchanges.filter((e) => e.method === 'PATCH').length >= 3);
    const manifest = JSON.parse(pushed.manifest.toString());
    assert.equal(pushed.manifest.toString(), JSON.stringify(manifest, null, 3), 'docker serialisation: 3-space indent');

    const pulled = await fetchImage(c, ref);
    assert.equal(pulled.digest, pushed.digest);
    assert.equal(pulled.manifest.digest, pushed.digest);
    assert.deepEqual(pulled.manifest.raw, pushed.manifest);
    assert.deepEqual(pulled.layers.map((l) => l.digest), pushed.layers.map((l) => l.digest));
    await verifyPulled(pulled, image);

    // Docker's distribution/ files, byte for byte.
    for (const l of pushed.layers) {
      const v2 = await readFile(join(metadata.root, 'v2metadata-by-diffid', 'sha256', l.diffId.slice(7)), 'utf8');
      const entries = JSON.parse(v2) as { Digest: string; SourceRepository: string; HMAC: string }[];
      assert.equal(entries.length, 1);
      assert.equal(v2, JSON.stringify([{ Digest: l.digest, SourceRepository: `${registry.host}/strata/app`, HMAC: entries[0]!.HMAC }]));
      assert.match(entries[0]!.HMAC, /^[0-9a-f]{64}$/);
      assert.equal(await readFile(join(metadata.root, 'diffid-by-digest', 'sha256', l.digest.slice(7)), 'utf8'), l.diffId);
    }
    assert.equal((await stat(metadata.root)).mode & 0o777, 0o700);
    assert.equal((await stat(join(metadata.root, 'diffid-by-digest', 'sha256'))).mode & 0o777, 0o755);

    // A pull records its own entries (empty HMAC) next to the push's.
    await metadata.recordPull(pulled.repository, pulled.layers);
    const after = await metadata.v2Metadata(image.layers[0]!.diffId);
    assert.equal(after.length, 2);
    assert.deepEqual(after[1], { Digest: pulled.layers[0]!.digest, SourceRepository: `${registry.host}/strata/app`, HMAC: '' });
  });

  test('a second push uploads no blobs and gives the same digest; another repository mounts', async () => {
    const metadata = new DistributionMetadataStore(join(work, 'image-b'));
    const c = client();
    const ref = parseDockerRef(`${registry.host}/strata/twice:1`);
    const first = await pushImage(c, { reference: ref, config: image.config, layers: pushLayers(image), metadata });

    exchanges = [];
    const second = await pushImage(c, { reference: ref, config: image.config, layers: pushLayers(image), metadata });
    assert.equal(second.digest, first.digest);
    assert.deepEqual(second.layers.map((l) => l.action), ['exists', 'exists', 'exists']);
    assert.equal(second.configAction, 'exists');
    const uploads = exchanges.filter((e) => e.method === 'POST' || e.method === 'PATCH' || (e.method === 'PUT' && e.url.includes('/blobs/')));
    assert.deepEqual(uploads, [], 'no upload requests');
    assert.deepEqual(exchanges.filter((e) => e.method === 'PUT').map((e) => new URL(e.url).pathname), ['/v2/strata/twice/manifests/1']);

    // Same layers to another repository of the same registry: mounted, not sent.
    exchanges = [];
    const other = await pushImage(c, { reference: parseDockerRef(`${registry.host}/strata/other:1`), config: image.config, layers: pushLayers(image), metadata });
    assert.equal(other.digest, first.digest);
    assert.deepEqual(other.layers.map((l) => l.action), ['mounted', 'mounted', 'mounted']);
    assert.equal(exchanges.filter((e) => e.method === 'PATCH').length, 0);
    const mounts = exchanges.filter((e) => e.method === 'POST' && e.url.includes('mount='));
    assert.equal(mounts.length, 3);
    assert.ok(mounts.every((e) => e.status === 201 && e.url.includes('from=strata%2Ftwice')));
    await verifyPulled(await fetchImage(c, `${registry.host}/strata/other:1`), image);
  });

  test('a fresh metadata store still gives the same digest (deterministic gzip)', async () => {
    const c = client();
    const a = await pushImage(c, { reference: `${registry.host}/det/a:1`, config: image.config, layers: pushLayers(image) });
    const b = await pushImage(c, { reference: `${registry.host}/det/b:1`, config: image.config, layers: pushLayers(image) });
    assert.equal(a.digest, b.digest);
    assert.deepEqual(a.layers.map((l) => l.digest), b.layers.map((l) => l.digest));
  });

  test('skopeo reads what strata pushed: same manifest and config bytes, blobs verify', async () => {
    const c = client();
    const pushed = await pushImage(c, { reference: `${registry.host}/interop/ours:1`, config: image.config, layers: pushLayers(image) });
    const src = `docker://${registry.host}/interop/ours:1`;
    const inspect = JSON.parse(run('skopeo', ['inspect', '--tls-verify=false', src]).stdout) as { Digest: string; Layers: string[] };
    assert.equal(inspect.Digest, pushed.digest);
    assert.deepEqual(inspect.Layers, pushed.layers.map((l) => l.digest));
    const raw = spawnSync('skopeo', ['inspect', '--tls-verify=false', '--raw', src]);
    assert.deepEqual(raw.stdout, pushed.manifest);
    const config = spawnSync('skopeo', ['inspect', '--tls-verify=false', '--config', '--raw', src]);
    assert.deepEqual(config.stdout, image.config);
    // A full copy makes skopeo verify every blob digest.
    const dir = join(work, 'skopeo-dir');
    run('skopeo', ['copy', '--src-tls-verify=false', src, `dir:${dir}`]);
    const files = await readdir(dir);
    for (const l of pushed.layers) assert.ok(files.includes(l.digest.slice(7)));
  });

  test('strata pulls what skopeo copied from a docker-archive', async () => {
    const archiveImage = makeTestImage([
      [{ name: 'a/', mode: 0o755 }, { name: 'a/one', body: 'one\n' }],
      [{ name: 'b/', mode: 0o755 }, { name: 'b/two', body: noise(200_000, 3) }],
    ], { label: 'from-skopeo' });
    const configName = `${archiveImage.configDigest.slice(7)}.json`;
    const archive = buildTar([
      { name: configName, body: archiveImage.config },
      ...archiveImage.layers.map((l, i) => ({ name: `layer${i}/layer.tar`, body: l.tar })),
      {
        name: 'manifest.json',
        body: JSON.stringify([{ Config: configName, RepoTags: ['interop/theirs:1'], Layers: archiveImage.layers.map((_, i) => `layer${i}/layer.tar`) }]),
      },
    ]);
    const file = join(work, 'archive.tar');
    await writeFile(file, archive);
    run('skopeo', ['copy', '--dest-tls-verify=false', `docker-archive:${file}`, `docker://${registry.host}/interop/theirs:1`]);

    const pulled = await fetchImage(client(), `${registry.host}/interop/theirs:1`);
    await verifyPulled(pulled, archiveImage);
  });

  test('an index is resolved to the linux/amd64 manifest (or the platform asked for)', async () => {
    const c = client();
    const arm = makeTestImage([[{ name: 'arm', body: 'arm64\n' }]], { architecture: 'arm64' });
    const amd = await pushImage(c, { reference: `${registry.host}/multi/app:amd64`, config: image.config, layers: pushLayers(image), format: 'oci' });
    const armPushed = await pushImage(c, { reference: `${registry.host}/multi/app:arm64`, config: arm.config, layers: pushLayers(arm), format: 'oci' });
    const index = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: [
        { mediaType: MediaTypes.ociManifest, digest: armPushed.digest, size: armPushed.manifest.length, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
        { mediaType: MediaTypes.ociManifest, digest: amd.digest, size: amd.manifest.length, platform: { architecture: 'amd64', os: 'linux' } },
      ],
    }));
    const repo = await c.repository(parseDockerRef(`${registry.host}/multi/app:latest`), ['pull', 'push']);
    await repo.putManifest('latest', MediaTypes.ociIndex, index);

    const pulled = await fetchImage(c, `${registry.host}/multi/app`, { platform: { os: 'linux', architecture: 'amd64' } });
    assert.equal(pulled.digest, sha256Of(index));
    assert.equal(pulled.index?.digest, sha256Of(index));
    assert.equal(pulled.manifest.digest, amd.digest);
    assert.equal(pulled.manifest.mediaType, MediaTypes.ociManifest);
    await verifyPulled(pulled, image);
    const armPulled = await fetchImage(c, `${registry.host}/multi/app`, { platform: { os: 'linux', architecture: 'arm64' } });
    assert.equal(armPulled.configDigest, arm.configDigest);
    await assert.rejects(fetchImage(c, `${registry.host}/multi/app`, { platform: { os: 'linux', architecture: 's390x' } }),
      /no matching manifest for linux\/s390x in the manifest list entries/);
  });

  test('a tampered blob in the registry storage fails with DigestMismatchError before the stream ends', async () => {
    const c = client();
    const ref = `${registry.host}/tamper/app:1`;
    const pushed = await pushImage(c, { reference: ref, config: image.config, layers: pushLayers(image) });
    const victim = pushed.layers[1]!;
    const path = registry.blobPath(victim.digest);
    const original = await readFile(path);
    const bad = Buffer.from(original);
    bad[bad.length >> 1] ^= 0xff;
    await writeFile(path, bad);
    try {
      const pulled = await fetchImage(c, ref);
      const layer = pulled.layers[1]!;
      let ended = false;
      let received = 0;
      const sink = new Writable({
        write(chunk: Buffer, _enc, cb) { received += chunk.length; cb(); },
        final(cb) { ended = true; cb(); },
      });
      const err = await pipeline(await layer.open(), sink).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof DigestMismatchError, `expected DigestMismatchError, got ${String(err)}`);
      assert.equal(err.expected, victim.digest);
      assert.equal(err.actual, sha256Of(bad));
      assert.equal(ended, false, 'the consumer never saw a clean end');
      assert.equal(received, bad.length, 'streamed, not buffered: every byte passed before the verdict');
      // The manifest and config are untouched and still verify.
      await readAll(await pulled.layers[0]!.open());
    } finally {
      await writeFile(path, original);
    }
  });

  test('a download cut midway resumes with Range and still verifies', async () => {
    const proxy = await CutProxy.start(registry.port);
    try {
      const c = client();
      const ref = parseDockerRef(`${registry.host}/resume/pull:1`);
      await pushImage(c, { reference: ref, config: image.config, layers: pushLayers(image) });
      const viaProxy = client();
      const pulled = await fetchImage(viaProxy, `${proxy.host}/resume/pull:1`);
      const layer = pulled.layers[1]!;
      const resumes: number[] = [];
      const before = proxy.down;
      proxy.cutDownloadAfter(layer.descriptor.size >> 1);
      const blob = await readAll(await layer.open({ onResume: (offset) => resumes.push(offset) }));
      assert.equal(proxy.cuts, 1);
      assert.equal(resumes.length, 1);
      assert.ok(resumes[0]! > 0 && resumes[0]! < layer.descriptor.size);
      assert.equal(sha256Of(blob), layer.digest);
      // Resumed, not restarted: well under two copies went over the wire.
      assert.ok(proxy.down - before < layer.descriptor.size * 1.2, `downloaded ${proxy.down - before} for ${layer.descriptor.size}`);
      assert.ok(exchanges.some((e) => e.method === 'GET' && e.status === 206));
    } finally {
      await proxy.close();
    }
  });

  test('a push whose connection is cut mid-layer completes, sending fewer bytes after the cut than a fresh push', async () => {
    const big = makeTestImage([
      [{ name: 'small', body: 'x\n' }],
      [{ name: 'big1', body: noise(6 << 20, 11) }],
      [{ name: 'big2', body: noise(6 << 20, 12) }],
    ], { label: 'cut' });
    const proxy = await CutProxy.start(registry.port);
    try {
      const c = client({ chunkSize: 1 << 20 });
      const fresh = await pushImage(c, { reference: `${proxy.host}/cut/fresh:1`, config: big.config, layers: pushLayers(big) });
      const freshBytes = proxy.up;

      const start = proxy.up;
      const cutAt = Math.floor(freshBytes * 0.6);
      proxy.cutUploadAfter(cutAt);
      const cut = await pushImage(c, { reference: `${proxy.host}/cut/resumed:1`, config: big.config, layers: pushLayers(big) });
      const total = proxy.up - start;
      const afterCut = total - cutAt;
      assert.equal(proxy.cuts, 1);
      assert.equal(cut.digest, fresh.digest, 'same manifest digest after recovering');
      const recovered = cut.layers.reduce((n, l) => n + l.resumes + l.restarts, 0);
      assert.ok(recovered >= 1, 'a layer had to resume or restart');
      assert.ok(afterCut < freshBytes, `sent ${afterCut} bytes after the cut, a fresh push sends ${freshBytes}`);
      console.log(`# cut push: fresh ${freshBytes} B; cut at ${cutAt} B; after the cut ${afterCut} B (${(100 * afterCut / freshBytes).toFixed(0)}% of fresh); total ${total} B; resumes ${cut.layers.map((l) => l.resumes)}, restarts ${cut.layers.map((l) => l.restarts)}`);
      await verifyPulled(await fetchImage(c, `${registry.host}/cut/resumed:1`), big);
    } finally {
      await proxy.close();
    }
  });
});
