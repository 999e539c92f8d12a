// Shapes of the audit and backup API as the SDK returns them (re-exported by types.ts).
import type { CallOptions } from './types.js';

/** One audit event. Values never appear in events. */
export interface AuditEvent {
  seq: number;
  ts: string;
  actor: { id: string; name: string };
  action: string;
  project: string | null;
  env: string | null;
  target: Record<string, unknown>;
  outcome: string;
  ip: string | null;
  requestId: string | null;
  detail: Record<string, unknown>;
  hash: string;
}

/**
 * Filter for `audit.list` and `audit.iterate`.
 *
 * @example
 * ```ts
 * const q: AuditQuery = { project: 'api', env: 'prod', outcome: 'denied', from: new Date(Date.now() - 86_400_000) };
 * ```
 */
export interface AuditQuery {
  /** Earliest event time (Date, epoch ms or ISO-8601 string). */
  from?: Date | number | string;
  /** Latest event time (Date, epoch ms or ISO-8601 string). */
  to?: Date | number | string;
  /** Token id or name of the actor. */
  actor?: string;
  /** Action, e.g. `secret.read`, `token.create`. */
  action?: string;
  project?: string;
  env?: string;
  outcome?: 'ok' | 'denied' | 'error';
  /** Continue after this cursor (a previous page's `nextCursor`). */
  cursor?: string;
  /** Page size, 1..1000 (server default 100). */
  limit?: number;
  /** `asc` (oldest first, default) or `desc`. */
  order?: 'asc' | 'desc';
}

/** One page of audit events; `nextCursor` is null on the last page. */
export interface AuditPage {
  events: AuditEvent[];
  nextCursor: string | null;
}

/** Result of `audit.verify`. */
export interface AuditVerification {
  ok: boolean;
  checked: number;
  firstBadSeq: number | null;
  reason: string | null;
  headSeq: number;
}

/**
 * Options of `backups.create` and `backups.export`. Give recipients, a
 * passphrase, or both.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * const opts: BackupExportOptions = { recipients: [readFileSync('ops.asc', 'utf8')] };
 * ```
 */
export interface BackupExportOptions extends CallOptions {
  /**
   * ASCII-armored OpenPGP public keys (v4, as `gpg --armor --export FPR`
   * prints them) to encrypt to; any one of them can decrypt.
   *
   * @example
   * ```ts
   * await client.backups.export({ recipients: [readFileSync('alice.asc', 'utf8'), readFileSync('bob.asc', 'utf8')] });
   * ```
   */
  recipients?: string[];
  /**
   * Passphrase for symmetric encryption (iterated+salted S2K, so
   * `gpg --decrypt` asks for it).
   *
   * @example
   * ```ts
   * await client.backups.export({ passphrase: readFileSync('/run/secrets/backup_pass', 'utf8').trim() });
   * ```
   */
  passphrase?: string;
  /**
   * Private key to sign the backup with (and its passphrase, when locked).
   *
   * @example
   * ```ts
   * await client.backups.export({ recipients, signingKey: { armored: readFileSync('signer.key.asc', 'utf8'), passphrase } });
   * ```
   */
  signingKey?: { armored: string; passphrase?: string };
  /**
   * ASCII-armor the message (`-----BEGIN PGP MESSAGE-----`) instead of binary.
   *
   * @example
   * ```ts
   * await client.backups.export({ passphrase, armor: true });
   * ```
   */
  armor?: boolean;
}

/** A backup being downloaded (`backups.create`). */
export interface BackupDownload {
  /** The OpenPGP message, streamed as the server produces it. Read it to the end. */
  body: ReadableStream<Uint8Array>;
  /** File name the server suggests, e.g. `hush-backup-20260101T020000Z.pgp`. */
  fileName: string | null;
  /** Rows per table in the backup, from the `x-hush-backup-counts` header. */
  counts: Record<string, number> | null;
  /** `application/octet-stream`, or `application/pgp-encrypted` when armored. */
  contentType: string | null;
}
