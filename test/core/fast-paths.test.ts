import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { getSodium, keyedBlake2b } from '../../vault/crypto/sodium.js';

describe('keyedBlake2b (one call into the wasm module)', () => {
  it('gives the same digest as crypto_generichash through the wrappers, for any prefix and text', async () => {
    const s = await getSodium();
    const reference = (key: Uint8Array, prefix: Uint8Array | null, text: string) => {
      const st = s.crypto_generichash_init(key, 32);
      if (prefix) s.crypto_generichash_update(st, prefix);
      s.crypto_generichash_update(st, s.from_string(text));
      return Buffer.from(s.crypto_generichash_final(st, 32));
    };
    const key = s.randombytes_buf(32);
    const hash = keyedBlake2b(s, key);
    fc.assert(fc.property(fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 })), fc.string({ unit: 'grapheme', maxLength: 300 }), (prefix, text) => {
      assert.deepEqual(hash(prefix, text), reference(key, prefix, text));
    }));
    // Longer than the first buffer (it grows), then short again; and a token-shaped input without prefix.
    for (const text of ['x'.repeat(10_000), 'é€😀'.repeat(3000), 'short', 'hush_' + 'a'.repeat(49)]) {
      assert.deepEqual(hash(null, text), reference(key, null, text));
      assert.deepEqual(hash(key, text), reference(key, key, text));
    }
    // Another key in the same module keeps its own region.
    const key2 = s.randombytes_buf(32);
    const hash2 = keyedBlake2b(s, key2);
    assert.deepEqual(hash2(null, 'abc'), reference(key2, null, 'abc'));
    assert.deepEqual(hash(null, 'abc'), reference(key, null, 'abc'));
  });
});
