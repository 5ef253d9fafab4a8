/**
 * The storage driver contract: snapshot directories and the mounts that present them.
 *
 * A driver knows nothing about images, layers' identities, tar or containers. It manages
 * directories named by opaque ids (Docker's cache-id / mount-id / `<mount-id>-init`) under
 * its home `<data-root>/<driver-name>`, in Docker's layout, and describes — never performs —
 * the mounts that show a snapshot's full filesystem view. `sys/mount.ts` performs them.
 *
 * Lifecycle, with the vocabulary used throughout:
 *
 *   - **prepare(id, parent?)** creates a new *active* (writable) snapshot on top of the
 *     *committed* snapshot `parent` (or empty). Nothing is mounted.
 *   - **layerDir(id)** is the directory that holds the snapshot's own files in the driver's
 *     whiteout format: overlay2 `<id>/diff` (the upper dir: only this layer's changes, with
 *     char 0:0 whiteouts and `trusted.overlay.opaque` dirs), vfs `dir/<id>` (the full tree,
 *     deletions already applied). A layer tar is applied there directly (no mount needed), and
 *     tar-split reassembly reads a layer's payload files from there.
 *   - **commit(id)** seals an active snapshot: it becomes read-only and may be a parent.
 *   - **mounts(id)** describes how to mount an active snapshot's merged view read-write;
 *     **view(id)** describes a read-only mount of a committed snapshot's merged view.
 *     `mountpoint(id)` is where Docker mounts it (`<id>/merged` for overlay2).
 *   - **remove(id)** deletes a snapshot (the caller guarantees it has no children and is not
 *     mounted; overlay2 also drops its `l/` short link).
 *
 * Scenario 1, import a layer: `prepare(c1)`, apply the tar into `layerDir(c1)`, `commit(c1)`.
 * Scenario 2, stack a layer: `prepare(c2, c1)`, apply into `layerDir(c2)`, `commit(c2)`.
 * Scenario 3, run a container: `prepare(m-init, c2)`, mount `mounts(m-init)`, write init files,
 * unmount, `commit(m-init)`, `prepare(m, m-init)`, mount `mounts(m)` at `mountpoint(m)`.
 *
 * Concurrency: distinct ids may be used concurrently by different processes. The caller
 * serialises operations on one id.
 */
import type { Mount } from '../sys/mount.js';
import type { WhiteoutFormat } from '../archive/layer.js';

export type { Mount, WhiteoutFormat };

export interface DriverCapabilities {
  whiteouts: WhiteoutFormat;
  /** layerDir(id) holds only the snapshot's own changes (diff/commit cost ∝ changes). */
  layerDirIsDiff: boolean;
  /**
   * Maximum number of ancestors (committed parents, transitively) a snapshot may have;
   * `prepare` beyond it fails with `max depth exceeded`. `Infinity` when the driver has no
   * limit of its own (vfs).
   */
  maxDepth: number;
  /**
   * Optional; only meaningful when `layerDirIsDiff`. True when layerDir(id) can be turned
   * into a layer tar as it is (Docker's "Native Overlay Diff"); false when the kernel may
   * record changes a tar cannot express (copied-up opaque flags, `redirect` xattrs for
   * renamed directories), so a diff must compare mounted trees instead. Absent = false.
   */
  nativeDiff?: boolean;
}

export interface Usage {
  /** Bytes by Docker's rule: lstat sizes of non-directories, hard links counted once. */
  size: number;
  inodes: number;
}

export interface Driver {
  readonly name: string;
  /** `<data-root>/<name>`. */
  readonly home: string;
  readonly capabilities: DriverCapabilities;

  /** `docker info` DriverStatus pairs, e.g. [['Backing Filesystem','extfs'], ...]. */
  status(): Promise<Array<[string, string]>>;

  prepare(id: string, parent?: string): Promise<void>;
  commit(id: string): Promise<void>;
  layerDir(id: string): string;
  mountpoint(id: string): string;
  mounts(id: string): Promise<Mount[]>;
  view(id: string): Promise<Mount[]>;
  remove(id: string): Promise<void>;
  exists(id: string): Promise<boolean>;
  usage(id: string): Promise<Usage>;
  /** Ids of every snapshot directory in the home (for orphan cleanup). */
  list(): Promise<string[]>;
  /** `GraphDriver.Data` for inspect (LowerDir, UpperDir, WorkDir, MergedDir for overlay2). */
  metadata(id: string): Promise<Record<string, string>>;
}

/** How a driver is constructed: `drivers/registry.ts` maps names to these. */
export interface DriverFactory {
  readonly name: string;
  /** Resolves to a reason string when the driver cannot work under `dataRoot`. */
  probe(dataRoot: string): Promise<{ ok: true } | { ok: false; reason: string }>;
  open(dataRoot: string): Promise<Driver>;
}
