/**
 * OpenPGP layer for Hush backups.
 *
 * A backup body (an NDJSON byte stream produced elsewhere) is encrypted into an
 * OpenPGP message that GnuPG 2.2 can open with `gpg --decrypt`, and decrypted
 * again by Hush on restore. Everything here streams: memory use does not grow
 * with the size of the backup.
 *
 * GnuPG 2.2 compatibility rules (see docs/backups.md, "GnuPG compatibility"):
 * - `aeadProtect: false`: messages use SEIPDv1 (CFB + MDC), never SEIPDv2/AEAD.
 * - Recipient keys must be v4 keys. openpgp.js picks the message format from
 *   the recipient keys' "features" (a key that advertises SEIPDv2 switches the
 *   whole message to SEIPDv2), so such keys are refused, as are v6 keys and
 *   RFC 9580 X25519/X448 encryption subkeys that GnuPG 2.2 cannot use.
 * - Passphrases use iterated+salted S2K (never Argon2).
 * - No compression packets are emitted (uncompressed literal data).
 *
 * Errors thrown or emitted by this module are {@link BackupError}s with a
 * stable `code` and an HTTP `statusCode`. Their messages are one line and never
 * contain key material, passphrases or plaintext.
 *
 * @module
 */
import { Readable } from 'node:stream';
import { TextDecoderStream, type ReadableStreamReadResult } from 'node:stream/web';
import * as openpgp from 'openpgp';
import { BackupCorruptError, BackupDecryptError, BackupError, BackupKeyError, BackupSignatureError } from './errors.js';
import {
  DECRYPT_CONFIG,
  errText,
  GPG22_CONFIG,
  hex,
  readRecipientKey,
  readSigningKey,
  readUnlockedPrivateKey,
  readVerifyKey,
  type RecipientKey,
} from './pgp-keys.js';
import { nodeToWeb, StallWatch, toU8 } from './stream-bridge.js';

export { readRecipientKey, type RecipientKey } from './pgp-keys.js';

/** Default for {@link DecryptOptions.stallTimeoutMs}. */
const DEFAULT_STALL_TIMEOUT_MS = 30_000;

/* ------------------------------------------------------------------------- */
/* Encryption                                                                */
/* ------------------------------------------------------------------------- */

/** Options for {@link encryptBackupStream}. At least one of `recipients` / `passphrase` is required. */
export interface EncryptOptions {
  /** Armored OpenPGP public keys (file contents), validated with {@link readRecipientKey}. */
  recipients?: string[];
  /** Symmetric passphrase (iterated+salted S2K, AES-256); can be combined with recipients. */
  passphrase?: string;
  /** Optional signing key (armored private key, e.g. `gpg --armor --export-secret-keys`). */
  signingKey?: { armored: string; passphrase?: string };
  /** ASCII-armored output instead of binary `.pgp`. Default false. */
  armor?: boolean;
}

/**
 * Validates encryption options without touching any data: every recipient
 * key, the passphrase, the signing key (unlocked with its passphrase), and
 * that there is at least one recipient or a passphrase. Callers that must
 * fail fast (before opening a database snapshot) call it first.
 *
 * @throws {BackupKeyError} when a key or option is unusable.
 */
export async function checkEncryptOptions(
  opts: EncryptOptions,
): Promise<{ recipients: RecipientKey[]; signingKey: openpgp.PrivateKey | undefined }> {
  const recipients = await Promise.all((opts.recipients ?? []).map((r) => readRecipientKey(r)));
  if (opts.passphrase !== undefined && (typeof opts.passphrase !== 'string' || opts.passphrase.length === 0)) {
    throw new BackupKeyError('backup passphrase must be a non-empty string');
  }
  if (recipients.length === 0 && opts.passphrase === undefined) {
    throw new BackupKeyError('a backup needs at least one recipient key or a passphrase');
  }
  const seen = new Set<string>();
  for (const r of recipients) {
    if (seen.has(r.fingerprint)) throw new BackupKeyError(`recipient key ${r.fingerprint} is given twice`);
    seen.add(r.fingerprint);
  }
  const signingKey = opts.signingKey ? await readSigningKey(opts.signingKey) : undefined;
  return { recipients, signingKey };
}

/**
 * Encrypt a backup byte stream into an OpenPGP message readable by GnuPG 2.2.
 *
 * Keys and options are validated before any byte of `plain` is read, so a bad
 * key rejects the returned promise with {@link BackupKeyError}. The result is a
 * streaming Readable (binary `.pgp`, or armored text when `armor` is set);
 * errors of `plain` are forwarded to it unchanged.
 */
export async function encryptBackupStream(plain: Readable, opts: EncryptOptions): Promise<Readable> {
  const { recipients, signingKey } = await checkEncryptOptions(opts);

  const source = nodeToWeb(plain);
  const message = await openpgp.createMessage({ binary: source.web, format: 'binary' });
  const encrypted = (await openpgp.encrypt({
    message,
    encryptionKeys: recipients.map((r) => r.key),
    passwords: opts.passphrase !== undefined ? [opts.passphrase] : undefined,
    signingKeys: signingKey ? [signingKey] : undefined,
    format: (opts.armor ? 'armored' : 'binary') as 'binary',
    config: GPG22_CONFIG,
  })) as unknown as ReadableStream<Uint8Array | string>;

  async function* pump(): AsyncGenerator<Buffer> {
    const reader = encrypted.getReader();
    let finished = false;
    try {
      for (;;) {
        let r: ReadableStreamReadResult<Uint8Array | string>;
        try {
          r = await reader.read();
        } catch (e) {
          const io = source.error();
          throw io ?? e;
        }
        if (r.done) break;
        const v = r.value;
        yield typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      }
      finished = true;
    } finally {
      if (!finished) {
        reader.cancel().catch(() => undefined);
        plain.destroy();
      }
    }
  }
  return Readable.from(pump(), { objectMode: false });
}

/**
 * One short text (an unseal share) encrypted to one recipient, armored, as
 * `gpg --decrypt` reads it: `operator init --pgp-keys` and `operator rekey
 * --pgp-keys` give each share holder a share only their key opens.
 */
export async function encryptTextTo(text: string, recipient: RecipientKey): Promise<string> {
  // openpgp.encrypt's return type names stream types of an optional peer that is not installed: `any` here.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment
  const armored: string = await openpgp.encrypt({
    message: await openpgp.createMessage({ text }),
    encryptionKeys: [recipient.key],
    format: 'armored',
    config: GPG22_CONFIG,
  });
  return armored;
}

/* ------------------------------------------------------------------------- */
/* Decryption                                                                */
/* ------------------------------------------------------------------------- */

/** Options for {@link decryptBackupStream}. At least one of `identities` / `passphrase` is required. */
export interface DecryptOptions {
  /** Armored private keys that may open the backup (passphrase only if the key is protected). */
  identities?: { armored: string; passphrase?: string }[];
  /** Symmetric passphrase the backup was made with. */
  passphrase?: string;
  /**
   * Armored public keys of accepted signers. When given, the backup MUST carry
   * a signature that verifies with one of them, else {@link BackupSignatureError}.
   */
  verifyKeys?: string[];
  /**
   * Fail with `backup_corrupt` when decryption makes no progress for this long
   * although input is available (guards against an openpgp.js deadlock on
   * some malformed messages). Default 30000 ms. Slow input never trips it.
   */
  stallTimeoutMs?: number;
}

/** Signature information, known only once the plaintext has been read to its end. */
export interface SignatureStatus {
  /** Whether the message carries at least one signature. */
  signed: boolean;
  /** Issuer key IDs (16 upper-case hex digits) of the signatures in the message. */
  keyIds: string[];
  /**
   * Primary-key fingerprint of the `verifyKeys` entry whose signature verified,
   * or null when no `verifyKeys` were given (signatures are then not checked).
   */
  verifiedBy: string | null;
}

/** Result of {@link decryptBackupStream}. */
export interface DecryptedBackup {
  /**
   * The plaintext, streamed. UNAUTHENTICATED until it has ended: integrity
   * (MDC) failures, truncation and signature failures are emitted as an
   * `'error'` ({@link BackupCorruptError}, {@link BackupSignatureError}) at or
   * near the end. Consumers must stage what they read (e.g. in a transaction
   * or temp file) and commit only after `'end'` without error.
   */
  plain: Readable;
  /**
   * Settles after `plain` has ended: resolves with the signature status, or
   * rejects with the same error `plain` emitted (or `backup_incomplete` when
   * `plain` was destroyed early). Never causes an unhandled rejection; await it
   * only while (or after) consuming `plain`, not before.
   */
  signed: Promise<SignatureStatus>;
}

/**
 * Map an error raised by `openpgp.decrypt()` itself, i.e. before any plaintext
 * was released. `viaPassphrase` tells whether a passphrase was offered.
 */
function classifyDecryptError(e: unknown, viaPassphrase: boolean): BackupError {
  if (e instanceof BackupError) return e;
  const msg = errText(e);
  // Keys were given, but the backup holds no session key for any key at all: it is passphrase-only.
  if (/No public key encrypted session key packet found/i.test(msg)) {
    return new BackupDecryptError(
      viaPassphrase
        ? 'cannot decrypt backup: wrong passphrase (it is encrypted with a passphrase only; no private key ' + 'can open it)'
        : 'cannot decrypt backup: it is encrypted with a passphrase only, not to a key; give its passphrase ' +
            '(--passphrase-file) instead of --identity',
      { cause: e },
    );
  }
  const wrongKey =
    /Session key decryption failed|No decryption key packets found|No symmetrically encrypted session key/i.test(msg) ||
    /Unexpected session key|Unknown symmetric|Invalid session key/i.test(msg);
  if (wrongKey) {
    return new BackupDecryptError(
      viaPassphrase
        ? 'cannot decrypt backup: wrong passphrase or no matching private key'
        : 'cannot decrypt backup: none of the given private keys can open it',
      { cause: e },
    );
  }
  if (viaPassphrase) {
    // A passphrase-derived session key is not authenticated (gpg --symmetric
    // uses the S2K output directly; openpgp.js's encrypted session key is
    // plain CFB), so a wrong passphrase decrypts to garbage that fails to
    // parse right away. This cannot be told apart from damage to the first
    // bytes of the encrypted data without GnuPG's "quick check" (which
    // openpgp.js dropped as a decryption oracle).
    return new BackupDecryptError('cannot decrypt backup: wrong passphrase (or the file is damaged at its start)', {
      cause: e,
    });
  }
  // Public-key session keys are checked (PKCS#1 padding / AES key wrap), so
  // with the right key a failure here means the data itself is damaged.
  return new BackupCorruptError('backup is damaged: its encrypted data cannot be read', { cause: e });
}

function streamError(e: unknown): BackupError {
  if (e instanceof BackupError) return e;
  return new BackupCorruptError('backup is truncated or damaged (integrity check failed)', { cause: e });
}

/**
 * Decrypt a backup produced by {@link encryptBackupStream} or by GnuPG
 * (`gpg --encrypt` / `gpg --symmetric`, binary or armored).
 *
 * Rejects with {@link BackupKeyError} for unusable keys, {@link BackupDecryptError}
 * for a wrong key/passphrase, {@link BackupCorruptError} when the header is
 * unreadable, {@link BackupSignatureError} when `verifyKeys` are given but the
 * message is unsigned. Later failures arrive as an `'error'` on `plain`.
 *
 * Memory is bounded: plaintext is released while it is decrypted
 * (`allowUnauthenticatedStream`), which is why it must not be trusted before
 * the stream ends cleanly (see {@link DecryptedBackup.plain}). Exception:
 * compressed messages (what `gpg --encrypt/--symmetric` make by default) are
 * decrypted correctly but openpgp.js 6.3 then buffers most of the body; Hush's
 * own backups are uncompressed. I/O errors of `cipher` are passed through
 * unchanged.
 */
export async function decryptBackupStream(cipher: Readable, opts: DecryptOptions): Promise<DecryptedBackup> {
  const identities = opts.identities ?? [];
  if (opts.passphrase !== undefined && (typeof opts.passphrase !== 'string' || opts.passphrase.length === 0)) {
    throw new BackupKeyError('backup passphrase must be a non-empty string');
  }
  if (identities.length === 0 && opts.passphrase === undefined) {
    throw new BackupKeyError('decrypting a backup needs a private key or a passphrase');
  }
  const decryptionKeys = await Promise.all(identities.map((id) => readUnlockedPrivateKey(id.armored, id.passphrase, 'identity key')));
  const verificationKeys = opts.verifyKeys ? await Promise.all(opts.verifyKeys.map((k) => readVerifyKey(k))) : undefined;
  if (verificationKeys && verificationKeys.length === 0) {
    throw new BackupKeyError('verifyKeys is empty; give at least one signer public key or omit it');
  }

  // Peek at the first chunk: binary packets always have bit 7 set; otherwise
  // treat the input as ASCII armor.
  const it = cipher[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) {
    throw new BackupCorruptError('backup is empty');
  }
  const firstBytes = toU8(first.value);
  const stallMs = opts.stallTimeoutMs;
  const watch = new StallWatch(typeof stallMs === 'number' && stallMs > 0 ? Math.min(stallMs, 2 ** 31 - 1) : DEFAULT_STALL_TIMEOUT_MS);
  const source = nodeToWeb(cipher, firstBytes, it, watch);
  const armored = firstBytes.length > 0 && (firstBytes[0] & 0x80) === 0;

  const abortInput = (): void => {
    source.web.cancel().catch(() => undefined);
    cipher.destroy();
  };

  let message: openpgp.Message<openpgp.MaybeStream<Uint8Array>>;
  try {
    message = await watch.guard<openpgp.Message<openpgp.MaybeStream<Uint8Array>>>(
      armored
        ? openpgp.readMessage({
            // openpgp's stream types come from its optional peer @openpgp/web-stream-tools (not installed): they resolve to `any` here.
            // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- see above
            armoredMessage: source.web.pipeThrough(new TextDecoderStream()) as unknown as openpgp.WebStream<string>,
            config: DECRYPT_CONFIG,
          })
        : openpgp.readMessage({
            // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- as above
            binaryMessage: source.web as unknown as openpgp.WebStream<Uint8Array>,
            config: DECRYPT_CONFIG,
          }),
    );
  } catch (e) {
    abortInput();
    if (e instanceof BackupError) throw e;
    throw source.error() ?? new BackupCorruptError('backup is not a readable OpenPGP message', { cause: e });
  }

  let result: openpgp.DecryptMessageResult;
  try {
    result = await watch.guard(
      openpgp.decrypt({
        message: message,
        decryptionKeys,
        passwords: opts.passphrase !== undefined ? [opts.passphrase] : undefined,
        verificationKeys,
        format: 'binary',
        config: DECRYPT_CONFIG,
      }),
    );
  } catch (e) {
    abortInput();
    throw source.error() ?? classifyDecryptError(e, opts.passphrase !== undefined);
  }

  // Every openpgp verification promise must be observed, or a failing one
  // becomes an unhandled rejection (which crashes Node).
  const signatures = result.signatures;
  for (const s of signatures) {
    s.verified.catch(() => undefined);
    s.signature.catch(() => undefined);
  }
  const data = result.data as unknown as ReadableStream<Uint8Array>;

  if (verificationKeys && signatures.length === 0) {
    data.cancel().catch(() => undefined);
    abortInput();
    throw new BackupSignatureError('backup is not signed, but a signer key was required');
  }

  const keyIds = Array.from(signatures, (s) => s.keyID.toHex().toUpperCase());
  const checkSignatures = async (): Promise<SignatureStatus> => {
    if (!verificationKeys) return { signed: signatures.length > 0, keyIds, verifiedBy: null };
    const settled = await Promise.allSettled(signatures.map((s) => s.verified));
    const ok = settled.findIndex((s) => s.status === 'fulfilled');
    if (ok < 0) {
      throw new BackupSignatureError('backup signature does not verify with the given signer key(s)');
    }
    const signer = verificationKeys.find((k) => k.getKeys(signatures[ok].keyID).length > 0);
    return { signed: true, keyIds, verifiedBy: signer ? hex(signer.getFingerprint()) : null };
  };

  let settle!: { resolve: (s: SignatureStatus) => void; reject: (e: unknown) => void };
  const signed = new Promise<SignatureStatus>((resolve, reject) => {
    settle = { resolve, reject };
  });
  signed.catch(() => undefined);

  const incomplete = (): BackupError =>
    new BackupError('backup_incomplete', 'backup stream was closed before its end; nothing was verified');

  async function* pump(): AsyncGenerator<Buffer> {
    const reader = data.getReader();
    let settled = false;
    try {
      for (;;) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await watch.guard(reader.read());
        } catch (e) {
          throw source.error() ?? streamError(e);
        }
        if (r.done) break;
        const v = r.value;
        yield Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      }
      const status = await watch.guard(checkSignatures());
      settled = true;
      settle.resolve(status);
    } catch (e) {
      // Read-side failures are already mapped (BackupError or the input's own
      // I/O error); anything else was thrown in at `yield` by a consumer that
      // destroyed `plain` early.
      settled = true;
      settle.reject(e instanceof BackupError || e === source.error() ? e : incomplete());
      abortInput();
      throw e;
    } finally {
      if (!settled) {
        settle.reject(incomplete());
        reader.cancel().catch(() => undefined);
        abortInput();
      }
    }
  }
  return { plain: Readable.from(pump(), { objectMode: false }), signed };
}
