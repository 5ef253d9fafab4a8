/** Human-readable units the daemon itself renders (container Status text). */

/** Largest duration Go represents (time.Sub saturates there): about 292 years. */
const MAX_DURATION_SECONDS = 9223372036.854775807;

/** go-units HumanDuration of a duration in seconds. */
export function humanDuration(seconds: number): string {
  const d = Math.min(seconds, MAX_DURATION_SECONDS);
  const s = Math.trunc(d);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const minutes = Math.trunc(d / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(d / 3600);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(Math.trunc(d / 3600) / 24 / 365)} years`;
}
