/**
 * ARG scoping as the classic builder does it.
 *
 *  - `--build-arg` values override ARG defaults; a `--build-arg NAME` with no value (and
 *    not set in the client's environment) is `null` and does not override.
 *  - ARGs before the first FROM are "meta" args: visible to FROM lines only. Inside a stage
 *    an ARG must be declared (`ARG NAME`, value taken from the meta arg or the option) to be
 *    substituted or passed to RUN.
 *  - The proxy args (HTTP_PROXY … no_proxy) are predefined: usable without ARG, passed to
 *    RUN, but left out of the cache key / history unless the Dockerfile declares them.
 *  - Args given but never declared by any stage produce Docker's warning.
 */

export const BUILTIN_ARGS: readonly string[] = [
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy',
];
const BUILTIN = new Set(BUILTIN_ARGS);

export class BuildArgs {
  /** Declared in the current stage. */
  #allowed = new Map<string, string | undefined>();
  /** Declared before the first FROM. */
  #meta = new Map<string, string | undefined>();
  /** Declared anywhere (for the unused warning). */
  #referenced = new Set<string>();
  readonly #options: ReadonlyMap<string, string | null>;

  constructor(options: ReadonlyMap<string, string | null> | Record<string, string | null> = new Map()) {
    this.#options = options instanceof Map ? options : new Map(Object.entries(options));
  }

  /** A copy for a new stage: meta args and references kept, stage declarations dropped. */
  forStage(): BuildArgs {
    const b = new BuildArgs(this.#options);
    b.#meta = new Map(this.#meta);
    b.#referenced = new Set(this.#referenced);
    return b;
  }

  mergeReferenced(other: BuildArgs): void {
    for (const k of other.#referenced) this.#referenced.add(k);
  }

  addMetaArg(key: string, value: string | undefined): void {
    this.#meta.set(key, value);
  }

  addArg(key: string, value: string | undefined): void {
    this.#allowed.set(key, value);
    this.#referenced.add(key);
  }

  #get(key: string, source: ReadonlyMap<string, string | undefined>): string | undefined {
    const opt = this.#options.get(key);
    if (opt !== undefined && opt !== null) return opt;
    const def = source.get(key);
    if (def === undefined) {
      const meta = this.#meta.get(key);
      return meta;
    }
    return def;
  }

  #all(source: ReadonlyMap<string, string | undefined>): Map<string, string> {
    const out = new Map<string, string>();
    for (const key of new Set([...source.keys(), ...BUILTIN])) {
      const v = this.#get(key, source);
      if (v !== undefined) out.set(key, v);
    }
    return out;
  }

  /** Args usable in the current stage (declared, or builtin proxies given as options). */
  allAllowed(): Map<string, string> {
    return this.#all(this.#allowed);
  }

  /** Args usable by FROM lines. */
  allMeta(): Map<string, string> {
    return this.#all(this.#meta);
  }

  /** Allowed args as `K=V`, minus those the Env already defines (Env wins). */
  filterAllowed(env: readonly string[] | null): string[] {
    const defined = new Set((env ?? []).map((e) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e)));
    const out: string[] = [];
    for (const [k, v] of this.allAllowed()) if (!defined.has(k)) out.push(`${k}=${v}`);
    return out;
  }

  /** Whether a RUN's cache key / history shows `key` (not an undeclared proxy arg). */
  isReferencedOrNotBuiltin(key: string): boolean {
    return this.#allowed.has(key) || !BUILTIN.has(key);
  }

  /** Docker's warning line, or undefined. Names sorted (Docker's order is random). */
  unusedWarning(): string | undefined {
    const left = [...this.#options.keys()].filter((k) => !this.#referenced.has(k) && !BUILTIN.has(k)).sort();
    return left.length > 0 ? `[Warning] One or more build-args [${left.join(' ')}] were not consumed` : undefined;
  }
}
