/**
 * Go formatting that ends up in image configs and history. The classic builder writes its
 * `#(nop)` comments with `fmt` verbs (`%q` of string slices, of a *HealthConfig, `%v` of
 * slices), and those strings are both user-visible history and cache keys, so they have to
 * match Go byte for byte. `goJson` is `encoding/json` as Go 1.19 writes it (HTML-safe
 * escaping, `\u00XX` for other control characters).
 */

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** strconv.Quote / QuoteRune escaping of one code point, `quote` being `"` or `'`. */
function quoteCodePoint(cp: number, quote: string): string {
  const ch = String.fromCodePoint(cp);
  if (ch === quote || ch === '\\') return '\\' + ch;
  if (cp < 0x80 && cp >= 0x20 && cp !== 0x7f) return ch;
  if (cp >= 0x80 && PRINTABLE.test(ch)) return ch;
  switch (cp) {
    case 0x07: return '\\a';
    case 0x08: return '\\b';
    case 0x0c: return '\\f';
    case 0x0a: return '\\n';
    case 0x0d: return '\\r';
    case 0x09: return '\\t';
    case 0x0b: return '\\v';
  }
  if (cp < 0x20 || cp === 0x7f) return '\\x' + hex(cp, 2);
  // Lone surrogates cannot come from valid UTF-8; Go would see U+FFFD.
  if (cp >= 0xd800 && cp <= 0xdfff) return '\\ufffd';
  if (cp < 0x10000) return '\\u' + hex(cp, 4);
  return '\\U' + hex(cp, 8);
}

/** Go's strconv.Quote (what `%q` prints for a string). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) out += quoteCodePoint(ch.codePointAt(0)!, '"');
  return out + '"';
}

/** `%q` of an int: Go prints it as a quoted rune literal (`'\x03'` for 3). */
export function goQuoteRune(n: number): string {
  const cp = n < 0 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff) ? 0xfffd : n;
  return "'" + quoteCodePoint(cp, "'") + "'";
}

/** `%q` of a []string: `["a" "b"]`. */
export function goQuoteList(items: readonly string[] | null | undefined): string {
  return '[' + (items ?? []).map(goQuote).join(' ') + ']';
}

/** `%v` of a []string: `[a b]`. */
export function goList(items: readonly string[] | null | undefined): string {
  return '[' + (items ?? []).join(' ') + ']';
}

/** Nanoseconds per unit, as Go's time package names them. */
const UNITS: Record<string, number> = {
  ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9,
};

/** time.Duration.String() for a duration in nanoseconds. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let u = Math.abs(ns);
  let out: string;
  if (u < 1e9) {
    // Below a second Go picks the largest unit that keeps the integer part non-zero.
    let unit: string;
    let scale: number;
    if (u < 1e3) { unit = 'ns'; scale = 1; }
    else if (u < 1e6) { unit = 'µs'; scale = 1e3; }
    else { unit = 'ms'; scale = 1e6; }
    out = fraction(u, scale) + unit;
  } else {
    const h = Math.floor(u / 3600e9);
    u -= h * 3600e9;
    const m = Math.floor(u / 60e9);
    u -= m * 60e9;
    out = fraction(u, 1e9) + 's';
    if (h > 0) out = `${h}h${m}m${out}`;
    else if (m > 0) out = `${m}m${out}`;
  }
  return neg ? '-' + out : out;
}

/** `v / scale` printed with the fractional digits Go keeps (trailing zeros dropped). */
function fraction(v: number, scale: number): string {
  const whole = Math.floor(v / scale);
  const rest = v - whole * scale;
  if (rest === 0) return String(whole);
  const digits = String(scale).length - 1;
  return `${whole}.${String(rest).padStart(digits, '0').replace(/0+$/, '')}`;
}

/**
 * time.ParseDuration. Returns nanoseconds; throws Go's messages
 * (`time: invalid duration "x"`, `time: missing unit in duration "1"`,
 * `time: unknown unit "y" in duration "1y"`).
 */
export function parseGoDuration(orig: string): number {
  let s = orig;
  let neg = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw new Error(`time: invalid duration ${goQuote(orig)}`);
  let total = 0;
  while (s !== '') {
    const num = /^(\d*)(?:\.(\d*))?/.exec(s)!;
    const intPart = num[1] ?? '';
    const fracPart = num[2];
    if (intPart === '' && (fracPart === undefined || fracPart === '')) throw new Error(`time: invalid duration ${goQuote(orig)}`);
    s = s.slice(num[0].length);
    const unitMatch = /^[^\d.]*/.exec(s)![0];
    if (unitMatch === '') throw new Error(`time: missing unit in duration ${goQuote(orig)}`);
    const scale = UNITS[unitMatch];
    if (scale === undefined) throw new Error(`time: unknown unit ${goQuote(unitMatch)} in duration ${goQuote(orig)}`);
    s = s.slice(unitMatch.length);
    let v = Number(intPart || '0') * scale;
    if (fracPart) v += Math.floor(Number(`0.${fracPart}`) * scale);
    total += v;
    if (total > 9223372036854775807) throw new Error(`time: invalid duration ${goQuote(orig)}`);
  }
  return neg ? -total : total;
}

/** A JSON value as Go's encoding/json writes it (keys in insertion order). */
export function goJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'string': return goJsonString(value);
    case 'number': return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean': return value ? 'true' : 'false';
    case 'bigint': return value.toString();
    case 'object': {
      if (Array.isArray(value)) return '[' + value.map(goJson).join(',') + ']';
      const parts: string[] = [];
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (v === undefined) continue;
        parts.push(goJsonString(k) + ':' + goJson(v));
      }
      return '{' + parts.join(',') + '}';
    }
    default:
      return 'null';
  }
}

function goJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029) out += '\\u' + hex(c, 4);
    else if (c >= 0xd800 && c <= 0xdfff) {
      // A valid pair passes through; a lone surrogate is what Go calls invalid UTF-8.
      const next = s.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        out += s[i]! + s[i + 1]!;
        i++;
      } else out += '\\ufffd';
    } else out += s[i];
  }
  return out + '"';
}
