/** Go's time formats for the timestamps Docker writes. */

// Date has millisecond resolution; the monotonic clock supplies the digits below it. The
// offset between the two is taken on first use (never at import: a module may be loaded
// long before it stamps anything), so successive stamps never go backwards.
let epochNsAtStart: bigint | undefined;

/** Nanoseconds since the epoch. */
export function nowNs(): bigint {
  epochNsAtStart ??= BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  return epochNsAtStart + process.hrtime.bigint();
}

/** Go's time.RFC3339Nano in UTC: fractional seconds with trailing zeros removed. */
export function formatTimestamp(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const iso = new Date(ms).toISOString(); // 2026-01-02T03:04:05.123Z
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${iso.slice(0, 19)}${frac ? `.${frac}` : ''}Z`;
}

/** Current UTC time as Go's `time.Now().UTC().Format(time.RFC3339Nano)` (trailing zeros trimmed). */
export function nowRfc3339Nano(): string {
  return formatTimestamp(nowNs());
}

/** Go's time.Now().Format(time.RFC3339Nano): local zone, fraction without trailing zeros. */
export function nowRfc3339NanoLocal(): string {
  const ns = nowNs();
  const date = new Date(Number(ns / 1_000_000n));
  const pad = (n: number | bigint, w = 2): string => String(n).padStart(w, '0');
  const fraction = `.${pad(ns % 1_000_000_000n, 9)}`.replace(/\.?0+$/, '');
  const offset = -date.getTimezoneOffset();
  const zone =
    offset === 0 ? 'Z' : `${offset > 0 ? '+' : '-'}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
  return (
    `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}${fraction}${zone}`
  );
}
