import { timingSafeEqual } from 'node:crypto';
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
export interface SodiumWasm {
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
 * into it.
 *
 * `_malloc`, `HEAPU8` and `_crypto_generichash` are emscripten internals, not
 * libsodium's public API, so they may change in any release. Two guards:
 * the first keyedBlake2b of a process runs a self-check that hashes known
 * vectors both ways (fastPathAgrees) and uses the public API if the internals
 * are missing or disagree; and test/core/fast-paths.test.ts fails loudly,
 * naming the installed version, when they change. The digest is the same
 * either way, so the audit chain's format does not depend on the path.
 */
export type KeyedHash = ((prefix: Uint8Array | null, text: string) => Buffer) & {
  wipe(): void;
  /** Whether the digest equals `expected` (32 bytes), compared where it was computed: no buffer per call (audit verify). */
  matches: (prefix: Uint8Array | null, text: string, expected: Uint8Array) => boolean;
};

function publicKeyedBlake2b(s: Sodium, key: Uint8Array): KeyedHash {
  let wiped = false;
  const fn = (prefix: Uint8Array | null, text: string) => {
    if (wiped) throw new SealedError('the server was sealed: its keys are gone');
    const st = s.crypto_generichash_init(key, 32);
    if (prefix) s.crypto_generichash_update(st, prefix);
    s.crypto_generichash_update(st, s.from_string(text));
    return Buffer.from(s.crypto_generichash_final(st, 32));
  };
  const matches = (prefix: Uint8Array | null, text: string, expected: Uint8Array) =>
    expected.length === 32 && timingSafeEqual(expected, fn(prefix, text));
  return Object.assign(fn, {
    wipe() {
      wiped = true;
      s.memzero(key);
    },
    matches,
  });
}

/** The emscripten module under the wrappers, when it has what the fast path calls. */
export function sodiumWasm(s: Sodium): SodiumWasm | null {
  const w = (s as unknown as { libsodium?: Partial<SodiumWasm> }).libsodium;
  if (
    !w ||
    typeof w._malloc !== 'function' ||
    typeof w._free !== 'function' ||
    typeof w._crypto_generichash !== 'function' ||
    !(w.HEAPU8 instanceof Uint8Array)
  )
    return null;
  return w as SodiumWasm;
}

function wasmKeyedBlake2b(s: Sodium, wasm: SodiumWasm, key: Uint8Array): KeyedHash {
  let wiped = false;
  const keyLen = key.length;
  let cap = 0;
  let base = 0;
  const reserve = (bytes: number) => {
    if (bytes <= cap) return;
    if (base) {
      wasm.HEAPU8.fill(0, base, base + keyLen);
      wasm._free(base);
    }
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

/**
 * Inputs of the self-check: no prefix and a prefix, empty, multi-byte and
 * long text (longer than the first heap region, so the region grows), then
 * short again.
 */
const SELF_CHECK: [Uint8Array | null, string][] = [
  [null, ''],
  [null, 'hush audit chain'],
  [new Uint8Array(32).fill(7), '{"seq":1,"action":"secret.read"}'],
  [null, 'é€😀'.repeat(2000)],
  [new Uint8Array(32).fill(9), 'x'.repeat(10_000)],
  [null, 'short again'],
];

/**
 * Start-up self-check: whether the fast path gives libsodium's public
 * crypto_generichash digest on known vectors (and `matches` agrees). False
 * when the internals are missing, throw, or differ.
 */
export function fastPathAgrees(s: Sodium): boolean {
  const wasm = sodiumWasm(s);
  if (!wasm) return false;
  const key = () => Uint8Array.from({ length: 32 }, (_, i) => i);
  let fast: KeyedHash | undefined;
  const pub = publicKeyedBlake2b(s, key());
  try {
    fast = wasmKeyedBlake2b(s, wasm, key());
    for (const [prefix, text] of SELF_CHECK) {
      const want = pub(prefix, text);
      if (!fast(prefix, text).equals(want) || !fast.matches(prefix, text, want)) return false;
    }
    return true;
  } catch {
    return false;
  } finally {
    fast?.wipe();
    pub.wipe();
  }
}

const checked = new WeakMap<Sodium, boolean>();

/** Which implementation keyedBlake2b uses for this libsodium: the self-check runs once per module. */
export function keyedHashPath(s: Sodium): 'wasm' | 'public' {
  let ok = checked.get(s);
  if (ok === undefined) {
    ok = fastPathAgrees(s);
    checked.set(s, ok);
  }
  return ok ? 'wasm' : 'public';
}

export function keyedBlake2b(s: Sodium, key: Uint8Array): KeyedHash {
  const wasm = keyedHashPath(s) === 'wasm' ? sodiumWasm(s) : null;
  return wasm ? wasmKeyedBlake2b(s, wasm, key) : publicKeyedBlake2b(s, key);
}
