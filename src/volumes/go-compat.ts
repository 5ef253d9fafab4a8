/**
 * Small re-implementations of Go standard-library behaviours that leak into Docker's
 * user-visible strings and files: strconv.ParseBool, go-units RAMInBytes, path.Clean,
 * time.RFC3339 in the local zone, encoding/json's string escaping and map-key order, and
 * the "natural" name order the docker CLI sorts volume lists with. Matching them exactly is
 * what makes `volume inspect`, `opts.json` and error messages byte-comparable with Docker.
 */

/** strconv.ParseBool: exactly these spellings, anything else is an error (undefined). */
export function parseGoBool(s: string): boolean | undefined {
  switch (s) {
    case '1': case 't': case 'T': case 'true': case 'TRUE': case 'True':
      return true;
    case '0': case 'f': case 'F': case 'false': case 'FALSE': case 'False':
      return false;
    default:
      return undefined;
  }
}

const RAM_SIZE_RE = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/;
const BINARY_UNITS: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/**
 * go-units RAMInBytes: a human size with binary multipliers (`64m`, `1.5GiB`, `100`).
 * Returns the byte count, or throws Docker's `invalid size: '<s>'`.
 */
export function ramInBytes(s: string): number {
  const m = RAM_SIZE_RE.exec(s);
  // go-units parses the number with ParseFloat, which rejects "1.2.3" although the regexp
  // lets it through; Number() rejects it the same way.
  const value = m ? Number(m[1]) : Number.NaN;
  if (!m || Number.isNaN(value)) throw new Error(`invalid size: '${s}'`);
  const unit = m[2]?.toLowerCase();
  return Math.trunc(value * (unit ? BINARY_UNITS[unit]! : 1));
}

export { cleanPath } from '../sys/go-path.js';

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/**
 * Go's `time.Format(time.RFC3339)` in the process's local zone: whole seconds, `Z` for UTC,
 * otherwise a `+hh:mm` offset. Docker formats volume CreatedAt this way in the daemon's zone.
 */
export function formatRFC3339(date: Date): string {
  const offsetMin = -date.getTimezoneOffset();
  const base =
    `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  if (offsetMin === 0) return `${base}Z`;
  const sign = offsetMin > 0 ? '+' : '-';
  const abs = Math.abs(offsetMin);
  return `${base}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/**
 * A copy of `map` with its keys in byte order, or null for null: encoding/json writes map
 * keys sorted, so a JSON object built from the result stringifies like Go's output.
 */
export function sortedMap(map: Readonly<Record<string, string>> | null | undefined): Record<string, string> | null {
  if (map === null || map === undefined) return null;
  const out: Record<string, string> = {};
  for (const key of Object.keys(map).sort(byteCompare)) out[key] = map[key]!;
  return out;
}

/** Byte-wise (UTF-8) comparison, the order Go sorts strings in. */
export function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * JSON text as Go's encoding/json writes it: like JSON.stringify (no indentation), but with
 * `<`, `>`, `&`, U+2028 and U+2029 escaped as \u00XX, which Go does by default. Used for
 * files Docker itself would write (opts.json), so they are byte-identical.
 */
export function goJSON(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/**
 * The docker CLI's list order (sortorder.NaturalLess): runs of digits compare as numbers
 * (`vol2` < `vol10`), a digit sorts before any other byte, other bytes compare as bytes,
 * and of two equal numbers the one with fewer leading zeros comes first.
 */
export function naturalLess(a: string, b: string): boolean {
  const s1 = Buffer.from(a, 'utf8');
  const s2 = Buffer.from(b, 'utf8');
  let i = 0;
  let j = 0;
  while (i < s1.length && j < s2.length) {
    const d1 = isDigit(s1[i]!);
    const d2 = isDigit(s2[j]!);
    if (d1 !== d2) return d1;
    if (!d1) {
      if (s1[i] !== s2[j]) return s1[i]! < s2[j]!;
      i++;
      j++;
      continue;
    }
    while (i < s1.length && s1[i] === 0x30) i++;
    while (j < s2.length && s2[j] === 0x30) j++;
    const start1 = i;
    const start2 = j;
    while (i < s1.length && isDigit(s1[i]!)) i++;
    while (j < s2.length && isDigit(s2[j]!)) j++;
    const len1 = i - start1;
    const len2 = j - start2;
    if (len1 !== len2) return len1 < len2;
    const cmp = Buffer.compare(s1.subarray(start1, i), s2.subarray(start2, j));
    if (cmp !== 0) return cmp < 0;
    if (start1 !== start2) return start1 < start2;
  }
  return s1.length - i < s2.length - j;
}

/** Comparator form of naturalLess for Array.prototype.sort. */
export function naturalCompare(a: string, b: string): number {
  if (naturalLess(a, b)) return -1;
  if (naturalLess(b, a)) return 1;
  return 0;
}
