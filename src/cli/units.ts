/**
 * docker's human-readable numbers and times (go-units HumanSize / HumanDuration, Go's time
 * formats), so columns read exactly as docker's do.
 */

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/** Go's `%.<precision>g`: shortest of fixed/exponent notation, trailing zeros dropped. */
export function goG(value: number, precision: number): string {
  if (value === 0) return '0';
  const s = value.toPrecision(precision);
  const m = /^(-?[\d.]+)e([+-])(\d+)$/.exec(s);
  const strip = (x: string) => (x.includes('.') ? x.replace(/\.?0+$/, '') : x);
  if (m) return `${strip(m[1]!)}e${m[2]}${m[3]!.padStart(2, '0')}`;
  // JavaScript switches to exponents later than Go for small numbers; sizes never get there.
  return strip(s);
}

/** go-units HumanSizeWithPrecision: decimal units (kB, MB…) and `precision` significant digits. */
export function humanSize(bytes: number, precision = 4): string {
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < DECIMAL_UNITS.length - 1) {
    size /= 1000;
    i++;
  }
  return `${goG(size, precision)}${DECIMAL_UNITS[i]}`;
}

import { humanDuration } from '../engine/units.js';

export { humanDuration };

/** `<HumanDuration(now - unix)> ago`, as docker's CREATED columns. */
export function since(unix: number, now = Date.now() / 1000): string {
  return `${humanDuration(now - unix)} ago`;
}

const pad = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');

function local(unix: number): { date: Date; offsetMin: number } {
  const date = new Date(unix * 1000);
  return { date, offsetMin: -date.getTimezoneOffset() };
}

function ymdhms(date: Date, sep: string): string {
  return `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}${sep}` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** The local zone's abbreviation as Go prints it (`UTC` for a zero offset). */
function zoneName(date: Date, offsetMin: number): string {
  if (offsetMin === 0) return 'UTC';
  const part = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(date).find((p) => p.type === 'timeZoneName');
  return part?.value ?? '';
}

/** Go's `time.Unix(unix, 0).String()` in the local zone: `2006-01-02 15:04:05 -0700 MST`. */
export function goTimeString(unix: number): string {
  const { date, offsetMin } = local(unix);
  const sign = offsetMin < 0 ? '-' : '+';
  return `${ymdhms(date, ' ')} ${sign}${pad(Math.trunc(Math.abs(offsetMin) / 60))}${pad(Math.abs(offsetMin) % 60)} ${zoneName(date, offsetMin)}`;
}

/** Go's `time.Unix(unix, 0).Format(time.RFC3339)` in the local zone. */
export function rfc3339Local(unix: number): string {
  const { date, offsetMin } = local(unix);
  const zone = offsetMin === 0 ? 'Z' : `${offsetMin < 0 ? '-' : '+'}${pad(Math.trunc(Math.abs(offsetMin) / 60))}:${pad(Math.abs(offsetMin) % 60)}`;
  return `${ymdhms(date, 'T')}${zone}`;
}

/** docker's stringutils.Ellipsis: at most `max` characters, the last one `…` when cut. */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  if (max < 1) return '';
  return chars.slice(0, max - 1).join('') + '…';
}

/** docker's short ID: `sha256:` dropped, 12 characters. */
export function truncateId(id: string): string {
  const i = id.indexOf(':');
  return (i >= 0 ? id.slice(i + 1) : id).slice(0, 12);
}
