import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import * as zlib from 'node:zlib';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { detectCompression, openDecompressed } from '../../src/archive/compression.js';
import { InvalidArchiveError, NotSupportedError } from '../../src/errors.js';

async function drain(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('compression', () => {
  const table: Array<[string, number[], string]> = [
    ['gzip', [0x1f, 0x8b, 8], 'gzip'],
    ['zstd', [0x28, 0xb5, 0x2f, 0xfd], 'zstd'],
    ['bzip2', [0x42, 0x5a, 0x68, 0x39], 'bzip2'],
    ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'xz'],
    ['tar', [0x61, 0x2f, 0, 0, 0, 0], 'none'],
    ['empty', [], 'none'],
  ];
  for (const [what, bytes, want] of table) it(`detects ${what}`, () => assert.equal(detectCompression(Buffer.from(bytes)), want));

  it('passes plain input through and measures it', async () => {
    const data = Buffer.alloc(100_000, 5);
    const src = await openDecompressed(Readable.from([data.subarray(0, 2), data.subarray(2)]));
    assert.equal(src.compression, 'none');
    assert.ok((await drain(src.chunks)).equals(data));
    assert.equal(src.compressedSize(), data.length);
    assert.equal(src.compressedDigest(), undefined);
  });

  it('inflates gzip (also multi-member) and hashes the compressed bytes', async () => {
    const a = Buffer.alloc(300_000, 1);
    const b = Buffer.from('second member');
    const gz = Buffer.concat([gzipSync(a), gzipSync(b)]);
    const src = await openDecompressed(Readable.from([gz.subarray(0, 1), gz.subarray(1, 5), gz.subarray(5)]));
    assert.equal(src.compression, 'gzip');
    assert.ok((await drain(src.chunks)).equals(Buffer.concat([a, b])));
    assert.equal(src.compressedDigest(), sha(gz));
    assert.equal(src.compressedSize(), gz.length);
  });

  it('reports corrupt gzip as an invalid archive', async () => {
    const gz = gzipSync(Buffer.alloc(10_000, 1));
    gz.fill(0x55, 20, 40);
    const src = await openDecompressed(Readable.from([gz]));
    await assert.rejects(drain(src.chunks), InvalidArchiveError);
  });

  it('refuses bzip2/xz, and zstd when node:zlib lacks it', async () => {
    await assert.rejects(openDecompressed(Readable.from([Buffer.from('BZh91AY')])), NotSupportedError);
    await assert.rejects(openDecompressed(Readable.from([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])])), NotSupportedError);
    if (!('createZstdDecompress' in zlib)) {
      await assert.rejects(openDecompressed(Readable.from([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0])])), /zstd/);
    }
  });
});
