/**
 * 512-byte tar header blocks: decode (ustar, GNU, PAX) and encode exactly as Go's
 * archive/tar writes them (what Docker produces). Contract fixed here; implementation owned
 * by the archive work.
 */
export const BLOCK_SIZE = 512;

/** Typeflag bytes as characters: '0' file, '1' hard link, '2' symlink, '3' char, '4' block,
 * '5' dir, '6' fifo, 'x' PAX, 'g' PAX global, 'L' GNU long name, 'K' GNU long link. */
export type Typeflag = string;

export interface TarHeader {
  name: string;
  linkname: string;
  typeflag: Typeflag;
  /** Permission + setuid/setgid/sticky bits (type bits, if present in the field, removed). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch; PAX may give fractions. */
  mtime: number;
  atime?: number;
  ctime?: number;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** PAX records that applied to this entry (after merging global + local). */
  pax?: Record<string, string>;
  /** `SCHILY.xattr.*` records, name without the prefix → raw value bytes. */
  xattrs?: Map<string, Buffer>;
}

/** Decodes one raw header block; returns null for an all-zero block. Throws on a bad checksum. */
export declare function decodeHeaderBlock(block: Buffer): TarHeader | null;

/**
 * Encodes a header as Go's tar.Writer would for the same tar.Header with Format unset:
 * plain USTAR when representable, otherwise a PAX extended header
 * (`<dir>/PaxHeaders.0/<base>`) followed by the USTAR block. Returns whole blocks.
 */
export declare function encodeHeader(header: TarHeader): Buffer;
