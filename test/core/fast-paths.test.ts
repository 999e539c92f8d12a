import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { fastPathAgrees, getSodium, keyedBlake2b, keyedHashPath, sodiumWasm, type Sodium } from '../../vault/crypto/sodium.js';

const installed = (name: string) =>
  (JSON.parse(readFileSync(new URL(`../../../node_modules/${name}/package.json`, import.meta.url), 'utf8')) as { version: string }).version;
const versions = () => `libsodium-wrappers-sumo ${installed('libsodium-wrappers-sumo')}, libsodium-sumo ${installed('libsodium-sumo')}`;
/** BLAKE2b-256 keyed with bytes 0..31 of "hush audit chain", as Python's hashlib.blake2b(key=..., digest_size=32) computes it. */
const KNOWN_DIGEST = '979967807eab6434c42ece7f2429175a5d39ef6105f5aca30e6a8c8b8fcbcdc6';
const vectorKey = () => Uint8Array.from({ length: 32 }, (_, i) => i);

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
    fc.assert(
      fc.property(
        fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 })),
        fc.string({ unit: 'grapheme', maxLength: 300 }),
        (prefix, text) => {
          assert.deepEqual(hash(prefix, text), reference(key, prefix, text));
        },
      ),
    );
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

describe('libsodium internals the audit MAC fast path relies on (an upgrade that changes them must fail here, loudly)', () => {
  it('the installed libsodium still exposes _malloc, _free, HEAPU8 and _crypto_generichash, and the self-check picks the fast path', async () => {
    const s = await getSodium();
    assert.ok(
      sodiumWasm(s),
      `${versions()}: the emscripten internals keyedBlake2b calls are gone; the server now hashes through the slower public API (vault/crypto/sodium.ts)`,
    );
    assert.equal(
      fastPathAgrees(s),
      true,
      `${versions()}: the fast path's digest differs from crypto_generichash's; see vault/crypto/sodium.ts`,
    );
    assert.equal(keyedHashPath(s), 'wasm');
  });

  it('both paths give the known BLAKE2b-256 digest, so the audit chain format does not depend on libsodium internals', async () => {
    const s = await getSodium();
    assert.equal(keyedBlake2b(s, vectorKey())(null, 'hush audit chain').toString('hex'), KNOWN_DIGEST, versions());
    const st = s.crypto_generichash_init(vectorKey(), 32);
    s.crypto_generichash_update(st, s.from_string('hush audit chain'));
    assert.equal(Buffer.from(s.crypto_generichash_final(st, 32)).toString('hex'), KNOWN_DIGEST, versions());
  });

  it('internals that hash differently fail the self-check, and keyedBlake2b falls back to the public API with the same digests', async () => {
    const real = await getSodium();
    const wasm = sodiumWasm(real)!;
    // The real module, with one internal changed: its generichash now flips the first byte of every digest.
    const changed = new Proxy(wasm, {
      get(target, prop) {
        if (prop !== '_crypto_generichash') return Reflect.get(target, prop) as unknown;
        return (out: number, outLen: number, input: number, lo: number, hi: number, key: number, keyLen: number) => {
          const rc = target._crypto_generichash(out, outLen, input, lo, hi, key, keyLen);
          target.HEAPU8[out] ^= 1;
          return rc;
        };
      },
    });
    const s = Object.create(real, { libsodium: { value: changed } }) as Sodium;
    assert.equal(fastPathAgrees(s), false);
    assert.equal(keyedHashPath(s), 'public');
    const hash = keyedBlake2b(s, vectorKey());
    assert.equal(hash(null, 'hush audit chain').toString('hex'), KNOWN_DIGEST);
    assert.equal(hash.matches(null, 'hush audit chain', Buffer.from(KNOWN_DIGEST, 'hex')), true);
    assert.equal(hash.matches(null, 'hush audit chain!', Buffer.from(KNOWN_DIGEST, 'hex')), false);
    // Missing internals: the same fallback.
    const bare = Object.create(real, { libsodium: { value: {} } }) as Sodium;
    assert.equal(keyedHashPath(bare), 'public');
    assert.equal(keyedBlake2b(bare, vectorKey())(null, 'hush audit chain').toString('hex'), KNOWN_DIGEST);
  });
});
