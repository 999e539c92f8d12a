import { ConfigError, InvalidShareError, UnsealFailedError } from '../errors.js';
import { KEY_BYTES, openPacked, sealPacked } from './aead.js';
import { masterKeyFromRaw, type MasterKey } from './keyring.js';
import { getSodium, type Sodium } from './sodium.js';

/**
 * The seal: how a sealed vault's master key (MK) is kept (docs/keys.md).
 *
 * The MK is never stored in the clear. It is stored wrapped (XChaCha20-
 * Poly1305) under an unseal key (UK), and the UK is never stored at all:
 * - `shamir`: the UK is split into n shares, any t of which rebuild it
 *   (shamir-secret-sharing);
 * - `passphrase`: the UK is derived from a passphrase with Argon2id; the
 *   salt and cost parameters are stored beside the wrapped MK.
 * A rekey makes a new UK and rewraps the MK under it, so the shares of the
 * old set (or the old passphrase) no longer open anything, and no data is
 * re-encrypted. A master-key rotation rewraps the new MK under the UK the
 * server holds while unsealed. An external KMS would be one more way to
 * hold the UK (see `UnsealKeyProvider` in services/seal).
 */

export type SealType = 'shamir' | 'passphrase';

export interface SealRecord {
  v: 1;
  type: SealType;
  /** Shares needed (1 for a passphrase) and made. */
  threshold: number;
  shares: number;
  /** 4 random bytes (hex) naming this share set: a share of another vault or of a set a rekey replaced is refused by it. */
  setId: string;
  wrappedMk: string;
  mkFingerprint: string;
  kdf?: { alg: 'argon2id13'; salt: string; opslimit: number; memlimit: number };
  createdAt: string;
}

/** The unseal key, in a closure. Held by a server while unsealed (for master-key rotations), wiped on seal. */
export interface UnsealKey {
  readonly _use: <T>(fn: (uk: Uint8Array, s: Sodium) => T) => T;
  wipe(): void;
}

export const SHARE_PREFIX = 'hush-share-';
const SHARE_VERSION = 1;
const SHARE_BYTES = KEY_BYTES + 1; // shamir-secret-sharing: the y bytes, then the x coordinate
const SET_ID_BYTES = 4;
const CHECK_BYTES = 4;
/** Argon2id cost: 3 passes over 64 MiB (~0.3 s here). Stored per vault, so it can be raised later. */
export const PASSPHRASE_OPSLIMIT = 3;
export const PASSPHRASE_MEMLIMIT = 64 * 1024 * 1024;
export const MIN_PASSPHRASE_CHARS = 12;
export const MAX_PASSPHRASE_BYTES = 1024;

const sealAd = (type: SealType, setId: string) => `hush:v1:seal:${type}:${setId}`;

function unsealKey(bytes: Uint8Array, s: Sodium): UnsealKey {
  const uk = new Uint8Array(bytes);
  let wiped = false;
  return {
    _use: (fn) => {
      if (wiped) throw new UnsealFailedError('the unseal key was wiped');
      return fn(uk, s);
    },
    wipe: () => {
      wiped = true;
      s.memzero(uk);
    },
  };
}

function wrapMk(mk: MasterKey, uk: UnsealKey, type: SealType, setId: string): string {
  return uk._use((k, s) => mk._use((m) => sealPacked(s, k, m, sealAd(type, setId)).toString('base64')));
}

/** The master key a seal record wraps, opened with an unseal key this server holds. */
export async function openMasterKey(record: SealRecord, uk: UnsealKey): Promise<MasterKey> {
  const raw = uk._use((k, s) => openPacked(s, k, Buffer.from(record.wrappedMk, 'base64'), sealAd(record.type, record.setId)));
  if (!raw) {
    throw new UnsealFailedError(
      record.type === 'shamir'
        ? "these shares do not open this vault's master key (a mistyped share that still passed its " +
            'checksum, or shares of a set a rekey replaced); progress was reset'
        : 'wrong passphrase',
    );
  }
  try {
    const mk = await masterKeyFromRaw(raw);
    if (mk.fingerprint !== record.mkFingerprint)
      throw new UnsealFailedError('the seal record names another master key than the one it holds (the database was altered)');
    return mk;
  } finally {
    (await getSodium()).memzero(raw);
  }
}

function checksum(s: Sodium, payload: Uint8Array): Uint8Array {
  return s.crypto_generichash(CHECK_BYTES, payload, s.from_string('hush-share-check'));
}

function encodeShare(s: Sodium, setId: Uint8Array, share: Uint8Array): string {
  const payload = new Uint8Array(1 + SET_ID_BYTES + SHARE_BYTES);
  payload[0] = SHARE_VERSION;
  payload.set(setId, 1);
  payload.set(share, 1 + SET_ID_BYTES);
  const text = SHARE_PREFIX + Buffer.concat([payload, checksum(s, payload)]).toString('base64url');
  s.memzero(payload);
  return text;
}

/** The x coordinate and bytes of one share, checked against the vault's current share set. Never echoes the text. */
export async function parseShare(text: string, record: SealRecord): Promise<{ index: number; bytes: Uint8Array }> {
  const s = await getSodium();
  const t = text.trim();
  if (t.includes('-----BEGIN PGP MESSAGE-----'))
    throw new InvalidShareError("this is a share still encrypted to its holder's OpenPGP key: decrypt it first (gpg --decrypt)");
  if (!t.startsWith(SHARE_PREFIX)) throw new InvalidShareError(`not an unseal share: a share starts with ${SHARE_PREFIX}`);
  const body = t.slice(SHARE_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) throw new InvalidShareError('the share holds characters a share never has (copy it again)');
  const want = 1 + SET_ID_BYTES + SHARE_BYTES + CHECK_BYTES;
  // Exactly this many characters: base64url decoding would quietly drop a stray one at the end.
  const chars = Math.ceil((want * 4) / 3);
  if (body.length !== chars)
    throw new InvalidShareError(`the share is ${body.length < chars ? 'too short' : 'too long'} (copy it again, whole)`);
  const raw = Buffer.from(body, 'base64url');
  if (raw.length !== want) throw new InvalidShareError('the share is malformed (copy it again, whole)');
  const payload = raw.subarray(0, raw.length - CHECK_BYTES);
  const ok = s.memcmp(checksum(s, payload), raw.subarray(raw.length - CHECK_BYTES));
  try {
    if (!ok) throw new InvalidShareError('the share fails its checksum: a character was mistyped or changed');
    if (payload[0] !== SHARE_VERSION) throw new InvalidShareError(`unknown share format version ${payload[0]}`);
    if (Buffer.from(payload.subarray(1, 1 + SET_ID_BYTES)).toString('hex') !== record.setId) {
      throw new InvalidShareError('the share belongs to another vault, or to a share set a rekey replaced');
    }
    const bytes = new Uint8Array(payload.subarray(1 + SET_ID_BYTES));
    return { index: bytes[bytes.length - 1], bytes };
  } finally {
    s.memzero(raw);
  }
}

/** Splits a fresh unseal key into `shares` shares (any `threshold` open it) and wraps `mk` under it. */
export async function sealWithShares(
  mk: MasterKey,
  shares: number,
  threshold: number,
): Promise<{ record: SealRecord; shareTexts: string[]; key: UnsealKey }> {
  if (!Number.isInteger(shares) || !Number.isInteger(threshold) || threshold < 2 || shares < threshold || shares > 255) {
    throw new ConfigError('shares and threshold must be whole numbers with 2 <= threshold <= shares <= 255');
  }
  const s = await getSodium();
  const raw = s.randombytes_buf(KEY_BYTES);
  const key = unsealKey(raw, s);
  const setIdBytes = s.randombytes_buf(SET_ID_BYTES);
  const setId = Buffer.from(setIdBytes).toString('hex');
  try {
    const { split } = await import('shamir-secret-sharing'); // loaded when used: an open vault never needs it
    const parts = await split(raw, shares, threshold);
    const shareTexts = parts.map((p) => encodeShare(s, setIdBytes, p));
    for (const p of parts) s.memzero(p);
    const record: SealRecord = {
      v: 1,
      type: 'shamir',
      threshold,
      shares,
      setId,
      wrappedMk: wrapMk(mk, key, 'shamir', setId),
      mkFingerprint: mk.fingerprint,
      createdAt: new Date().toISOString(),
    };
    return { record, shareTexts, key };
  } finally {
    s.memzero(raw);
  }
}

function checkPassphrase(p: string, forNew: boolean): void {
  if (Buffer.byteLength(p, 'utf8') > MAX_PASSPHRASE_BYTES)
    throw new UnsealFailedError(`the passphrase is longer than ${MAX_PASSPHRASE_BYTES} bytes`);
  if (forNew && [...p].length < MIN_PASSPHRASE_CHARS)
    throw new ConfigError(`the passphrase must have at least ${MIN_PASSPHRASE_CHARS} characters`);
}

function derive(s: Sodium, passphrase: string, kdf: NonNullable<SealRecord['kdf']>): UnsealKey {
  const raw = s.crypto_pwhash(
    KEY_BYTES,
    s.from_string(passphrase),
    Buffer.from(kdf.salt, 'base64'),
    kdf.opslimit,
    kdf.memlimit,
    s.crypto_pwhash_ALG_ARGON2ID13,
  );
  const key = unsealKey(raw, s);
  s.memzero(raw);
  return key;
}

/** Wraps `mk` under a key derived from `passphrase` with Argon2id. */
export async function sealWithPassphrase(mk: MasterKey, passphrase: string): Promise<{ record: SealRecord; key: UnsealKey }> {
  checkPassphrase(passphrase, true);
  const s = await getSodium();
  const kdf = {
    alg: 'argon2id13' as const,
    salt: Buffer.from(s.randombytes_buf(s.crypto_pwhash_SALTBYTES)).toString('base64'),
    opslimit: PASSPHRASE_OPSLIMIT,
    memlimit: PASSPHRASE_MEMLIMIT,
  };
  const key = derive(s, passphrase, kdf);
  const setId = Buffer.from(s.randombytes_buf(SET_ID_BYTES)).toString('hex');
  return {
    record: {
      v: 1,
      type: 'passphrase',
      threshold: 1,
      shares: 1,
      setId,
      wrappedMk: wrapMk(mk, key, 'passphrase', setId),
      mkFingerprint: mk.fingerprint,
      kdf,
      createdAt: new Date().toISOString(),
    },
    key,
  };
}

/** Rebuilds the unseal key from `threshold` distinct shares (parseShare's bytes) and opens the master key. */
export async function openWithShares(record: SealRecord, shares: Uint8Array[]): Promise<{ mk: MasterKey; key: UnsealKey }> {
  const s = await getSodium();
  const { combine } = await import('shamir-secret-sharing');
  const raw = await combine(shares);
  const key = unsealKey(raw, s);
  s.memzero(raw);
  try {
    return { mk: await openMasterKey(record, key), key };
  } catch (e) {
    key.wipe();
    throw e;
  }
}

export async function openWithPassphrase(record: SealRecord, passphrase: string): Promise<{ mk: MasterKey; key: UnsealKey }> {
  checkPassphrase(passphrase, false);
  if (!record.kdf) throw new UnsealFailedError('this vault is not sealed with a passphrase');
  const s = await getSodium();
  const key = derive(s, passphrase, record.kdf);
  try {
    return { mk: await openMasterKey(record, key), key };
  } catch (e) {
    key.wipe();
    throw e;
  }
}

/** The seal record after a master-key rotation: the new MK wrapped under the same unseal key. */
export function rewrapSealedMaster(record: SealRecord, key: UnsealKey, newMk: MasterKey): SealRecord {
  return { ...record, wrappedMk: wrapMk(newMk, key, record.type, record.setId), mkFingerprint: newMk.fingerprint };
}

/** Reads the stored record; anything malformed is an integrity problem named plainly. */
export function parseSealRecord(json: string): SealRecord {
  let r: SealRecord;
  try {
    r = JSON.parse(json) as SealRecord;
  } catch {
    throw new ConfigError("the vault's seal record is not valid JSON (the database was altered)");
  }
  const okType = r && (r.type === 'shamir' || r.type === 'passphrase');
  if (
    !okType ||
    r.v !== 1 ||
    typeof r.wrappedMk !== 'string' ||
    typeof r.setId !== 'string' ||
    !Number.isInteger(r.threshold) ||
    (r.type === 'passphrase' && !r.kdf)
  ) {
    throw new ConfigError("the vault's seal record is malformed (the database was altered, or it was written by a newer " + 'Hush)');
  }
  return r;
}

/** A fresh random master key for a sealed init (never written anywhere in the clear). */
export async function generateMasterKey(): Promise<MasterKey> {
  const s = await getSodium();
  const raw = s.randombytes_buf(KEY_BYTES);
  try {
    return await masterKeyFromRaw(raw);
  } finally {
    s.memzero(raw);
  }
}
