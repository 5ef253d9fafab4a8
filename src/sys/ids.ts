/** Random identifiers in the shapes Docker's on-disk layout uses. */
import { randomBytes } from 'node:crypto';

/**
 * 64 lowercase hex digits from 32 random bytes. Like Docker, an id whose 12-character short
 * form is all decimal digits is redrawn: the short form doubles as a hostname, and an
 * all-numeric one would parse as a number in some tools.
 */
export function randomId(): string {
  for (;;) {
    const id = randomBytes(32).toString('hex');
    if (!/^[0-9]{12}/.test(id)) return id;
  }
}

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 without padding (Node has no built-in encoder for it). */
export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32_ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/**
 * A 26-character name for overlay2's `l/` symlinks. The length is what keeps 128 lowers
 * (`l/<id>:` each) inside one page of mount options.
 */
export function shortLinkId(): string {
  return base32Encode(randomBytes(17)).slice(0, 26);
}

const LAYER_DIR_ID = /^[0-9a-f]{64}(-init)?$/;

/** Whether `s` names a layer directory: 64 lowercase hex, optionally with `-init`. */
export function isValidLayerDirId(s: string): boolean {
  return LAYER_DIR_ID.test(s);
}
