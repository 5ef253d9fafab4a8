/**
 * Tags and digests → image IDs, in Docker's `image/<driver>/repositories.json`:
 *
 * ```
 * {"Repositories":{"busybox":{"busybox:latest":"sha256:…","busybox@sha256:…":"sha256:…"}}}
 * ```
 *
 * Outer keys are familiar repository names, inner keys familiar reference strings; keys are
 * sorted by bytes as Go's encoder sorts map keys, strings escaped as Go escapes them, no
 * trailing newline, mode 0600, replaced atomically. A reference with both tag and digest is
 * stored by its digest only; a repository entry goes when its last reference goes.
 *
 * Every change is a read-modify-write of the whole file under an exclusive flock on
 * `.repositories.lock` beside it, so concurrent processes never lose each other's tags.
 * Reads take no lock (the file is only ever replaced whole). Entries this code cannot parse
 * are kept as they are.
 */
import { readFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';

import { isDigest, type Digest } from '../digest.js';
import { ConflictError, InvalidArgumentError, NotFoundError, isErrno } from '../errors.js';
import { atomicWriteFile } from '../sys/atomic.js';
import { familiarName, familiarString, parseNormalizedNamed, withDefaultTag, Reference } from './reference.js';
import { WriteLock } from './store-lock.js';
import { ensureDir } from '../sys/fs.js';

export const REPOSITORIES_FILE = 'repositories.json';
const LOCK_FILE = '.repositories.lock';

type Repositories = Record<string, Record<string, string>>;

export interface ReferenceEntry {
  ref: Reference;
  id: Digest;
}

export interface AddOptions {
  /** Move an existing tag to the new image (digests can never be moved). */
  force?: boolean;
}

/** Go's encoding/json string escaping (HTML-safe: `<`, `>`, `&` and U+2028/9 escaped). */
function goString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&' || c === 0x2028 || c === 0x2029) {
      out += `\\u${c.toString(16).padStart(4, '0')}`;
    } else out += ch;
  }
  return out + '"';
}

/** Go sorts map keys by their UTF-8 bytes. */
function goKeyOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The exact bytes Docker writes for `repos`. */
export function serializeRepositories(repos: Repositories): string {
  const outer = Object.keys(repos)
    .sort(goKeyOrder)
    .map((name) => {
      const inner = Object.keys(repos[name]!)
        .sort(goKeyOrder)
        .map((ref) => `${goString(ref)}:${goString(repos[name]![ref]!)}`)
        .join(',');
      return `${goString(name)}:{${inner}}`;
    })
    .join(',');
  return `{"Repositories":{${outer}}}`;
}

/** A tag+digest reference is stored as its digest alone. */
function favorDigest(ref: Reference): Reference {
  if (ref.tag !== undefined && ref.digest !== undefined) {
    return new Reference({ domain: ref.domain, path: ref.path, digest: ref.digest });
  }
  return ref;
}

export class ReferenceStore {
  readonly file: string;
  readonly #lock: WriteLock;

  private constructor(file: string) {
    this.file = file;
    this.#lock = new WriteLock(path.join(path.dirname(file), LOCK_FILE));
  }

  /** Opens `<imageRoot>/repositories.json`, creating it as `{"Repositories":{}}` if missing. */
  static async open(options: { imageRoot: string }): Promise<ReferenceStore> {
    await ensureDir(options.imageRoot, 0o700);
    const store = new ReferenceStore(path.join(options.imageRoot, REPOSITORIES_FILE));
    if ((await store.#read()) === undefined) {
      await store.#lock.run(async () => {
        if ((await store.#read()) === undefined) await store.#write({});
      });
    }
    return store;
  }

  /** The file's repositories, or undefined when there is no file. */
  async #read(): Promise<Repositories | undefined> {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
    const parsed = JSON.parse(text) as { Repositories?: Repositories | null };
    return parsed.Repositories ?? {};
  }

  async #write(repos: Repositories): Promise<void> {
    await atomicWriteFile(this.file, serializeRepositories(repos), { mode: 0o600 });
  }

  async #update<T>(fn: (repos: Repositories) => T | 'unchanged'): Promise<T | 'unchanged'> {
    return this.#lock.run(async () => {
      const repos = (await this.#read()) ?? {};
      const result = fn(repos);
      if (result !== 'unchanged') await this.#write(repos);
      return result;
    });
  }

  /**
   * Deletes `.tmp-repositories.json*` files that crashed writers left beside the file. Safe
   * against live writers: they write only while holding the lock this holds too.
   */
  async recover(): Promise<void> {
    await this.#lock.run(async () => {
      const dir = path.dirname(this.file);
      const prefix = `.tmp-${REPOSITORIES_FILE}`;
      for (const name of await readdir(dir)) {
        if (name.startsWith(prefix)) await rm(path.join(dir, name), { force: true });
      }
    });
  }

  /**
   * Points tag `ref` (`:latest` when it has none) at image `id`. Errors as Docker's:
   * `refusing to create a tag with a digest reference`,
   * `refusing to create an ambiguous tag using digest algorithm as name`,
   * `tag <ref> is already set to image <id>, use the force option to replace it`.
   */
  async addTag(ref: Reference, id: Digest, options: AddOptions = {}): Promise<void> {
    if (ref.digest !== undefined) throw new InvalidArgumentError('refusing to create a tag with a digest reference');
    await this.#add(withDefaultTag(ref), id, options);
  }

  /** Points digest reference `ref` at image `id`; an existing digest is never moved. */
  async addDigest(ref: Reference, id: Digest, options: AddOptions = {}): Promise<void> {
    if (ref.digest === undefined) throw new InvalidArgumentError(`reference ${ref.toString()} has no digest`);
    await this.#add(ref, id, options);
  }

  async #add(ref: Reference, id: Digest, options: AddOptions): Promise<void> {
    const r = favorDigest(ref);
    if (!isDigest(id)) throw new InvalidArgumentError(`invalid image ID: ${id}`);
    if (familiarName(r) === 'sha256') {
      throw new InvalidArgumentError('refusing to create an ambiguous tag using digest algorithm as name');
    }
    const name = familiarName(r);
    const key = familiarString(r);
    await this.#update((repos) => {
      const repo = (repos[name] ??= {});
      const old = repo[key];
      if (old !== undefined) {
        if (old === id) return 'unchanged';
        if (r.digest !== undefined) throw new ConflictError(`cannot overwrite digest ${r.digest}`);
        if (!options.force) {
          throw new ConflictError(`tag ${key} is already set to image ${old}, use the force option to replace it`);
        }
      }
      repo[key] = id;
      return undefined;
    });
  }

  /**
   * Removes `ref` (`:latest` when it names neither tag nor digest). Fails with
   * `reference does not exist` when it is not there.
   */
  async delete(ref: Reference): Promise<void> {
    const r = withDefaultTag(favorDigest(ref));
    const name = familiarName(r);
    const key = familiarString(r);
    await this.#update((repos) => {
      const repo = repos[name];
      if (!repo || repo[key] === undefined) throw new NotFoundError('reference does not exist');
      delete repo[key];
      if (Object.keys(repo).length === 0) delete repos[name];
      return undefined;
    });
  }

  /** The image `ref` points at (`:latest` when it names neither tag nor digest). */
  async get(ref: Reference): Promise<Digest | undefined> {
    const r = withDefaultTag(favorDigest(ref));
    const id = (await this.#read())?.[familiarName(r)]?.[familiarString(r)];
    return id !== undefined && isDigest(id) ? id : undefined;
  }

  /** Every reference to image `id`, sorted by full reference string. */
  async references(id: Digest): Promise<Reference[]> {
    return (await this.list()).filter((e) => e.id === id).map((e) => e.ref);
  }

  /** Every stored reference, sorted by full reference string. */
  async list(): Promise<ReferenceEntry[]> {
    const repos = (await this.#read()) ?? {};
    const out: ReferenceEntry[] = [];
    for (const repo of Object.values(repos)) {
      for (const [key, id] of Object.entries(repo)) {
        if (!isDigest(id)) continue;
        let ref: Reference;
        try {
          ref = parseNormalizedNamed(key);
        } catch {
          continue;
        }
        out.push({ ref, id });
      }
    }
    return out.sort((a, b) => goKeyOrder(a.ref.toString(), b.ref.toString()));
  }
}
