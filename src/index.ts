/**
 * strata's library entry point: open an engine on a data root and call the image
 * operations on it. The CLI (`src/cli`) is a thin shell over exactly this API.
 *
 * @example
 *   import { openEngine } from 'strata';
 *   const engine = await openEngine({ dataRoot: '/tmp/s' });
 *   const [loaded] = await engine.load('busybox.tar');      // { id, tags: ['busybox:latest'], replaced: [] }
 *   for (const img of await engine.images()) console.log(img.Id, img.RepoTags);
 */
export { Engine, openEngine, version, DEFAULT_DATA_ROOT, type EngineOptions } from './engine/engine.js';
export {
  ImageService, noSuchImage, parseTagTarget,
  type ImageUser, type ImportOptions, type ListOptions, type LoadOptions, type LoadProgress, type LoadedImage,
  type PruneOptions, type RemoveOptions, type SaveOptions,
} from './engine/images.js';
export type {
  ContainerConfig, DeleteRecord, HistoryItem, ImageInspect, ImageSummary, PruneReport,
} from './engine/api-types.js';
export type { Filters } from './engine/filters.js';
export type { DiskUsage, SystemInfo } from './engine/system.js';
export {
  StrataError, NotFoundError, ConflictError, InvalidArgumentError, AlreadyExistsError, InvalidArchiveError,
  DigestMismatchError, NotSupportedError, type StrataErrorCode,
} from './errors.js';
export type { Digest } from './digest.js';
