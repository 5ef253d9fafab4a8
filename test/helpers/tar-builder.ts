/**
 * Builds tar byte buffers from header specs, for table-driven tests (hostile archives
 * included). Deliberately independent of src/archive: its own minimal ustar + PAX encoder, so
 * tests of the real reader/writer do not check the code against itself.
 *
 * Names longer than 100 bytes, non-ASCII names, `pax` and `xattrs` produce a PAX extended
 * header (`PaxHeaders/<base>`) before the entry. Nothing is validated: `../x`, absolute names,
 * char devices 0:0 and any typeflag can be written.
 */

export interface TarSpec {
  name: string;
  /** Typeflag character ('0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' dir,
   * '6' fifo, 'x', 'g', 'L', 'K', ...). Default: '5' for names ending in '/', else '0'. */
  type?: string;
  body?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  uname?: string;
  gname?: string;
  pax?: Record<string, string>;
  xattrs?: Record<string, string | Buffer>;
  devmajor?: number;
  devminor?: number;
  /** Header size field when it must differ from the body length (hostile cases). */
  size?: number;
  /** Write this checksum instead of the correct one. */
  checksum?: number;
}

export interface BuildOptions {
  /** Pad the archive with zeros to a multiple of 10240 bytes, as GNU tar does. */
  gnuPadTo10240?: boolean;
  /** Leave out the two end-of-archive zero blocks. */
  noTrailer?: boolean;
  /** Bytes appended after everything else. */
  trailing?: Buffer;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function putStr(block: Buffer, off: number, len: number, value: string | Buffer): void {
  const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  b.copy(block, off, 0, Math.min(len, b.length));
}

function header(spec: {
  name: string | Buffer; type: string; size: number; linkname?: string; mode?: number; uid?: number;
  gid?: number; mtime?: number; uname?: string; gname?: string; devmajor?: number; devminor?: number;
  checksum?: number;
}): Buffer {
  const block = Buffer.alloc(512);
  putStr(block, 0, 100, spec.name);
  putStr(block, 100, 8, octal(spec.mode ?? 0o644, 8));
  putStr(block, 108, 8, octal(spec.uid ?? 0, 8));
  putStr(block, 116, 8, octal(spec.gid ?? 0, 8));
  putStr(block, 124, 12, octal(spec.size, 12));
  putStr(block, 136, 12, octal(spec.mtime ?? 0, 12));
  block.write(spec.type, 156, 1, 'latin1');
  putStr(block, 157, 100, spec.linkname ?? '');
  block.write('ustar\x0000', 257, 8, 'latin1');
  putStr(block, 265, 32, spec.uname ?? '');
  putStr(block, 297, 32, spec.gname ?? '');
  putStr(block, 329, 8, octal(spec.devmajor ?? 0, 8));
  putStr(block, 337, 8, octal(spec.devminor ?? 0, 8));
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  putStr(block, 148, 8, octal(spec.checksum ?? sum, 7) + ' ');
  return block;
}

function pad(n: number): Buffer {
  return Buffer.alloc((512 - (n % 512)) % 512);
}

function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = rest.length + 1;
  while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
  return Buffer.concat([Buffer.from(String(len)), rest]);
}

/**
 * @example
 * buildTar([{ name: 'a/', mode: 0o755 }, { name: 'a/hello', body: 'hello\n' }])
 */
export function buildTar(entries: readonly TarSpec[], options: BuildOptions = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? (e.name.endsWith('/') ? '5' : '0');
    const body = e.body === undefined ? Buffer.alloc(0) : typeof e.body === 'string' ? Buffer.from(e.body) : e.body;
    const records: Buffer[] = [];
    const nameBytes = Buffer.from(e.name, 'utf8');
    const needsPaxName = nameBytes.length > 100 || nameBytes.some((b) => b >= 0x80);
    if (needsPaxName) records.push(paxRecord('path', nameBytes));
    if (e.linkname !== undefined && Buffer.byteLength(e.linkname) > 100) records.push(paxRecord('linkpath', Buffer.from(e.linkname)));
    for (const [k, v] of Object.entries(e.pax ?? {})) records.push(paxRecord(k, Buffer.from(v)));
    for (const [k, v] of Object.entries(e.xattrs ?? {})) records.push(paxRecord(`SCHILY.xattr.${k}`, typeof v === 'string' ? Buffer.from(v) : v));
    if (records.length > 0) {
      const data = Buffer.concat(records);
      const base = e.name.replace(/\/+$/, '').split('/').pop() ?? '';
      parts.push(header({ name: `PaxHeaders/${base}`.slice(0, 100), type: 'x', size: data.length, mode: 0 }), data, pad(data.length));
    }
    const shortName = needsPaxName ? nameBytes.subarray(0, 100) : nameBytes;
    parts.push(header({
      name: shortName, type, size: e.size ?? body.length, linkname: e.linkname !== undefined && Buffer.byteLength(e.linkname) > 100 ? '' : e.linkname,
      mode: e.mode ?? (type === '5' ? 0o755 : 0o644), uid: e.uid, gid: e.gid, mtime: e.mtime, uname: e.uname, gname: e.gname,
      devmajor: e.devmajor, devminor: e.devminor, checksum: e.checksum,
    }));
    if (body.length > 0) parts.push(body, pad(body.length));
  }
  if (!options.noTrailer) parts.push(Buffer.alloc(1024));
  let out = Buffer.concat(parts);
  if (options.gnuPadTo10240 && out.length % 10240 !== 0) out = Buffer.concat([out, Buffer.alloc(10240 - (out.length % 10240))]);
  if (options.trailing) out = Buffer.concat([out, options.trailing]);
  return out;
}
