/**
 * Reading and checking the OpenPGP keys of a backup (recipients, signer, identities, verify keys),
 * and the openpgp.js settings that keep every message readable by GnuPG 2.2 (rules in vault/backup/pgp.ts).
 */
import * as openpgp from 'openpgp';
import { BackupKeyError } from './errors.js';

const { enums } = openpgp;

/** openpgp.js settings that keep every produced message readable by GnuPG 2.2. */
export const GPG22_CONFIG: openpgp.PartialConfig = {
  aeadProtect: false, // SEIPDv1 + MDC, never SEIPDv2 / OCB
  v6Keys: false,
  s2kType: enums.s2k.iterated, // iterated+salted S2K, not argon2
  preferredSymmetricAlgorithm: enums.symmetric.aes256,
  preferredHashAlgorithm: enums.hash.sha512,
  preferredCompressionAlgorithm: enums.compression.uncompressed,
};

/**
 * Decryption config. `allowUnauthenticatedStream: true` is REQUIRED for
 * bounded memory: with SEIPDv1 and the default `false`, openpgp.js buffers the
 * whole plaintext until the MDC at the end has been checked. With `true` the
 * plaintext is released as it is decrypted and an integrity failure is raised
 * as a stream error at the end — so callers must treat the plaintext as
 * untrusted until the stream has ended without error (see
 * {@link decryptBackupStream}).
 */
export const DECRYPT_CONFIG: openpgp.PartialConfig = {
  ...GPG22_CONFIG,
  allowUnauthenticatedStream: true,
};

/** Public-key algorithms GnuPG 2.2 can encrypt to. */
const GPG22_ENCRYPTION_ALGOS = new Set<string>(['rsaEncryptSign', 'rsaEncrypt', 'ecdh']);
/** Public-key algorithms GnuPG 2.2 can verify. */
const GPG22_SIGNING_ALGOS = new Set<string>(['rsaEncryptSign', 'rsaSign', 'ecdsa', 'eddsaLegacy']);
/** ECDH curves GnuPG 2.2 supports (openpgp.js names). */
const GPG22_ECDH_CURVES = new Set<string>([
  'curve25519Legacy',
  'nistP256',
  'nistP384',
  'nistP521',
  'brainpoolP256r1',
  'brainpoolP384r1',
  'brainpoolP512r1',
]);

/* ------------------------------------------------------------------------- */
/* Keys                                                                      */
/* ------------------------------------------------------------------------- */

/** A validated recipient key, ready for {@link encryptBackupStream}. */
export interface RecipientKey {
  /** Primary key fingerprint, upper-case hex. */
  fingerprint: string;
  /** Fingerprint of the (sub)key messages will be encrypted to, upper-case hex. */
  encryptionKeyFingerprint: string;
  /** User IDs on the key, e.g. `Ops <ops@example.com>`. */
  userIds: string[];
  /** openpgp.js algorithm name of the encryption (sub)key, e.g. `ecdh`. */
  algorithm: string;
  /** The parsed openpgp.js public key. */
  key: openpgp.PublicKey;
}

export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function hex(fpr: string): string {
  return fpr.toUpperCase();
}

/** Features flag 0x08: "Version 2 SEIPD" (RFC 9580 §5.2.3.32); missing from openpgp's typings. */
const FEATURE_SEIPDV2 = 0x08;

/** True when any self-signature of `key` advertises SEIPDv2 in its features. */
function advertisesSeipdv2(key: openpgp.PublicKey): boolean {
  const ownId = key.getKeyID();
  const sigs: openpgp.SignaturePacket[] = [];
  for (const user of key.users) sigs.push(...user.selfCertifications);
  const direct = (key as unknown as { directSignatures?: openpgp.SignaturePacket[] }).directSignatures;
  if (direct) sigs.push(...direct);
  return sigs.some(
    (sig) =>
      (!sig.issuerKeyID || sig.issuerKeyID.equals(ownId, true)) &&
      Array.isArray(sig.features) &&
      ((sig.features[0] ?? 0) & FEATURE_SEIPDV2) !== 0,
  );
}

/**
 * Parse and validate an armored OpenPGP public key for use as a backup
 * recipient.
 *
 * Checks: exactly one key; a public (not private) key; a v4 key with v4
 * subkeys; no self-signature advertising SEIPDv2; not revoked; not expired; has
 * a currently valid encryption (sub)key whose algorithm/curve GnuPG 2.2 knows.
 *
 * @param armored - Contents of an `.asc` file (`gpg --armor --export FPR`).
 * @throws {BackupKeyError} with a one-line explanation when the key is unusable.
 */
export async function readRecipientKey(armored: string): Promise<RecipientKey> {
  if (typeof armored !== 'string' || !armored.includes('-----BEGIN PGP')) {
    throw new BackupKeyError('recipient key is not an ASCII-armored OpenPGP key (export it with `gpg --armor --export FPR`)');
  }
  let keys: openpgp.Key[];
  try {
    keys = await openpgp.readKeys({ armoredKeys: armored, config: GPG22_CONFIG });
  } catch (e) {
    throw new BackupKeyError('recipient key is not a valid OpenPGP key', { cause: e });
  }
  const blocks = armored.match(/-----BEGIN PGP [A-Z ]+-----/g) ?? [];
  if (keys.length !== 1 || blocks.length !== 1) {
    throw new BackupKeyError(`recipient key file contains ${Math.max(keys.length, blocks.length)} keys; give exactly one key per file`);
  }
  const key = keys[0];
  const fpr = hex(key.getFingerprint());
  if (key.isPrivate()) {
    throw new BackupKeyError(`recipient key ${fpr} is a private key; give the public key (gpg --armor --export)`);
  }
  if (key.keyPacket.version !== 4 || key.subkeys.some((s) => s.keyPacket.version !== 4)) {
    throw new BackupKeyError(
      `recipient key ${fpr} is a v${key.keyPacket.version} OpenPGP key; GnuPG 2.2 needs v4 keys (RFC 4880), e.g. generated by gpg`,
    );
  }
  if (advertisesSeipdv2(key)) {
    throw new BackupKeyError(`recipient key ${fpr} advertises SEIPDv2 (AEAD) support, which would produce a message GnuPG 2.2 cannot read`);
  }
  const now = new Date();
  const revoked = await key.isRevoked(undefined, undefined, now, openpgp.config).catch(() => false);
  if (revoked) throw new BackupKeyError(`recipient key ${fpr} is revoked`);
  let expires: Date | number | null;
  try {
    expires = await key.getExpirationTime(undefined, { ...openpgp.config, ...GPG22_CONFIG });
  } catch (e) {
    throw new BackupKeyError(`recipient key ${fpr} has no valid self-signature`, { cause: e });
  }
  if (expires instanceof Date && expires.getTime() <= now.getTime()) {
    throw new BackupKeyError(`recipient key ${fpr} expired on ${expires.toISOString()}`);
  }
  let enc: openpgp.PublicKey | openpgp.Subkey;
  try {
    enc = await key.getEncryptionKey(undefined, now, undefined, { ...openpgp.config, ...GPG22_CONFIG });
  } catch (e) {
    throw new BackupKeyError(
      `recipient key ${fpr} has no valid encryption subkey (sign-only, expired or revoked); add one with \`gpg --quick-add-key ${fpr} cv25519 encr\``,
      { cause: e },
    );
  }
  const info = enc.getAlgorithmInfo();
  if (!GPG22_ENCRYPTION_ALGOS.has(info.algorithm) || (info.algorithm === 'ecdh' && !GPG22_ECDH_CURVES.has(String(info.curve)))) {
    const what = info.curve ? `${info.algorithm}/${info.curve}` : info.algorithm;
    throw new BackupKeyError(`recipient key ${fpr} encrypts with ${what}, which GnuPG 2.2 does not support`);
  }
  return {
    fingerprint: fpr,
    encryptionKeyFingerprint: hex(enc.getFingerprint()),
    userIds: key.getUserIDs(),
    algorithm: info.algorithm,
    key,
  };
}

export async function readUnlockedPrivateKey(
  armored: string,
  passphrase: string | undefined,
  what: 'signing key' | 'identity key',
): Promise<openpgp.PrivateKey> {
  if (typeof armored !== 'string' || !armored.includes('-----BEGIN PGP PRIVATE KEY BLOCK-----')) {
    throw new BackupKeyError(`${what} is not an ASCII-armored OpenPGP private key (gpg --armor --export-secret-keys FPR)`);
  }
  let key: openpgp.PrivateKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey: armored, config: GPG22_CONFIG });
  } catch (e) {
    throw new BackupKeyError(`${what} is not a valid OpenPGP private key`, { cause: e });
  }
  if (!key.isDecrypted()) {
    if (passphrase === undefined) {
      throw new BackupKeyError(`${what} ${hex(key.getFingerprint())} is passphrase-protected; supply its passphrase`);
    }
    try {
      key = await openpgp.decryptKey({ privateKey: key, passphrase, config: GPG22_CONFIG });
    } catch (e) {
      throw new BackupKeyError(`could not unlock ${what} ${hex(key.getFingerprint())}: wrong passphrase`, { cause: e });
    }
  }
  return key;
}

export async function readSigningKey(spec: { armored: string; passphrase?: string }): Promise<openpgp.PrivateKey> {
  const key = await readUnlockedPrivateKey(spec.armored, spec.passphrase, 'signing key');
  const fpr = hex(key.getFingerprint());
  if (key.keyPacket.version !== 4) {
    throw new BackupKeyError(`signing key ${fpr} is a v${key.keyPacket.version} key; GnuPG 2.2 can only verify v4 signatures`);
  }
  let sub: openpgp.PrivateKey | openpgp.Subkey;
  try {
    sub = await key.getSigningKey(undefined, new Date(), undefined, { ...openpgp.config, ...GPG22_CONFIG });
  } catch (e) {
    throw new BackupKeyError(`signing key ${fpr} has no valid signing (sub)key (expired, revoked or encrypt-only)`, { cause: e });
  }
  const algo = sub.getAlgorithmInfo().algorithm;
  if (!GPG22_SIGNING_ALGOS.has(algo)) {
    throw new BackupKeyError(`signing key ${fpr} signs with ${algo}, which GnuPG 2.2 cannot verify`);
  }
  return key;
}

export async function readVerifyKey(armored: string): Promise<openpgp.PublicKey> {
  if (typeof armored !== 'string' || !armored.includes('-----BEGIN PGP')) {
    throw new BackupKeyError('signer key is not an ASCII-armored OpenPGP public key');
  }
  try {
    const key = await openpgp.readKey({ armoredKey: armored });
    return key.isPrivate() ? key.toPublic() : key;
  } catch (e) {
    throw new BackupKeyError('signer key is not a valid OpenPGP key', { cause: e });
  }
}
