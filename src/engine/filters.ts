/**
 * Docker's `--filter key=value` semantics for images (list and prune): which keys exist,
 * how values combine, Go's `path.Match` for `reference=`, and the `until` timestamps.
 */
import { InvalidArgumentError } from '../errors.js';

/** Filter values by key, as the CLI collects them (`-f a=1 -f a=2` → `{a: ['1','2']}`). */
export type Filters = Readonly<Record<string, readonly string[]>>;

/** Docker's error for a key the command does not know, or a value it cannot use. */
export function invalidFilter(key: string, values?: readonly string[]): InvalidArgumentError {
  return new InvalidArgumentError(values === undefined ? `Invalid filter '${key}'` : `Invalid filter '${key}=[${values.join(' ')}]'`);
}

export function validateFilters(filters: Filters, accepted: readonly string[]): void {
  for (const key of Object.keys(filters)) if (!accepted.includes(key)) throw invalidFilter(key);
}

export function has(filters: Filters, key: string): boolean {
  return (filters[key]?.length ?? 0) > 0;
}

/** Every `key` / `key=value` of `wanted` holds in `labels` (Docker's MatchKVList). */
export function matchLabels(wanted: readonly string[] | undefined, labels: Readonly<Record<string, string>> | null | undefined): boolean {
  if (!wanted || wanted.length === 0) return true;
  if (!labels) return false;
  return wanted.every((w) => {
    const i = w.indexOf('=');
    if (i < 0) return Object.hasOwn(labels, w);
    return Object.hasOwn(labels, w.slice(0, i)) && labels[w.slice(0, i)] === w.slice(i + 1);
  });
}

/** `label!=` filters: none of them may hold. */
export function matchNoLabels(unwanted: readonly string[] | undefined, labels: Readonly<Record<string, string>> | null | undefined): boolean {
  if (!unwanted || unwanted.length === 0) return true;
  return unwanted.every((w) => !matchLabels([w], labels));
}

// ---------------------------------------------------------------------------------------------
// Go path.Match

/**
 * Go's `path.Match`: `*` is any run of non-`/` characters, `?` one non-`/` character,
 * `[...]` a class (ranges, leading `^` negates), `\` escapes. Throws on a malformed pattern
 * (`syntax error in pattern`).
 */
export function pathMatch(pattern: string, name: string): boolean {
  const bad = () => new InvalidArgumentError('syntax error in pattern');
  let i = 0;
  // One (possibly escaped) character of a class; Go refuses `-`, `]` and a dangling end here.
  const classChar = (): string => {
    if (i >= pattern.length || pattern[i] === '-' || pattern[i] === ']') throw bad();
    if (pattern[i] === '\\') {
      i++;
      if (i >= pattern.length) throw bad();
    }
    const ch = pattern[i++]!;
    if (i >= pattern.length) throw bad();
    return ch;
  };
  let re = '^';
  for (; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\') {
      if (++i >= pattern.length) throw bad();
      re += escapeRe(pattern[i]!);
    } else if (c === '[') {
      i++;
      const negated = pattern[i] === '^';
      if (negated) i++;
      let cls = '';
      let ranges = 0;
      while (!(pattern[i] === ']' && ranges > 0)) {
        const lo = classChar();
        let hi = lo;
        if (pattern[i] === '-') {
          i++;
          hi = classChar();
        }
        // Go accepts an inverted range; it just matches nothing.
        if (lo <= hi) cls += lo === hi ? escapeClass(lo) : `${escapeClass(lo)}-${escapeClass(hi)}`;
        ranges++;
      }
      if (cls === '') re += negated ? '[\\s\\S]' : '(?!)';
      else re += `[${negated ? '^' : ''}${cls}]`;
    } else re += escapeRe(c);
  }
  return new RegExp(re + '$', 's').test(name);
}

function escapeRe(c: string): string {
  return c.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

function escapeClass(c: string): string {
  return c.replace(/[\\\]\[^-]/g, '\\$&');
}

// ---------------------------------------------------------------------------------------------
// until

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-9, us: 1e-6, 'µs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600,
};

/** Go's time.ParseDuration, in seconds; undefined when `s` is not a duration. */
export function parseGoDuration(s: string): number | undefined {
  const m = /^([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.exec(s);
  if (!m) return s === '0' ? 0 : undefined;
  let total = 0;
  for (const part of s.slice(m[1]!.length).matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(part[1]) * DURATION_UNITS[part[2]!]!;
  }
  return m[1] === '-' ? -total : total;
}

/**
 * Docker's `until` value (timetypes.GetTimestamp): a Go duration before `now`, Unix seconds,
 * or an RFC 3339 date or date-time (local zone when none is given). Returns seconds since
 * the epoch.
 */
export function parseUntil(value: string, now = Date.now() / 1000): number {
  const d = value === '0' ? undefined : parseGoDuration(value);
  if (d !== undefined) return now - d;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    // Date.parse reads a bare date as UTC but a zoneless date-time as local; Docker reads both as local.
    const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00` : value);
    if (!Number.isNaN(t)) return t / 1000;
  }
  throw new InvalidArgumentError(`failed to parse value as time or duration: "${value}"`);
}
