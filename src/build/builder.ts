/**
 * Drives a build: plan.ts decides what each instruction means, the executor does the
 * engine-side work, and this file sequences them with the classic builder's cache rules and
 * its progress output:
 *
 * ```
 * Step 1/4 : FROM busybox:latest
 *  ---> 01b81e382111
 * Step 2/4 : ADD html /usr/share/nginx/html
 *  ---> Using cache
 *  ---> 54381b2a7408
 * Step 3/4 : VOLUME /usr/share/nginx/html
 *  ---> Running in c7afabba041f
 * Removing intermediate container c7afabba041f
 *  ---> aeca74cf9400
 * Successfully built e81f66e871ed
 * Successfully tagged cy_hy:latest
 * ```
 *
 * A metadata-only step whose working directory is known to exist stores its config without
 * opening a layer (Docker creates and commits an empty container; the result is the same
 * image config). Every container step first creates the config's WorkingDir, as Docker's
 * container create does, so a WORKDIR that already exists makes an empty layer.
 */
import { lstat, readFile } from 'node:fs/promises';

import { InvalidArgumentError, NotSupportedError, StrataError } from '../errors.js';
import { familiarString, parseNormalizedNamed, withDefaultTag } from '../images/reference.js';
import { cleanPath } from '../sys/go-path.js';
import { randomId } from '../sys/ids.js';
import { probeCache } from './cache.js';
import {
  hostNameLookup, imageTree, isTarArchive, resolveChown, resolveSources, sourcesChecksum,
  type NameLookup, type SourceTree,
} from './context.js';
import { mkdirAllNew, scopedPath, type CopyOp, type Identity } from './copy.js';
import type { BuildExecutor, MountedImage, ResolvedImage, Workspace } from './executor.js';
import {
  childImageConfig, cloneContainerConfig, nowRfc3339Nano, serializeImageConfig,
  type ContainerConfig, type ImageConfigJson,
} from './image-config.js';
import type { Instruction, Stage } from './instructions.js';
import {
  applyMetaArgs, createdContainerConfig, planBuild, StageState,
  type BuildPlan, type CopyAction, type PlanOptions, type RunAction, type CommitAction,
} from './plan.js';
import type { ShellLex } from './shell-words.js';

/** Docker version written into `docker_version` of built images. */
export const DEFAULT_DOCKER_VERSION = '20.10.24';

export interface BuildOptions extends PlanOptions {
  /** `-t` references; validated before anything runs. */
  tags?: readonly string[];
  /** `--no-cache`. */
  noCache?: boolean;
  /** `--rm` (default true): print "Removing intermediate container" like Docker. */
  rm?: boolean;
  /** `--platform` passed to the executor when resolving base images. */
  platform?: string;
  dockerVersion?: string;
  /** Clock for `created` (RFC 3339 with nanoseconds, UTC). */
  now?: () => string;
  /** Host user/group names for COPY --from checksums (default: this host's /etc files). */
  hostNames?: NameLookup;
}

export interface StepInfo {
  index: number;
  total: number;
  text: string;
}

export interface BuildHooks {
  /** Progress text as Docker prints it (whole lines, with their newlines). */
  stdout?(text: string): void;
  /** Parser warnings. */
  stderr?(text: string): void;
  onStep?(step: StepInfo): void;
  /** Raw output of RUN commands (defaults to `stdout`). */
  runOutput?(chunk: Buffer, stream: 'stdout' | 'stderr'): void;
}

export interface BuildResult {
  imageId: string;
  /** The tags applied, as users write them (`name:tag`). */
  tags: string[];
}

/** A RUN that failed: Docker's message and the exit code. */
export class BuildStepError extends StrataError {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super('ERR_SYSTEM', message);
    this.exitCode = exitCode;
  }
}

const short = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);
const isUrl = (s: string) => s.startsWith('http://') || s.startsWith('https://');

interface StageResult {
  name: string;
  imageId: string;
  image: ImageConfigJson | null;
}

/**
 * Builds a Dockerfile.
 *
 * @example
 * const ctx = await contextFromDirectory('.');
 * const { imageId } = await Builder.build(text, ctx, { tags: ['app:1'] }, executor, {
 *   stdout: (t) => process.stdout.write(t),
 * });
 */
export class Builder {
  static async build(dockerfile: string, context: SourceTree, options: BuildOptions, executor: BuildExecutor, hooks: BuildHooks = {}): Promise<BuildResult> {
    return new BuildRun(context, options, executor, hooks).run(dockerfile);
  }
}

class BuildRun {
  readonly #ctx: SourceTree;
  readonly #o: BuildOptions;
  readonly #x: BuildExecutor;
  readonly #h: BuildHooks;
  readonly #stages: StageResult[] = [];
  #names: NameLookup | undefined;
  #step = 1;
  #total = 0;
  #busted = false;
  /** Working directories known to exist in the current image. */
  #dirs = new Set<string>();

  constructor(ctx: SourceTree, o: BuildOptions, x: BuildExecutor, h: BuildHooks) {
    this.#ctx = ctx;
    this.#o = o;
    this.#x = x;
    this.#h = h;
  }

  #out(text: string): void {
    this.#h.stdout?.(text);
  }

  #now(): string {
    return (this.#o.now ?? nowRfc3339Nano)();
  }

  #printStep(text: string): void {
    this.#h.onStep?.({ index: this.#step, total: this.#total, text });
    this.#out(`Step ${this.#step}/${this.#total} : ${text}\n`);
    this.#step++;
  }

  async run(dockerfile: string): Promise<BuildResult> {
    const tags = (this.#o.tags ?? []).map((t) => {
      const ref = withDefaultTag(parseNormalizedNamed(t));
      if (ref.digest !== undefined) throw new InvalidArgumentError(`invalid reference format: ${t}`);
      return ref;
    });
    const plan = planBuild(dockerfile, this.#o);
    this.#total = plan.totalSteps;
    if (plan.dockerfile.warnings.length > 0) this.#h.stderr?.(plan.dockerfile.warnings.join('\n') + '\n');

    for (const meta of plan.dockerfile.metaArgs) {
      this.#printStep(meta.code);
      applyMetaArgs({ ...plan, dockerfile: { ...plan.dockerfile, metaArgs: [meta] } });
    }
    let last: StageState | undefined;
    for (const stage of plan.stages) {
      if (stage.name && this.#stages.some((s) => s.name === stage.name)) {
        throw new InvalidArgumentError(`${stage.name} stage name already used`);
      }
      last = await this.#runStage(plan, stage);
    }
    const warning = plan.buildArgs.unusedWarning();
    if (warning) this.#out(warning + '\n');
    if (!last || last.imageId === '') throw new InvalidArgumentError('No image was generated. Is your Dockerfile empty?');
    const imageId = last.imageId;
    this.#out(`Successfully built ${short(imageId)}\n`);
    const applied: string[] = [];
    for (const ref of tags) {
      await this.#x.tag(imageId, ref.toString());
      const name = familiarString(ref);
      applied.push(name);
      this.#out(`Successfully tagged ${name}\n`);
    }
    return { imageId, tags: applied };
  }

  async #runStage(plan: BuildPlan, stage: Stage): Promise<StageState> {
    const state = new StageState(plan);
    this.#printStep(stage.code);
    this.#busted = !!this.#o.noCache;
    this.#dirs = new Set();
    const base = await this.#resolveBase(plan, stage, state.lex);
    const triggers = state.begin(stage, base);
    if (triggers.length > 0) {
      this.#out(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? 's' : ''}\n`);
      for (const t of triggers) await this.#dispatch(state, StageState.parseTrigger(t));
    }
    this.#out(` ---> ${short(state.imageId)}\n`);
    for (const cmd of stage.commands) {
      this.#printStep(cmd.code);
      await this.#dispatch(state, cmd);
      this.#out(` ---> ${short(state.imageId)}\n`);
    }
    plan.buildArgs.mergeReferenced(state.buildArgs);
    this.#stages.push({ name: stage.name, imageId: state.imageId, image: state.parentImage });
    return state;
  }

  async #resolveBase(plan: BuildPlan, stage: Stage, lex: ShellLex): Promise<ResolvedImage> {
    const name = StageState.baseName(plan, stage, lex);
    const earlier = this.#stages.find((s) => s.name !== '' && s.name === name.toLowerCase());
    if (earlier) return { id: earlier.imageId, config: earlier.image };
    if (name === 'scratch') return { id: '', config: null };
    let platform = this.#o.platform;
    if (stage.platform) {
      const env = [...plan.buildArgs.allMeta()].map(([k, v]) => `${k}=${v}`);
      platform = lex.processWord(stage.platform, env);
    }
    return this.#x.resolveImage(name, { localOnly: false, ...(platform ? { platform } : {}) });
  }

  async #dispatch(state: StageState, cmd: Instruction): Promise<void> {
    const action = state.dispatch(cmd);
    if (action.kind === 'commit') return this.#commitStep(state, action);
    if (action.kind === 'copy') return this.#copyStep(state, action);
    return this.#runStep(state, action);
  }

  /** Cache lookup; on a hit prints Docker's line and moves the stage onto the cached image. */
  async #probe(state: StageState, probe: ContainerConfig): Promise<boolean> {
    if (this.#busted) return false;
    const hit = await probeCache(this.#x, state.imageId, probe);
    if (!hit) {
      this.#busted = true;
      return false;
    }
    this.#out(' ---> Using cache\n');
    state.stepDone(hit.id, hit.config);
    return true;
  }

  #childConfig(state: StageState, parts: { containerId?: string; containerConfig: ContainerConfig; diffId: string | undefined }): { bytes: Buffer; image: ImageConfigJson } {
    const image = childImageConfig({
      parent: state.parentImage,
      ...(parts.containerId ? { containerId: parts.containerId } : {}),
      ...(state.maintainer ? { author: state.maintainer } : {}),
      diffId: parts.diffId,
      containerConfig: parts.containerConfig,
      config: cloneContainerConfig(state.runConfig),
      created: this.#now(),
      dockerVersion: this.#o.dockerVersion ?? DEFAULT_DOCKER_VERSION,
      os: state.os,
    });
    return { bytes: serializeImageConfig(image), image: image as ImageConfigJson };
  }

  /** Commits a workspace, remembering the config object that was stored. */
  async #commit(state: StageState, ws: Workspace, parts: { containerId?: string; containerConfig: ContainerConfig }): Promise<void> {
    let stored: ImageConfigJson | undefined;
    const id = await this.#x.commit(ws, (diffId) => {
      const made = this.#childConfig(state, { ...parts, diffId });
      stored = made.image;
      return made.bytes;
    });
    state.stepDone(id, stored!);
  }

  /** Creates the working directory like container create does (mkdir -p, 0755, root). */
  async #ensureWorkdir(ws: Workspace, workdir: string): Promise<void> {
    if (!workdir) return;
    const dir = cleanPath(workdir);
    const host = await scopedPath(ws.rootfs, dir);
    const st = await lstat(host).catch(() => undefined);
    if (st && !st.isDirectory()) throw new InvalidArgumentError(`Cannot mkdir: ${dir} is not a directory`);
    if (!st) await mkdirAllNew(host, 0o755, { uid: 0, gid: 0 });
    this.#dirs.add(dir);
  }

  async #withWorkspace<T>(imageId: string, fn: (ws: Workspace) => Promise<T>): Promise<T> {
    const ws = await this.#x.open(imageId);
    try {
      return await fn(ws);
    } catch (err) {
      await this.#x.discard(ws).catch(() => undefined);
      throw err;
    }
  }

  async #commitStep(state: StageState, action: CommitAction): Promise<void> {
    for (const note of action.notes) this.#out(note + '\n');
    if (await this.#probe(state, action.probe)) return;
    const containerId = randomId();
    this.#out(` ---> Running in ${short(containerId)}\n`);
    const containerConfig = createdContainerConfig(action.probe, containerId, state.imageId === '' ? null : state.parentConfig);
    const workdir = state.runConfig.WorkingDir ? cleanPath(state.runConfig.WorkingDir) : '';
    if (workdir !== '' && (action.isWorkdir || !this.#dirs.has(workdir))) {
      await this.#withWorkspace(state.imageId, async (ws) => {
        await this.#ensureWorkdir(ws, workdir);
        await this.#commit(state, ws, { containerId, containerConfig });
      });
    } else {
      const made = this.#childConfig(state, { containerId, containerConfig, diffId: undefined });
      const id = await this.#x.createImage(state.imageId, made.bytes);
      state.stepDone(id, made.image);
    }
    if (this.#o.rm ?? true) this.#out(`Removing intermediate container ${short(containerId)}\n`);
  }

  async #copySourceTree(action: CopyAction): Promise<{ tree: SourceTree; mounted?: MountedImage; preserve: boolean }> {
    if (!action.from) return { tree: this.#ctx, preserve: false };
    let imageId: string;
    try {
      imageId = await this.#fromImage(action.from);
    } catch (err) {
      throw new InvalidArgumentError(`invalid from flag value ${action.from}: ${(err as Error).message}`, { cause: err });
    }
    const mounted = await this.#x.mountImage(imageId);
    this.#names ??= this.#o.hostNames ?? (await hostNameLookup());
    return { tree: imageTree(mounted.root, this.#names), mounted, preserve: !action.chown };
  }

  /** COPY --from's value: a stage name, a stage index, or an image. */
  async #fromImage(from: string): Promise<string> {
    const named = this.#stages.find((s) => s.name !== '' && s.name === from.toLowerCase());
    if (named) return named.imageId;
    if (/^[+-]?\d+$/.test(from)) {
      const i = Number(from);
      if (i === this.#stages.length) throw new InvalidArgumentError('refers to current build stage');
      if (i < 0 || i > this.#stages.length) throw new InvalidArgumentError('index out of bounds');
      return this.#stages[i]!.imageId;
    }
    return (await this.#x.resolveImage(from, { localOnly: false })).id;
  }

  async #copyStep(state: StageState, action: CopyAction): Promise<void> {
    const urls = action.sources.filter(isUrl);
    if (urls.length > 0) {
      if (action.cmdName === 'COPY') throw new InvalidArgumentError("COPY failed: source can't be a URL for COPY");
      throw new NotSupportedError(`ADD failed: remote URLs are not supported by strata's builder: ${urls[0]}`);
    }
    const src = await this.#copySourceTree(action);
    try {
      let infos;
      try {
        infos = await resolveSources(src.tree, action.sources);
      } catch (err) {
        throw new InvalidArgumentError(`${action.cmdName} failed: ${(err as Error).message}`, { cause: err });
      }
      if (infos.length > 1 && !action.dest.endsWith('/')) {
        throw new InvalidArgumentError(`When using ${action.cmdName} with more than one source file, the destination must be a directory and end with a /`);
      }
      const probe = state.copyProbe(action, sourcesChecksum(infos));
      if (await this.#probe(state, probe)) return;
      await this.#withWorkspace(state.imageId, async (ws) => {
        let identity: Identity | undefined = src.preserve ? undefined : { uid: 0, gid: 0 };
        if (action.chown) identity = await resolveChown(action.chown, (p) => readInRootfs(ws.rootfs, p));
        const ops: CopyOp[] = [];
        for (const source of infos) {
          const extract = action.allowExtract && !source.isDir && src.tree.kind === 'context' && (await isTarArchive(source.hostPath));
          ops.push({ source, dest: action.destPath, extract });
        }
        await this.#x.copyInto(ws, ops, identity ? { identity } : {});
        await this.#commit(state, ws, { containerConfig: probe });
      });
    } finally {
      await src.mounted?.release();
    }
  }

  async #runStep(state: StageState, action: RunAction): Promise<void> {
    if (await this.#probe(state, action.probe)) return;
    const containerId = randomId();
    this.#out(` ---> Running in ${short(containerId)}\n`);
    const emit = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      if (this.#h.runOutput) this.#h.runOutput(chunk, stream);
      else this.#out(chunk.toString('utf8'));
    };
    await this.#withWorkspace(state.imageId, async (ws) => {
      await this.#ensureWorkdir(ws, action.workdir);
      const code = await this.#x.run(ws, {
        argv: action.argv, env: action.env, user: action.user, workdir: action.workdir, containerId,
        stdout: emit('stdout'), stderr: emit('stderr'),
      });
      if (code !== 0) {
        throw new BuildStepError(`The command '${action.argv.join(' ')}' returned a non-zero code: ${code}`, code);
      }
      await this.#commit(state, ws, { containerId, containerConfig: action.probe });
    });
    // The command may have removed or replaced any directory.
    this.#dirs = new Set();
    if (this.#o.rm ?? true) this.#out(`Removing intermediate container ${short(containerId)}\n`);
  }
}

/** Reads a file of a mounted rootfs by container path (symlinks resolved inside it). */
async function readInRootfs(rootfs: string, p: string): Promise<Buffer | undefined> {
  try {
    return await readFile(await scopedPath(rootfs, p));
  } catch {
    return undefined;
  }
}

