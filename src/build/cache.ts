/**
 * The classic builder's cache: a step is a hit when the store holds an image whose parent is
 * the current image and whose `container_config` "equals" the config the step would commit
 * with (Docker's image/cache compare):
 *
 *  - equal: Cmd, Env and Entrypoint (ordered lists), Labels, ExposedPorts and Volumes (as
 *    sets / maps), User, Tty, AttachStdout, AttachStderr;
 *  - ignored: Hostname, Image, WorkingDir, Healthcheck, Shell, StopSignal, OnBuild and the
 *    rest — a known quirk of the classic builder that strata keeps, so that caches built by
 *    either match the same way;
 *  - never equal when either side has OpenStdin.
 *
 * The step's Cmd carries everything that makes it distinct: `#(nop) COPY file:<sum> in
 * /dest ` includes the sources' content checksum, RUN's includes `|N K=V` build args. Among
 * several matches the newest (`created`) wins. With no parent (FROM scratch) every image
 * without a parent is a candidate. Once a step misses, the rest of the stage is built
 * without looking (Docker's cache busting), until the next FROM.
 */
import { createHash } from 'node:crypto';

import type { ContainerConfig, ImageConfigJson } from './image-config.js';
import { goJson } from './go-format.js';

type ConfigLike = Partial<ContainerConfig> | null | undefined;

const len = (v: unknown): number => (Array.isArray(v) ? v.length : v && typeof v === 'object' ? Object.keys(v).length : 0);

/** Docker's cache compare of a candidate's container_config `a` with the step's config `b`. */
export function configsMatch(a: ConfigLike, b: ConfigLike): boolean {
  if (!a || !b || a.OpenStdin || b.OpenStdin) return false;
  if (!!a.AttachStdout !== !!b.AttachStdout || !!a.AttachStderr !== !!b.AttachStderr) return false;
  if ((a.User ?? '') !== (b.User ?? '') || !!a.Tty !== !!b.Tty) return false;
  for (const k of ['Cmd', 'Env', 'Labels', 'ExposedPorts', 'Entrypoint', 'Volumes'] as const) {
    if (len(a[k]) !== len(b[k])) return false;
  }
  const list = (x: string[] | null | undefined, y: string[] | null | undefined) => (x ?? []).every((v, i) => v === (y ?? [])[i]);
  if (!list(a.Cmd, b.Cmd) || !list(a.Env, b.Env) || !list(a.Entrypoint, b.Entrypoint)) return false;
  for (const [k, v] of Object.entries(a.Labels ?? {})) if ((b.Labels ?? {})[k] !== v) return false;
  for (const k of Object.keys(a.ExposedPorts ?? {})) if (!(k in (b.ExposedPorts ?? {}))) return false;
  for (const k of Object.keys(a.Volumes ?? {})) if (!(k in (b.Volumes ?? {}))) return false;
  return true;
}

/**
 * A digest of exactly what `configsMatch` compares, under the parent image: two steps have
 * the same key iff a cached image of one is a hit for the other. An engine can keep an index
 * `cacheKey → image ID` to answer `findChild` without scanning siblings; the key is stable
 * across processes (sha256 of canonical JSON).
 */
export function cacheKey(parentImageId: string, config: ConfigLike): string | undefined {
  if (!config || config.OpenStdin) return undefined;
  const sortedKeys = (o: Record<string, unknown> | null | undefined) => Object.keys(o ?? {}).sort();
  const canonical = {
    parent: parentImageId,
    user: config.User ?? '',
    tty: !!config.Tty,
    stdout: !!config.AttachStdout,
    stderr: !!config.AttachStderr,
    cmd: config.Cmd ?? [],
    env: config.Env ?? [],
    entrypoint: config.Entrypoint ?? [],
    labels: sortedKeys(config.Labels).map((k) => [k, config.Labels![k]]),
    ports: sortedKeys(config.ExposedPorts),
    volumes: sortedKeys(config.Volumes),
  };
  return 'sha256:' + createHash('sha256').update(goJson(canonical)).digest('hex');
}

/** A stored image as the cache sees it. */
export interface CachedImage {
  id: string;
  config: ImageConfigJson;
}

/**
 * What the engine provides for cache lookups. `findChild` returns the newest image (by
 * `created`) whose parent is `parentId` ('' = images without a parent) and for which
 * `predicate` holds, or undefined.
 */
export interface ImageCache {
  findChild(parentId: string, predicate: (image: CachedImage) => boolean): Promise<CachedImage | undefined>;
}

/** Looks a step up: the image to reuse, or undefined. */
export async function probeCache(cache: ImageCache, parentId: string, stepConfig: ContainerConfig): Promise<CachedImage | undefined> {
  return cache.findChild(parentId, (img) => configsMatch(img.config.container_config, stepConfig));
}

/** Picks the newest of several candidates (what an engine's findChild must do). */
export function newestImage<T extends CachedImage>(images: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const img of images) {
    if (!best || compareCreated(img.config.created, best.config.created) > 0) best = img;
  }
  return best;
}

/** Orders RFC 3339 timestamps (UTC, any number of fractional digits) by time. */
export function compareCreated(a: string | undefined, b: string | undefined): number {
  const key = (t: string | undefined): [number, string] => {
    if (!t) return [-Infinity, ''];
    const m = /^(.*?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(t);
    if (!m) return [Date.parse(t) || -Infinity, ''];
    return [Date.parse(m[1]! + m[3]!) || -Infinity, (m[2] ?? '').padEnd(9, '0')];
  };
  const [sa, fa] = key(a);
  const [sb, fb] = key(b);
  if (sa !== sb) return sa < sb ? -1 : 1;
  return fa < fb ? -1 : fa > fb ? 1 : 0;
}
