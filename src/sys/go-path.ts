/**
 * Go's `path.Clean`, lexically: Docker normalises tar names, mount destinations and volume
 * paths with it, and matching Docker's output means matching its edge cases ("" → ".",
 * ".." kept at the front of relative paths, dropped at the root). Works on binary strings too.
 */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.charCodeAt(0) === 0x2f;
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return '/' + joined;
  return joined === '' ? '.' : joined;
}
