import { randomFillSync } from 'node:crypto';
import type { Sodium } from './sodium.js';

export const NONCE_BYTES = 24;
export const KEY_BYTES = 32;
/** Poly1305 tag: a ciphertext is this many bytes longer than its plaintext. */
export const TAG_BYTES = 16;

/**
 * Nonces are cut from a pool filled by node:crypto's CSPRNG 64 KiB at a time
 * (same quality as libsodium's randombytes, without a call per nonce: a
 * restore seals every value). Each nonce is a copy; a pool byte is handed out once.
 */
const POOL = Buffer.alloc(NONCE_BYTES * 2730);
let poolAt = POOL.length;
function freshNonce(): Buffer {
  if (poolAt + NONCE_BYTES > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const n = Buffer.allocUnsafe(NONCE_BYTES);
  POOL.copy(n, 0, poolAt, poolAt + NONCE_BYTES);
  POOL.fill(0, poolAt, poolAt + NONCE_BYTES);
  poolAt += NONCE_BYTES;
  return n;
}

/** XChaCha20-Poly1305-IETF with a fresh random nonce. Returns nonce and ciphertext separately. */
export function seal(s: Sodium, key: Uint8Array, plaintext: Uint8Array, ad: string): { nonce: Buffer; ciphertext: Buffer } {
  const nonce = freshNonce();
  const ct = s.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, s.from_string(ad), null, nonce, key);
  return { nonce, ciphertext: Buffer.from(ct) };
}

/** Returns null when authentication fails (wrong key, wrong associated data, or tampered bytes). */
export function open(s: Sodium, key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, ad: string): Uint8Array | null {
  if (nonce.length !== NONCE_BYTES) return null;
  try {
    return s.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, s.from_string(ad), nonce, key);
  } catch {
    return null;
  }
}

/** Wrapped-key format: nonce || ciphertext in one buffer. */
export function sealPacked(s: Sodium, key: Uint8Array, plaintext: Uint8Array, ad: string): Buffer {
  const { nonce, ciphertext } = seal(s, key, plaintext, ad);
  return Buffer.concat([nonce, ciphertext]);
}

export function openPacked(s: Sodium, key: Uint8Array, packed: Uint8Array, ad: string): Uint8Array | null {
  if (packed.length < NONCE_BYTES + 16) return null;
  return open(s, key, packed.subarray(0, NONCE_BYTES), packed.subarray(NONCE_BYTES), ad);
}
