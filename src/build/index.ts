/**
 * The build module: Dockerfile parsing and the classic builder's semantics (configs, history,
 * cache keys, context checksums, COPY/ADD file work), driven against an executor the engine
 * implements. Imports only errors, digest, sys, archive and images.
 *
 *  - parser.ts / instructions.ts  Dockerfile text → stages of typed instructions
 *  - shell-words.ts, build-args.ts variable substitution, ARG scoping
 *  - plan.ts                       per-instruction config changes and #(nop) history text
 *  - image-config.ts               child image configs serialised like the daemon
 *  - context.ts                    .dockerignore, source trees, globs, checksums, --chown
 *  - copy.ts                       COPY/ADD into a mounted rootfs
 *  - cache.ts                      cache matching and keys
 *  - executor.ts                   the engine-facing interface
 *  - builder.ts                    Builder.build: sequencing and progress output
 */
export { DockerfileParseError, parseDockerfile, type ParseResult, type ParsedNode, type ParseOptions } from './parser.js';
export { toDockerfile, parseInstruction, findStage, type Dockerfile, type Instruction, type Stage } from './instructions.js';
export { ShellLex, buildEnvMap } from './shell-words.js';
export { BuildArgs, BUILTIN_ARGS } from './build-args.js';
export {
  planBuild, applyMetaArgs, StageState, normalizeDest, createdContainerConfig, mergeImageConfig, healthcheckText,
  parsePortSpecs, validateSignal, DEFAULT_PATH, DEFAULT_SHELL,
  type BuildPlan, type PlanOptions, type StepAction, type CommitAction, type CopyAction, type RunAction, type BaseImage,
} from './plan.js';
export {
  childImageConfig, serializeImageConfig, containerConfigJson, toContainerConfig, emptyContainerConfig, cloneContainerConfig,
  EMPTY_LAYER_DIFF_ID, nowRfc3339Nano, hostArchitecture,
  type ContainerConfig, type HealthConfig, type HistoryEntry, type ImageConfigJson, type ChildImageSpec,
} from './image-config.js';
export {
  parseDockerignore, PatternMatcher, isExcluded, goMatch, hasWildcards, contextFromDirectory, contextFromTar, imageTree,
  resolveSources, resolveInTree, sourcesChecksum, hashStringSlice, tarsumEntry, isTarArchive, resolveChown, hostNameLookup,
  ForbiddenPathError,
  type SourceTree, type TreeEntry, type CopyInfo, type NameLookup, type RootfsReader, type SumHeader, type ContextOptions,
} from './context.js';
export { applyCopy, scopedPath, type CopyOp, type Identity, type ApplyCopyOptions } from './copy.js';
export { configsMatch, cacheKey, probeCache, newestImage, compareCreated, type ImageCache, type CachedImage } from './cache.js';
export type { BuildExecutor, ResolvedImage, Workspace, MountedImage, RunSpec } from './executor.js';
export { Builder, BuildStepError, DEFAULT_DOCKER_VERSION, type BuildOptions, type BuildHooks, type BuildResult, type StepInfo } from './builder.js';
export { goQuote, goQuoteList, goList, goDuration, parseGoDuration, goJson } from './go-format.js';
