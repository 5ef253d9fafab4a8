/**
 * The engine side of `build`: the BuildExecutor the build module drives, on the real
 * storage. Each filesystem step is a workspace = an RW layer (with Docker's init layer, so
 * the placeholders runc needs never end up in a layer) on the parent image's top layer;
 * RUN is a foreground `runc run` in it (host network, as the classic builder's default
 * bridge would need a daemon); commit registers the RW layer's diff (overlay: the upper dir
 * alone) as the new layer. Cache lookups walk the children of the parent image, as Docker's
 * classic builder does.
 */
import { once } from 'node:events';
import { closeSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';

import { applyCopy } from '../build/copy.js';
import type { BuildExecutor, MountedImage, ResolvedImage, RunSpec, Workspace } from '../build/executor.js';
import type { CachedImage } from '../build/cache.js';
import { newestImage } from '../build/cache.js';
import type { ImageConfigJson } from '../build/image-config.js';
import type { Digest } from '../digest.js';
import { NotFoundError, StrataError } from '../errors.js';
import type { ImageStore } from '../images/image-store.js';
import type { LayerStore, RWLayer } from '../layers/layer-store.js';
import { Runc, runcErrorMessages } from '../runtime/runc.js';
import { buildSpec } from '../runtime/spec.js';
import { randomId } from '../sys/ids.js';
import { makePipe } from '../sys/pipe.js';
import { INIT_LAYER_DIRS, setupInitLayer } from './container-files.js';
import type { ImageService } from './images.js';

interface BuildWorkspace extends Workspace {
  readonly layer: RWLayer;
  readonly imageId: string;
  readonly parentLayer?: Digest;
}

export interface BuildExecutorOptions {
  images: ImageService;
  imageStore: ImageStore;
  layers: LayerStore;
  /** runc's state dir and bundles (Engine.execRoot). */
  execRoot: string;
}

function asWorkspace(ws: Workspace): BuildWorkspace {
  return ws as BuildWorkspace;
}

export class EngineBuildExecutor implements BuildExecutor {
  readonly #o: BuildExecutorOptions;
  readonly #runc: Runc;

  constructor(o: BuildExecutorOptions) {
    this.#o = o;
    this.#runc = new Runc({ root: path.join(o.execRoot, 'runc'), tmpDir: o.execRoot });
  }

  async findChild(parentId: string, predicate: (image: CachedImage) => boolean): Promise<CachedImage | undefined> {
    const store = this.#o.imageStore;
    let ids: Digest[];
    if (parentId === '') {
      ids = (await store.list()).filter((r) => r.parent === undefined).map((r) => r.id);
    } else {
      ids = await store.children(parentId as Digest);
    }
    const candidates: CachedImage[] = [];
    for (const id of ids) {
      const rec = await store.get(id);
      if (!rec) continue;
      const img = { id, config: rec.config as unknown as ImageConfigJson };
      if (predicate(img)) candidates.push(img);
    }
    return newestImage(candidates);
  }

  async resolveImage(ref: string): Promise<ResolvedImage> {
    const rec = await this.#o.images.find(ref);
    if (!rec) throw new NotFoundError(`pull access denied for ${ref.split(':')[0]}, repository does not exist or may require 'docker login'`);
    return { id: rec.id, config: rec.config as unknown as ImageConfigJson };
  }

  async #topLayer(imageId: string): Promise<Digest | undefined> {
    if (imageId === '') return undefined;
    const rec = await this.#o.imageStore.get(imageId as Digest);
    if (!rec) throw new NotFoundError(`No such image: ${imageId}`);
    return rec.topLayer;
  }

  async open(imageId: string): Promise<Workspace> {
    const parentLayer = await this.#topLayer(imageId);
    const layer = await this.#o.layers.createRWLayer(`build-${randomId()}`, parentLayer, { init: setupInitLayer, initDirs: INIT_LAYER_DIRS });
    const rootfs = await layer.mount();
    const ws: BuildWorkspace = { rootfs, layer, imageId, ...(parentLayer ? { parentLayer } : {}) };
    return ws;
  }

  async copyInto(ws: Workspace, ops: Parameters<BuildExecutor['copyInto']>[1], options: Parameters<BuildExecutor['copyInto']>[2]): Promise<void> {
    await applyCopy(ws.rootfs, ops, options);
  }

  /**
   * RUN: `runc run` in the foreground on the workspace, output streamed to the build log.
   * Host network (the host's resolv.conf and hosts), Docker's default capabilities.
   */
  async run(ws: Workspace, spec: RunSpec): Promise<number> {
    const id = spec.containerId;
    const bundle = path.join(this.#o.execRoot, `build-${id}`);
    await mkdir(bundle, { recursive: true, mode: 0o700 });
    try {
      const oci = await buildSpec({
        id,
        rootfs: ws.rootfs,
        args: spec.argv,
        env: spec.env,
        cwd: spec.workdir || '/',
        user: spec.user,
        network: 'host',
        utsMode: 'host',
        mounts: [
          { source: '/etc/resolv.conf', destination: '/etc/resolv.conf', readonly: true },
          { source: '/etc/hosts', destination: '/etc/hosts', readonly: true },
        ],
      });
      await writeFile(path.join(bundle, 'config.json'), JSON.stringify(oci));
      const logFile = path.join(bundle, 'log.json');
      const out = makePipe(bundle);
      const err = makePipe(bundle);
      const child = this.#runc.spawnRun(id, bundle, { pidFile: path.join(bundle, 'init.pid'), logFile, stdio: ['ignore', out.write, err.write] });
      closeSync(out.write);
      closeSync(err.write);
      const drained = Promise.all([forward(out.read, spec.stdout), forward(err.read, spec.stderr)]);
      const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
      await drained;
      const errors = runcErrorMessages(await readFile(logFile, 'utf8').catch(() => ''));
      if (code !== 0 && errors.length > 0 && !(await readFile(path.join(bundle, 'init.pid'), 'utf8').catch(() => ''))) {
        throw new StrataError('ERR_SYSTEM', `OCI runtime create failed: ${errors.join('; ')}: unknown`);
      }
      return code ?? 128 + (signal ? 9 : 0);
    } finally {
      if (await this.#runc.hasState(id)) await this.#runc.delete(id, { force: true }).catch(() => undefined);
      await rm(bundle, { recursive: true, force: true });
    }
  }

  async commit(ws: Workspace, makeConfig: (diffId: string | undefined) => Buffer): Promise<string> {
    const w = asWorkspace(ws);
    try {
      const layer: Readable = await w.layer.tarStream();
      return await this.#o.images.createImage({
        layer,
        parentLayer: w.parentLayer,
        ...(w.imageId ? { parentImage: w.imageId as Digest } : {}),
        makeConfig: (diffId) => makeConfig(diffId),
      });
    } finally {
      await this.discard(ws);
    }
  }

  async createImage(parentId: string, config: Buffer): Promise<string> {
    return this.#o.images.createImage({ ...(parentId ? { parentImage: parentId as Digest } : {}), makeConfig: () => config });
  }

  async discard(ws: Workspace): Promise<void> {
    const w = asWorkspace(ws);
    await w.layer.unmount().catch(() => undefined);
    await this.#o.layers.removeRWLayer(w.layer.name).catch((err: unknown) => {
      if (!(err instanceof NotFoundError)) throw err;
    });
  }

  async mountImage(imageId: string): Promise<MountedImage> {
    const ws = asWorkspace(await this.open(imageId));
    return { root: ws.rootfs, release: () => this.discard(ws) };
  }

  async tag(imageId: string, ref: string): Promise<void> {
    await this.#o.images.tag(imageId, ref);
  }
}

function forward(fd: number, sink: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve) => {
    const s = new Socket({ fd, readable: true, writable: false });
    s.on('data', (b: Buffer) => sink(b));
    s.on('end', () => resolve());
    s.on('close', () => resolve());
    s.on('error', () => resolve());
  });
}

export interface BuildRequest {
  /** A context directory, or a tar stream of one (`build -`). */
  context: string | Readable;
  /** `-f`: a path (relative to `cwd`), default `<context>/Dockerfile`; for a tar, a name in it. */
  dockerfile?: string;
  cwd?: string;
  options: import('../build/builder.js').BuildOptions;
  hooks?: import('../build/builder.js').BuildHooks;
  /** Where a tar context is extracted (the data root's tmp). */
  tmpDir: string;
  /** Told the context's size before the first step (the CLI's "Sending build context"). */
  onContext?: (bytes: number) => void;
}

/** Runs a build: the context prepared, the Dockerfile read, the Builder driven on `executor`. */
export async function runBuild(executor: EngineBuildExecutor, req: BuildRequest): Promise<import('../build/builder.js').BuildResult & { contextBytes: number }> {
  const { Builder } = await import('../build/builder.js');
  const { contextFromDirectory, contextFromTar } = await import('../build/context.js');
  if (typeof req.context !== 'string') {
    const ctx = await contextFromTar(req.context, { tmpDir: req.tmpDir, ...(req.dockerfile ? { dockerfile: req.dockerfile } : {}) });
    try {
      const text = await ctx.readDockerfile(req.dockerfile);
      return { ...(await Builder.build(text, ctx, req.options, executor, req.hooks)), contextBytes: 0 };
    } finally {
      await ctx.close();
    }
  }
  const dir = path.resolve(req.cwd ?? process.cwd(), req.context);
  const dockerfilePath = req.dockerfile ? path.resolve(req.cwd ?? process.cwd(), req.dockerfile) : path.join(dir, 'Dockerfile');
  const rel = path.relative(dir, dockerfilePath);
  let text: string;
  try {
    text = await readFile(dockerfilePath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${dockerfilePath}: no such file or directory`);
    }
    throw err;
  }
  const ctx = await contextFromDirectory(dir, rel.startsWith('..') ? {} : { dockerfile: rel });
  try {
    const contextBytes = await contextSize(dir);
    req.onContext?.(contextBytes);
    return { ...(await Builder.build(text, ctx, req.options, executor, req.hooks)), contextBytes };
  } finally {
    await ctx.close();
  }
}

/** Roughly what the docker CLI streams for a context: tar headers and padded file data. */
async function contextSize(dir: string): Promise<number> {
  let total = 1024;
  const walk = async (d: string): Promise<void> => {
    for (const name of await readdir(d)) {
      const p = path.join(d, name);
      const st = await lstat(p);
      total += 512 + (st.isFile() ? Math.ceil(st.size / 512) * 512 : 0);
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return total;
}
