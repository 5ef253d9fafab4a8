/**
 * Layer store: `image/<driver>/layerdb` in Docker's layout. Contract fixed here; the
 * implementation is owned by the layer-store work.
 *
 * Identity: a read-only layer is named by its chainID (`layerdb/sha256/<chainIDhex>/`),
 * holding `diff`, `size`, `cache-id`, `parent` (absent for base layers),
 * `tar-split.json.gz` and optionally `descriptor.json`. Its files live in the driver under
 * the random `cache-id`. The store knows nothing of images or containers: whoever holds a
 * layer passes its chainID; `gc(keep)` removes what nobody keeps.
 */
import type { Readable } from 'node:stream';
import type { Digest } from '../digest.js';
import type { Driver } from '../drivers/driver.js';

export interface LayerInfo {
  chainId: Digest;
  diffId: Digest;
  parent?: Digest;
  cacheId: string;
  /** Docker's `size` of this layer alone. */
  size: number;
  /** Depth in its stack, base = 1. */
  depth: number;
}

export interface RegisterOptions {
  expectedDiffId?: Digest;
  /** Stored as descriptor.json when given (registry pulls). */
  descriptor?: { mediaType: string; digest: Digest; size: number; urls?: string[] };
  onProgress?: (bytes: number) => void;
}

export interface LayerStoreOptions {
  /** `<data-root>/image/<driver-name>`. */
  imageRoot: string;
  driver: Driver;
}

export declare class LayerStore {
  static open(options: LayerStoreOptions): Promise<LayerStore>;
  readonly driver: Driver;
  /**
   * Applies a layer tar on top of `parent` and records it. If the resulting chainID already
   * exists, the new copy is discarded and the existing layer returned (two loads of the same
   * image store each layer once). Staged in `layerdb/tmp/write-set-*`, made durable, then
   * renamed into place; a crash at any point leaves nothing listed.
   */
  register(input: Readable, parent: Digest | undefined, options?: RegisterOptions): Promise<LayerInfo>;
  get(chainId: Digest): Promise<LayerInfo | undefined>;
  /** All committed layers. */
  list(): Promise<LayerInfo[]>;
  /** The layer's tar, reassembled byte for byte from tar-split and verified against diffID. */
  tarStream(chainId: Digest): Promise<Readable>;
  /**
   * Removes every layer that is neither in `keep`, nor an ancestor of a kept layer, nor the
   * parent chain of an RW mount. Returns the removed chainIDs, top first.
   */
  gc(keep: ReadonlySet<Digest>): Promise<Digest[]>;
  /** Removes staging leftovers of dead processes and driver dirs nothing refers to. */
  recover(): Promise<void>;
}
