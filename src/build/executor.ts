/**
 * What the engine implements so the builder can build: images in, a writable layer per
 * step, RUN in a container, commits out. Everything else (parsing, configs, history,
 * checksums, cache decisions, COPY/ADD file work) is done by the build module.
 *
 * Lifecycle of one step that changes the filesystem (COPY, ADD, RUN, WORKDIR):
 *
 *   const ws = await executor.open(parentImageId);      // RW layer on the parent ('' = empty)
 *   await executor.copyInto(ws, ops, { identity });      // or run(ws, …), or mkdir via ws.rootfs
 *   const id = await executor.commit(ws, (diffId) => configBytes);
 *                                                        // diff → layer, config bytes stored,
 *                                                        // parent recorded; ws released
 *
 * Steps that only change metadata never open a workspace: `createImage(parentId, bytes)`.
 * On failure the builder calls `discard(ws)`.
 */
import type { ImageCache } from './cache.js';
import type { CopyOp, Identity } from './copy.js';
import type { ImageConfigJson } from './image-config.js';

/** An image FROM or COPY --from can use. `id` '' with a null config is `scratch`. */
export interface ResolvedImage {
  id: string;
  config: ImageConfigJson | null;
}

/** A writable layer on top of an image, mounted at `rootfs` (a directory on this machine). */
export interface Workspace {
  readonly rootfs: string;
}

/** An image's filesystem, readable at `root` until released (COPY --from). */
export interface MountedImage {
  readonly root: string;
  release(): Promise<void>;
}

export interface RunSpec {
  /** The command, shell already prepended for shell form. No entrypoint applies. */
  argv: string[];
  /** `K=V`: the stage's Env plus the build args in scope. */
  env: string[];
  /** USER (`name`, `uid`, `uid:gid`…), resolved by the runtime against the rootfs; '' = root. */
  user: string;
  /** Working directory (already created by the builder); '' = `/`. */
  workdir: string;
  /** ID the builder records for this step's container (history `container`, log lines). */
  containerId: string;
  /** Where the command's output goes (Docker streams it into the build output). */
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
}

export interface BuildExecutor extends ImageCache {
  /**
   * Looks up an image by reference or ID. `localOnly` is set for stage results; otherwise the
   * engine may pull. `scratch` never reaches here. Throws NotFoundError when absent.
   */
  resolveImage(ref: string, options: { localOnly: boolean; platform?: string }): Promise<ResolvedImage>;
  /** A writable layer on `imageId` ('' = an empty root filesystem). */
  open(imageId: string): Promise<Workspace>;
  /**
   * Puts COPY/ADD sources into the workspace. `applyCopy(ws.rootfs, ops, options)` from
   * copy.ts is the reference implementation; an engine with ID mapping may wrap it.
   */
  copyInto(ws: Workspace, ops: readonly CopyOp[], options: { identity?: Identity }): Promise<void>;
  /** Runs a command in a container on the workspace; resolves with the exit code. */
  run(ws: Workspace, spec: RunSpec): Promise<number>;
  /**
   * Turns the workspace's changes into a layer (diffID `undefined` or the empty-tar digest
   * when nothing changed: then no layer is added), stores the config bytes `makeConfig`
   * returns for that diffID under their sha256, records the parent image, releases the
   * workspace and returns the new image ID (`sha256:…`).
   */
  commit(ws: Workspace, makeConfig: (diffId: string | undefined) => Buffer): Promise<string>;
  /** Stores config bytes for an image without a new layer whose parent is `parentId`. */
  createImage(parentId: string, config: Buffer): Promise<string>;
  /** Drops a workspace without committing. */
  discard(ws: Workspace): Promise<void>;
  /** Mounts an image's filesystem read-only (COPY --from). */
  mountImage(imageId: string): Promise<MountedImage>;
  /** Points `ref` (`name:tag`, already normalised) at `imageId`. */
  tag(imageId: string, ref: string): Promise<void>;
}
