/**
 * `volume ls --filter` and `volume prune --filter` with Docker's semantics and messages:
 *  - `dangling=true|false|1|0`: unreferenced / referenced;
 *  - `name=<re>`: the name equals a value or a value (a regular expression) matches in it;
 *  - `driver=<d>`: the driver is one of the values;
 *  - `label=<k>` / `label=<k>=<v>`: every given label is present (with that value);
 *  - `label!=...` (prune only): excluded when every given label matches;
 *  - `all=<bool>` (prune only): also prune named volumes.
 * Values of one key are a set: for `name` and `driver` any may match, for `label` all must.
 */
import { InvalidArgumentError } from '../errors.js';
import { parseGoBool } from './go-compat.js';

/** Filter values by key, like Docker's filters.Args (`{ label: ['a=b'], dangling: ['true'] }`). */
export type VolumeFilters = Readonly<Record<string, readonly string[]>>;

/** What a filter needs to know about a volume. */
export interface FilterSubject {
  name: string;
  driver: string;
  labels: Readonly<Record<string, string>> | null;
  referenced: boolean;
}

export const LIST_FILTERS: ReadonlySet<string> = new Set(['dangling', 'name', 'driver', 'label']);
export const PRUNE_FILTERS: ReadonlySet<string> = new Set(['label', 'label!', 'all']);

/** Go's `%s` of a []string: `[a b]`. */
function goList(values: readonly string[]): string {
  return `[${values.join(' ')}]`;
}

/** Throws Docker's `invalid filter '<key>'` for a key not in `accepted`. */
export function validateFilterKeys(filters: VolumeFilters, accepted: ReadonlySet<string>): void {
  for (const key of Object.keys(filters)) {
    if (!accepted.has(key)) throw new InvalidArgumentError(`invalid filter '${key}'`);
  }
}

/** Docker's MatchKVList: true when no values; otherwise every `k` / `k=v` must be in `labels`. */
export function matchLabels(values: readonly string[] | undefined, labels: Readonly<Record<string, string>> | null): boolean {
  if (!values || values.length === 0) return true;
  if (!labels || Object.keys(labels).length === 0) return false;
  for (const value of values) {
    const eq = value.indexOf('=');
    const key = eq < 0 ? value : value.slice(0, eq);
    if (!Object.hasOwn(labels, key)) return false;
    if (eq >= 0 && labels[key] !== value.slice(eq + 1)) return false;
  }
  return true;
}

/** Docker's Args.Match: exact match, else any value as a regular expression (bad ones skipped). */
function matchName(values: readonly string[], name: string): boolean {
  if (values.length === 0 || values.includes(name)) return true;
  for (const value of values) {
    try {
      if (new RegExp(value, 'u').test(name)) return true;
    } catch {
      // Go skips patterns that do not compile; so do we.
    }
  }
  return false;
}

/** Docker's GetBoolOrDefault for `dangling`: exactly one of true/1 or false/0. */
function danglingValue(values: readonly string[]): boolean {
  if (values.length === 0) throw new InvalidArgumentError(`invalid filter 'dangling'`);
  const isTrue = values.includes('1') || values.includes('true');
  const isFalse = values.includes('0') || values.includes('false');
  if (isTrue === isFalse) throw new InvalidArgumentError(`invalid filter 'dangling=${goList(values)}'`);
  return isTrue;
}

/**
 * A predicate for `filters` (already validated against the accepted keys). Throws
 * InvalidArgumentError for a bad `dangling` value.
 */
export function compileFilters(filters: VolumeFilters): (v: FilterSubject) => boolean {
  const drivers = filters['driver'];
  const names = filters['name'];
  const labels = filters['label'];
  const notLabels = filters['label!'];
  const dangling = filters['dangling'] !== undefined ? danglingValue(filters['dangling']) : undefined;
  return (v) => {
    if (drivers && drivers.length > 0 && !drivers.includes(v.driver)) return false;
    if (names && !matchName(names, v.name)) return false;
    if (!matchLabels(labels, v.labels)) return false;
    if (notLabels && notLabels.length > 0 && matchLabels(notLabels, v.labels)) return false;
    if (dangling !== undefined && v.referenced === dangling) return false;
    return true;
  };
}

/**
 * Docker's prune `all` filter (one boolean value) merged with an explicit `all` option.
 * Throws Docker's messages for several values or a non-boolean one.
 */
export function pruneAll(filters: VolumeFilters, all: boolean | undefined): boolean {
  const values = filters['all'];
  if (values && values.length > 1) {
    throw new InvalidArgumentError(`invalid filter 'all=${goList(values)}': only one value is expected`);
  }
  if (values && values.length === 1) {
    const b = parseGoBool(values[0]!);
    if (b === undefined) {
      throw new InvalidArgumentError(`invalid filter 'all': strconv.ParseBool: parsing ${JSON.stringify(values[0])}: invalid syntax`);
    }
    if (b) return true;
  }
  return all ?? false;
}
