import { createHash } from 'node:crypto';
import { InvalidArgumentError } from './errors.js';

/** `sha256:<64 lowercase hex>`. Kept as a plain string so it serialises as Docker writes it. */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const HEX64_RE = /^[0-9a-f]{64}$/;

export function isDigest(value: string): value is Digest {
  return DIGEST_RE.test(value);
}

export function isHex64(value: string): boolean {
  return HEX64_RE.test(value);
}

export function parseDigest(value: string): Digest {
  if (!isDigest(value)) throw new InvalidArgumentError(`invalid digest: "${value}"`);
  return value;
}

/** The hex part of a digest, as used for file names in the stores. */
export function digestHex(digest: Digest): string {
  return digest.slice(7);
}

export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** ChainID of a layer stack given its diffIDs bottom-up (OCI image-spec identity). */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const diffId of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? diffId : sha256(`${prev} ${diffId}`));
  }
  return out;
}

export function chainId(diffIds: readonly Digest[]): Digest | undefined {
  return chainIds(diffIds).at(-1);
}

/** Docker's 12-character short form: strips `sha256:` and truncates. */
export function shortId(id: string): string {
  const i = id.indexOf(':');
  return (i >= 0 ? id.slice(i + 1) : id).slice(0, 12);
}

/** Digest of the empty layer tar (1024 zero bytes), which builders never add to rootfs. */
export const EMPTY_LAYER_DIFF_ID: Digest =
  'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';
