import { randomFillSync, timingSafeEqual } from 'node:crypto';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { sep } from 'node:path';
import { ConfigError, IntegrityError, SealedError, WrongMasterKeyError } from '../errors.js';
import { KEY_BYTES, open, openPacked, seal, sealPacked } from './aead.js';
import { getSodium, keyedBlake2b, type Sodium } from './sodium.js';
import { formatToken } from 'hush-vault-sdk/token-format';

/**
 * The only code that holds key bytes. The master key (MK) and every unwrapped
 * key live in closures; callers get functions (encrypt, decrypt, hash, mac)
 * and opaque wrapped blobs to store.
 */

export type KeyPurpose = 'check' | 'dek' | 'token-pepper' | 'audit-mac' | 'webhook';

export interface WrappedKey {
  purpose: KeyPurpose;
  scope: string;
  version: number;
  wrapped: Buffer;
  mkFingerprint: string;
}

export interface MasterKey {
  readonly fingerprint: string;
  /** Internal: used by keyring functions in this folder only. Throws SealedError once wiped. */
  readonly _use: <T>(fn: (mk: Uint8Array, s: Sodium) => T) => T;
  /** Internal: registers the wipe of a key unwrapped with this one (a cipher, a hasher), run by wipeMasterKey. */
  readonly _track: (wipe: () => void) => void;
}

export interface SecretCipher {
  readonly version: number;
  encrypt(value: string, ad: string): { nonce: Buffer; ciphertext: Buffer };
  /** Throws IntegrityError when the ciphertext does not authenticate at this location. */
  decrypt(nonce: Uint8Array, ciphertext: Uint8Array, ad: string, where: string): string;
}

export const keyAd = (purpose: string, scope: string, version: number) => `hush:v1:key:${purpose}:${scope}:${version}`;
export const secretAd = (projectId: number, envId: number, name: string, version: number) =>
  `hush:v1:secret:${projectId}:${envId}:${name}:${version}`;

async function masterKeyFromBytes(bytes: Uint8Array): Promise<MasterKey> {
  const s = await getSodium();
  if (bytes.length !== KEY_BYTES) throw new ConfigError(`master key must be ${KEY_BYTES} bytes, got ${bytes.length}`);
  const mk = new Uint8Array(bytes);
  const fingerprint = s.to_hex(s.crypto_generichash(8, s.from_string('hush-master-key-fingerprint'), mk));
  const dependants: (() => void)[] = [];
  let wiped = false;
  const key: MasterKey = Object.freeze({
    fingerprint,
    _use: <T>(fn: (k: Uint8Array, so: Sodium) => T) => {
      if (wiped) throw new SealedError('the server was sealed: its keys are gone');
      return fn(mk, s);
    },
    _track: (wipe: () => void) => {
      if (wiped) wipe();
      else dependants.push(wipe);
    },
  });
  wipers.set(key, () => {
    wiped = true;
    s.memzero(mk);
    for (const w of dependants.splice(0)) w();
  });
  return key;
}

const wipers = new WeakMap<MasterKey, () => void>();

/**
 * Zeroes the master key's bytes and every key unwrapped with it (data-key
 * ciphers, the token hasher, the audit MAC), in place, with libsodium's
 * memzero. Any later use throws SealedError. What JavaScript cannot
 * promise (copies the engine made, strings) is in docs/keys.md.
 */
export function wipeMasterKey(mk: MasterKey): void {
  wipers.get(mk)?.();
}

/** A master key from raw bytes (the seal's unwrap): the bytes are copied, the caller wipes its own. */
export const masterKeyFromRaw = masterKeyFromBytes;

/** Decodes a base64 master key. `source` names where it came from, for the error message. */
export async function masterKeyFromBase64(b64: string, source: string): Promise<MasterKey> {
  const text = b64.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new ConfigError(`${source}: master key is not base64`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== KEY_BYTES) throw new ConfigError(`${source}: master key must decode to ${KEY_BYTES} bytes, got ${bytes.length}`);
  return masterKeyFromBytes(bytes);
}

/**
 * A systemd credential (LoadCredential(Encrypted)=) may show group bits: on a
 * tmpfs, newer systemd gives the service's user read access with a POSIX ACL
 * entry, and stat reports the ACL mask as the group bits (0440). The
 * directory systemd names in $CREDENTIALS_DIRECTORY is private to the
 * service, so a file inside it that grants others nothing is accepted.
 */
function systemdCredential(path: string, mode: number): boolean {
  const dir = process.env.CREDENTIALS_DIRECTORY;
  if (!dir || (mode & 0o007) !== 0 || (mode & 0o022) !== 0) return false;
  try {
    const real = realpathSync(path);
    const base = realpathSync(dir);
    return real.startsWith(base.endsWith(sep) ? base : base + sep);
  } catch {
    return false;
  }
}

/** Reads a master key file, refusing one that group or others can read (see systemdCredential for the one exception). */
export async function masterKeyFromFile(path: string): Promise<MasterKey> {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`master key file ${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`);
  }
  if (!st.isFile()) throw new ConfigError(`master key file ${path} is not a regular file`);
  if ((st.mode & 0o077) !== 0 && !systemdCredential(path, st.mode)) {
    throw new ConfigError(
      `master key file ${path} is readable by group or others (mode ` + `${(st.mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
    );
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`master key file ${path} cannot be read (${(e as NodeJS.ErrnoException).code})`);
  }
  return masterKeyFromBase64(text, `master key file ${path}`);
}

/** A fresh random master key, as the base64 text to store in a key file. */
export async function generateMasterKeyBase64(): Promise<string> {
  const s = await getSodium();
  return Buffer.from(s.randombytes_buf(KEY_BYTES)).toString('base64');
}

export async function randomTokenString(): Promise<string> {
  const s = await getSodium();
  return formatToken((n) => s.randombytes_buf(n));
}

/** Random bytes for ids and salts (not key material). */
export async function randomBytes(n: number): Promise<Buffer> {
  const s = await getSodium();
  return Buffer.from(s.randombytes_buf(n));
}

/**
 * Fresh key material from node:crypto's CSPRNG (the source of the nonces,
 * aead.ts). libsodium's randombytes in its wasm build draws 4 bytes per call
 * through Web Crypto: a restore making a data key per project spent 3% of
 * its time there.
 */
function freshKey(): Uint8Array {
  const k = new Uint8Array(KEY_BYTES);
  randomFillSync(k);
  return k;
}

/** Creates a new random key of `purpose`, wrapped under the MK. */
export function newWrappedKey(mk: MasterKey, purpose: KeyPurpose, scope: string, version: number): WrappedKey {
  return mk._use((k, s) => {
    const fresh = freshKey();
    const wrapped = sealPacked(s, k, fresh, keyAd(purpose, scope, version));
    s.memzero(fresh);
    return { purpose, scope, version, wrapped, mkFingerprint: mk.fingerprint };
  });
}

/**
 * A new data key: its wrapped row (to store) and its cipher, without
 * opening the row again (a restore makes one per project).
 */
export function newSecretCipher(mk: MasterKey, scope: string, version: number): { row: WrappedKey; cipher: SecretCipher } {
  const key = freshKey();
  const row = mk._use((k, s) => ({
    purpose: 'dek' as const,
    scope,
    version,
    wrapped: sealPacked(s, k, key, keyAd('dek', scope, version)),
    mkFingerprint: mk.fingerprint,
  }));
  return { row, cipher: cipherOf(mk, key, version) };
}

/** Opens a wrapped key; for the other modules of this folder only. The caller wipes it. */
export function unwrapKey(mk: MasterKey, row: WrappedKey): Uint8Array {
  return unwrap(mk, row);
}

function unwrap(mk: MasterKey, row: WrappedKey): Uint8Array {
  return mk._use((k, s) => {
    const key = openPacked(s, k, row.wrapped, keyAd(row.purpose, row.scope, row.version));
    if (!key) {
      if (row.mkFingerprint !== mk.fingerprint) {
        throw new WrongMasterKeyError(
          `wrong master key: ${row.purpose} key ${row.scope} v${row.version} is wrapped under master key ` +
            `${row.mkFingerprint}, this server has ${mk.fingerprint}`,
        );
      }
      throw new IntegrityError(
        `wrapped ${row.purpose} key ${row.scope} v${row.version} failed its integrity check (database ` + `corrupted or tampered with)`,
      );
    }
    return key;
  });
}

/**
 * Checks the key-check row before anything is served or written. A wrong MK
 * and a corrupted row give different messages.
 */
export function verifyKeyCheck(mk: MasterKey, row: WrappedKey): void {
  if (row.mkFingerprint !== mk.fingerprint) {
    throw new WrongMasterKeyError(
      `wrong master key: this vault was sealed with master key ${row.mkFingerprint}, but the key ` +
        `supplied has fingerprint ${mk.fingerprint}`,
    );
  }
  unwrap(mk, row);
}

/** Re-encrypts a wrapped key under a new MK without exposing it. */
export function rewrapKey(oldMk: MasterKey, newMk: MasterKey, row: WrappedKey): WrappedKey {
  const key = unwrap(oldMk, row);
  try {
    const wrapped = newMk._use((k, s) => sealPacked(s, k, key, keyAd(row.purpose, row.scope, row.version)));
    return { ...row, wrapped, mkFingerprint: newMk.fingerprint };
  } finally {
    key.fill(0);
  }
}

export function secretCipher(mk: MasterKey, dek: WrappedKey): SecretCipher {
  // Not `dek` inside the closure: that would keep the row (and the
  // 8 KiB pool slab its small Buffer points into) alive with every cached cipher.
  return cipherOf(mk, unwrap(mk, dek), dek.version);
}

/** The cipher of an open data key; it keeps `key` (wiped with the master key). */
function cipherOf(mk: MasterKey, key: Uint8Array, version: number): SecretCipher {
  let wiped = false;
  const gone = () => new SealedError('the server was sealed: its keys are gone');
  return mk._use((_k, s) => {
    mk._track(() => {
      wiped = true;
      s.memzero(key);
    });
    return {
      version,
      encrypt(value: string, ad: string) {
        if (wiped) throw gone();
        return seal(s, key, Buffer.from(value, 'utf8'), ad);
      },
      decrypt(nonce: Uint8Array, ciphertext: Uint8Array, ad: string, where: string) {
        if (wiped) throw gone();
        const pt = open(s, key, nonce, ciphertext, ad);
        if (!pt)
          throw new IntegrityError(
            `integrity check failed for ${where}: the stored ciphertext does not belong to this location or ` + `was altered`,
          );
        return Buffer.from(pt.buffer, pt.byteOffset, pt.byteLength).toString('utf8');
      },
    };
  });
}

/** Keyed BLAKE2b-256 of a token string; the pepper stays inside the closure. */
export function tokenHasher(mk: MasterKey, pepper: WrappedKey): (token: string) => Buffer {
  const key = unwrap(mk, pepper);
  return mk._use((_k, s) => {
    const hash = keyedBlake2b(s, key);
    mk._track(() => {
      hash.wipe();
      s.memzero(key);
    });
    return (token: string) => hash(null, token);
  });
}

/**
 * The audit MAC: keyed BLAKE2b-256 over prev_hash || canonical event JSON.
 * `matches` tells whether it equals a stored hash without making a buffer of it (audit verify).
 */
export type AuditMacFn = ((prev: Uint8Array, canonical: string) => Buffer) & {
  matches?: (prev: Uint8Array, canonical: string, expected: Uint8Array) => boolean;
};

/** Keyed BLAKE2b-256 over prev_hash || canonical event JSON. */
export function auditMac(mk: MasterKey, macKey: WrappedKey): AuditMacFn {
  const key = unwrap(mk, macKey);
  return mk._use((_k, s) => {
    const hash = keyedBlake2b(s, key);
    mk._track(() => {
      hash.wipe();
      s.memzero(key);
    });
    return Object.assign((prev: Uint8Array, canonical: string) => hash(prev, canonical), { matches: hash.matches });
  });
}

function chainMac(s: Sodium, key: Uint8Array): (prev: Uint8Array, canonical: string) => Buffer {
  const hash = keyedBlake2b(s, key);
  return (prev, canonical) => hash(prev, canonical);
}

/** Constant-time equality for secret-derived byte strings (the length is not secret). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export { getSodium };

/**
 * Backups carry the token pepper and the audit MAC key in the clear INSIDE
 * the OpenPGP-encrypted message (next to the secret values themselves), so
 * tokens keep working and the audit chain still verifies after a restore
 * under a new master key. Data keys are never exported: values are dumped
 * as plaintext and re-encrypted under fresh data keys on restore.
 */
export function exportKeyForBackup(mk: MasterKey, row: WrappedKey): string {
  const key = unwrap(mk, row);
  try {
    return Buffer.from(key).toString('base64');
  } finally {
    key.fill(0);
  }
}

export function importKeyFromBackup(mk: MasterKey, purpose: KeyPurpose, scope: string, version: number, b64: string): WrappedKey {
  const key = Buffer.from(b64, 'base64');
  if (key.length !== KEY_BYTES) throw new IntegrityError(`backup holds a malformed ${purpose} key`);
  try {
    return mk._use((k, s) => ({
      purpose,
      scope,
      version,
      wrapped: sealPacked(s, k, key, keyAd(purpose, scope, version)),
      mkFingerprint: mk.fingerprint,
    }));
  } finally {
    key.fill(0);
  }
}

/** Audit MAC function from a backup's raw MAC key (backup verification without a database). */
export async function auditMacFromBackup(b64: string): Promise<(prev: Uint8Array, canonical: string) => Buffer> {
  return chainMac(await getSodium(), new Uint8Array(Buffer.from(b64, 'base64')));
}
