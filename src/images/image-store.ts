/**
 * Image config store: `image/<driver>/imagedb/{content,metadata}/sha256/` in Docker's layout.
 * Contract fixed here; implementation owned by the layer-store work.
 */
import type { Digest } from '../digest.js';

/** The parsed image config (OCI/Docker). Raw bytes are kept separately and never re-serialised. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  author?: string;
  comment?: string;
  docker_version?: string;
  config?: Record<string, unknown>;
  container_config?: Record<string, unknown>;
  container?: string;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: Array<{ created?: string; created_by?: string; author?: string; comment?: string; empty_layer?: boolean }>;
  [key: string]: unknown;
}

export interface ImageRecord {
  id: Digest;
  raw: Buffer;
  config: ImageConfig;
  /** `metadata/sha256/<id>/parent`, when set. */
  parent?: Digest;
  lastUpdated?: string;
}

export declare class ImageStore {
  static open(options: { imageRoot: string; hasLayer: (chainId: Digest) => Promise<boolean> }): Promise<ImageStore>;
  /**
   * Stores raw config bytes (image ID = sha256 of them). Refuses configs whose non-empty
   * history exceeds diff_ids (`too many non-empty layers in History section`) and configs
   * whose top chainID is missing (`failed to get layer <chainID>`). Idempotent.
   */
  create(raw: Buffer): Promise<Digest>;
  get(id: Digest): Promise<ImageRecord | undefined>;
  list(): Promise<ImageRecord[]>;
  /** Full id from an id, `sha256:`-prefixed id, or unique hex prefix; undefined if none/ambiguous throws. */
  resolveId(prefix: string): Promise<Digest | undefined>;
  delete(id: Digest): Promise<void>;
  setParent(id: Digest, parent: Digest): Promise<void>;
  setLastUpdated(id: Digest): Promise<void>;
  children(id: Digest): Promise<Digest[]>;
}
