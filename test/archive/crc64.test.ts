import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Crc64, crc64 } from '../../src/archive/crc64.js';

/** Bit-at-a-time reference: reflected CRC-64 with the ISO polynomial, init/xorout all ones. */
function reference(data: Uint8Array): bigint {
  const poly = 0xd800000000000000n;
  let crc = 0xffffffffffffffffn;
  for (const b of data) {
    crc ^= BigInt(b);
    for (let i = 0; i < 8; i++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n;
  }
  return crc ^ 0xffffffffffffffffn;
}

describe('crc64 (Go crc64.ISO)', () => {
  const vectors: Array<[string, bigint, string?]> = [
    ['123456789', 0xb90956c775a41001n],
    ['hello\n', 0x614c3eeee2d81000n, 'YUw+7uLYEAA='],
    ['hello world\n', 0x44e9cf3f572ad9acn, 'ROnPP1cq2aw='],
    ['', 0n, 'AAAAAAAAAAA='],
  ];
  for (const [input, want, b64] of vectors) {
    it(`${JSON.stringify(input)} → ${want.toString(16)}`, () => {
      assert.equal(crc64(Buffer.from(input)), want);
      if (b64) assert.equal(new Crc64().update(Buffer.from(input)).digest().toString('base64'), b64);
    });
  }

  it('matches a bitwise reference on random data of every length 0..80', () => {
    for (let n = 0; n <= 80; n++) {
      const d = randomBytes(n);
      assert.equal(crc64(d), reference(d), `length ${n}`);
    }
  });

  it('the WebAssembly kernel and the JS loop agree on every length around the switch-over', () => {
    for (const n of [0, 1, 7, 8, 255, 256, 257, 1000, 4096 + 5, (1 << 20) + 13, (3 << 20) + 1]) {
      const d = randomBytes(n);
      assert.equal(new Crc64().update(d).value(), new Crc64().updateJs(d).value(), `length ${n}`);
    }
    const d = randomBytes(2000);
    assert.equal(new Crc64().update(d).value(), reference(d));
  });

  it('is the same however the input is split', () => {
    const d = randomBytes(10_000);
    const want = crc64(d);
    for (const step of [1, 3, 7, 8, 9, 64, 4097]) {
      const c = new Crc64();
      for (let i = 0; i < d.length; i += step) c.update(d.subarray(i, i + step));
      assert.equal(c.value(), want, `step ${step}`);
    }
  });
});
