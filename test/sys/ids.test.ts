import { test } from 'node:test';
import assert from 'node:assert/strict';

import { base32Encode, isValidLayerDirId, randomId, shortLinkId } from '../../src/sys/ids.js';

test('randomId: 64 lowercase hex, never an all-digit short id', () => {
  const seen = new Set<string>();
  // An all-digit 12-char prefix comes up about once in 280 draws, so 5000 draws would
  // almost surely include some if the retry were missing.
  for (let i = 0; i < 5000; i++) {
    const id = randomId();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.doesNotMatch(id.slice(0, 12), /^[0-9]{12}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 5000);
});

test('base32Encode matches RFC 4648 vectors (unpadded)', () => {
  const vectors: Array<[string, string]> = [
    ['', ''],
    ['f', 'MY'],
    ['fo', 'MZXQ'],
    ['foo', 'MZXW6'],
    ['foob', 'MZXW6YQ'],
    ['fooba', 'MZXW6YTB'],
    ['foobar', 'MZXW6YTBOI'],
  ];
  for (const [input, expected] of vectors) assert.equal(base32Encode(Buffer.from(input)), expected);
});

test('shortLinkId: 26 base32 characters', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const id = shortLinkId();
    assert.match(id, /^[A-Z2-7]{26}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 1000);
});

test('isValidLayerDirId', () => {
  const id = 'a'.repeat(63) + '0';
  assert.equal(isValidLayerDirId(id), true);
  assert.equal(isValidLayerDirId(`${id}-init`), true);
  assert.equal(isValidLayerDirId(id.toUpperCase()), false);
  assert.equal(isValidLayerDirId(id.slice(1)), false);
  assert.equal(isValidLayerDirId(`${id}-ini`), false);
  assert.equal(isValidLayerDirId(`${id}-init-init`), false);
  assert.equal(isValidLayerDirId(`../${id}`), false);
  assert.equal(isValidLayerDirId(randomId()), true);
});
