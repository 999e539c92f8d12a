/**
 * The errors of the backup OpenPGP layer: stable codes, an HTTP status, one-line messages
 * that never hold key material, passphrases or plaintext.
 * They are HushErrors, so the HTTP error handler answers them like every other failure.
 */
import { HushError } from '../errors.js';

/** Stable error codes used by the backup OpenPGP layer. */
export type BackupErrorCode =
  'backup_key_invalid' | 'backup_decrypt_failed' | 'backup_corrupt' | 'backup_signature_invalid' | 'backup_incomplete';

/** Base class of every error this module produces. */
export class BackupError extends HushError {
  /** Stable machine-readable code, e.g. `backup_corrupt`. */
  declare readonly code: BackupErrorCode;

  constructor(code: BackupErrorCode, message: string, statusCode = 400, options?: { cause?: unknown }) {
    super(code, statusCode, message, options);
    this.name = new.target.name;
  }
}

/**
 * `backup_key_invalid` (400): a supplied key or option cannot be used — not an
 * OpenPGP key, wrong kind (private vs public), v6 / SEIPDv2-advertising key,
 * no usable encryption or signing (sub)key, expired, revoked, locked private
 * key with a wrong or missing passphrase, or neither recipients nor passphrase.
 */
export class BackupKeyError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('backup_key_invalid', message, 400, options);
  }
}

/**
 * `backup_decrypt_failed` (400): the backup could not be opened with the given
 * private keys / passphrase (wrong key or wrong passphrase; also a file whose
 * very first encrypted bytes are damaged is indistinguishable from this).
 */
export class BackupDecryptError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('backup_decrypt_failed', message, 400, options);
  }
}

/**
 * `backup_corrupt` (400): the file is not an OpenPGP message, is truncated, or
 * fails its integrity check (MDC). With streaming decryption this usually
 * surfaces as an `'error'` event at the END of the plaintext stream.
 */
export class BackupCorruptError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('backup_corrupt', message, 400, options);
  }
}

/**
 * `backup_signature_invalid` (400): signer keys were given but the backup is
 * unsigned, or no signature verifies with any of the given keys.
 */
export class BackupSignatureError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('backup_signature_invalid', message, 400, options);
  }
}
