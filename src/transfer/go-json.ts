/**
 * JSON bytes as Go's encoding/json writes them, for files whose exact bytes matter (a saved
 * archive's manifest.json, index.json, repositories) and for Docker-shaped CLI output.
 *
 * Go and JSON.stringify agree on numbers, on control-character escapes and on the layout of
 * indented output (empty `{}`/`[]` stay compact, `"key": value`); they differ only in that Go
 * escapes U+2028/U+2029 always and `<`, `>`, `&` unless HTML escaping is turned off. Those
 * characters can only occur inside string literals, so a pass over the serialised text is
 * exact. Go sorts map keys; callers build map-like objects with `sortedKeys` (struct-like
 * objects keep their declared field order).
 */

export interface GoJsonOptions {
  /** Indent unit for multi-line output (Go's MarshalIndent / json.Indent); compact when absent. */
  indent?: string;
  /** Escape `<`, `>`, `&` as `\u003c`… (Go's default; `json.Encoder.SetEscapeHTML(false)` turns it off). */
  escapeHTML?: boolean;
}

const ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

export function goJson(value: unknown, options: GoJsonOptions = {}): string {
  const text = JSON.stringify(value, null, options.indent) ?? 'null';
  const pattern = options.escapeHTML === false ? /[\u2028\u2029]/g : /[<>&\u2028\u2029]/g;
  return text.replace(pattern, (c) => ESCAPES[c]!);
}

/** Go's map key order: by UTF-8 bytes. */
export function compareGoKeys(a: string, b: string): number {
  if (a === b) return 0;
  // Plain comparison is byte order for ASCII, which nearly every key is.
  if (/^[\x00-\x7f]*$/.test(a) && /^[\x00-\x7f]*$/.test(b)) return a < b ? -1 : 1;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * A copy of `map` whose keys are in Go's map order, so it serialises as a Go map does.
 * (Integer-like keys are the one exception: JavaScript always enumerates them first.)
 */
export function sortedKeys<T>(map: Readonly<Record<string, T>>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(map).sort(compareGoKeys)) out[k] = map[k]!;
  return out;
}
