/** Go's time formats for the timestamps Docker writes. */

/** Current UTC time as Go's `time.Now().UTC().Format(time.RFC3339Nano)` (trailing zeros trimmed). */
export function nowRfc3339Nano(): string {
  const ms = performance.timeOrigin + performance.now();
  const whole = Math.floor(ms);
  const nanos = (whole % 1000) * 1e6 + Math.floor((ms - whole) * 1e6);
  const base = new Date(whole).toISOString().slice(0, 19);
  const fraction = String(nanos).padStart(9, '0').replace(/0+$/, '');
  return `${base}${fraction ? `.${fraction}` : ''}Z`;
}
