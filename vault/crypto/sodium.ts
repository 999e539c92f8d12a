import sodiumModule from 'libsodium-wrappers-sumo';
import { SealedError } from '../errors.js';

export type Sodium = typeof sodiumModule;

let ready: Promise<Sodium> | null = null;

/** libsodium, initialised once. */
export function getSodium(): Promise<Sodium> {
  ready ??= sodiumModule.ready.then(() => sodiumModule);
  return ready;
}

/** The parts of libsodium's emscripten module that keyedBlake2b calls directly. */
interface SodiumWasm {
  _malloc(n: number): number;
  _free(ptr: number): void;
  HEAPU8: Uint8Array;
  _crypto_generichash(out: number, outLen: number, input: number, inLenLo: number, inLenHi: number, key: number, keyLen: number): number;
}

const utf8 = new TextEncoder();

/**
 * Keyed BLAKE2b-256 of `prefix || utf8(text)`, the same digest as
 * crypto_generichash(_init/_update/_final) through the wrappers, in one call
 * into the wasm module: the wrappers allocate, copy and free on every call,
 * which costs more than hashing an audit event. The key is copied once into
 * a region of the wasm heap this function owns; inputs are encoded straight
 * into it. Falls back to the wrappers if the module's internals differ.
 */
export type KeyedHash = ((prefix: Uint8Array | null, text: string) => Buffer) & {
  wipe(): void;
  /** Whether the digest equals `expected` (32 bytes), compared where it was computed: no buffer per call (audit verify). */
  matches(prefix: Uint8Array | null, text: string, expected: Uint8Array): boolean;
};

export function keyedBlake2b(s: Sodium, key: Uint8Array): KeyedHash {
  let wiped = false;
  const w = (s as unknown as { libsodium?: Partial<SodiumWasm> }).libsodium;
  if (!w || typeof w._malloc !== 'function' || typeof w._free !== 'function' || typeof w._crypto_generichash !== 'function' || !(w.HEAPU8 instanceof Uint8Array)) {
    const fn = (prefix: Uint8Array | null, text: string) => {
      if (wiped) throw new SealedError('the server was sealed: its keys are gone');
      const st = s.crypto_generichash_init(key, 32);
      if (prefix) s.crypto_generichash_update(st, prefix);
      s.crypto_generichash_update(st, s.from_string(text));
      return Buffer.from(s.crypto_generichash_final(st, 32));
    };
    const matches = (prefix: Uint8Array | null, text: string, expected: Uint8Array) => expected.length === 32 && Buffer.from(expected).equals(fn(prefix, text));
    return Object.assign(fn, { wipe() { wiped = true; s.memzero(key); }, matches });
  }
  const wasm = w as SodiumWasm;
  const keyLen = key.length;
  let cap = 0;
  let base = 0;
  const reserve = (bytes: number) => {
    if (bytes <= cap) return;
    if (base) { wasm.HEAPU8.fill(0, base, base + keyLen); wasm._free(base); }
    cap = Math.max(bytes, 4096);
    base = wasm._malloc(64 + keyLen + cap);
    if (!base) throw new Error('libsodium: out of memory');
    // HEAPU8 is replaced when the wasm memory grows: read it after malloc, always.
    wasm.HEAPU8.set(key, base + 64);
  };
  reserve(4096);
  /** Hashes into the heap; returns the heap (read it after this call: it is replaced when wasm memory grows). */
  const digest = (prefix: Uint8Array | null, text: string): Uint8Array => {
    if (wiped) throw new SealedError('the server was sealed: its keys are gone');
    const pre = prefix ? prefix.length : 0;
    reserve(pre + text.length * 3);
    const heap = wasm.HEAPU8;
    const keyAt = base + 64;
    const input = keyAt + keyLen;
    if (prefix) heap.set(prefix, input);
    const n = utf8.encodeInto(text, heap.subarray(input + pre, input + cap)).written;
    if (wasm._crypto_generichash(base, 32, input, pre + n, 0, keyAt, keyLen) !== 0) throw new Error('libsodium: crypto_generichash failed');
    return heap;
  };
  const fn = (prefix: Uint8Array | null, text: string) => Buffer.from(digest(prefix, text).subarray(base, base + 32));
  const matches = (prefix: Uint8Array | null, text: string, expected: Uint8Array): boolean => {
    const heap = digest(prefix, text);
    if (expected.length !== 32) return false;
    let diff = 0;
    for (let i = 0; i < 32; i++) diff |= heap[base + i] ^ expected[i];
    return diff === 0;
  };
  return Object.assign(fn, {
    matches,
    wipe() {
      if (wiped) return;
      wiped = true;
      wasm.HEAPU8.fill(0, base, base + 64 + keyLen + cap);
      wasm._free(base);
      base = 0;
      cap = 0;
      s.memzero(key);
    },
  });
}
