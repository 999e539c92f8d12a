import { readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { Container } from '../container.js';
import { HushError } from '../errors.js';
import { readFirstLine } from '../../common/files.js';
export { writeAtomically } from '../../common/files.js';
import type { AuditContext } from '../services/audit/audit-service.js';
import { dumpStream, type BackupHeader } from './dump.js';
import { checkEncryptOptions, encryptBackupStream, type EncryptOptions } from './pgp.js';

export interface BackupRun {
  stream: Readable;
  header: BackupHeader;
  done: Promise<{ bytes: number }>;
}

/**
 * Creates an encrypted backup as a stream. Keys and options (recipients,
 * passphrase, signing key) are validated, and a backup.start event is
 * committed (fail closed), before a snapshot is opened. `done` settles when
 * the stream has been fully consumed (or failed, or was destroyed); the
 * backup.create event (with size and counts) is written then, because only
 * then is the size known.
 */
export async function createBackup(c: Container, enc: EncryptOptions, ctx: AuditContext): Promise<BackupRun> {
  await checkEncryptOptions(enc); // every key and option, before a snapshot is opened
  const about = { recipients: (enc.recipients ?? []).length, passphrase: enc.passphrase !== undefined, signed: !!enc.signingKey };
  // A backup reads every value, so it fails closed like every other read: it
  // is on record before its first byte is produced. If this event cannot be
  // written, the request fails with 503 audit_unavailable and nothing is sent.
  await c.audit.record(ctx, { action: 'backup.start', outcome: 'ok', detail: about });
  const { stream: plain, header } = await dumpStream(c);
  let cipher: Readable;
  try {
    cipher = await encryptBackupStream(plain, enc);
  } catch (e) {
    plain.destroy();
    throw e;
  }
  let bytes = 0;
  const out = new PassThrough();
  const done = new Promise<{ bytes: number }>((resolve, reject) => {
    cipher.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    cipher.on('error', reject);
    out.on('error', reject);
    out.on('close', () => {
      if (!out.writableFinished) reject(new Error('backup stream closed early'));
    });
    cipher.on('end', () => resolve({ bytes }));
  });
  cipher.on('error', (e) => out.destroy(e));
  cipher.pipe(out);
  out.on('close', () => {
    if (!cipher.readableEnded) cipher.destroy();
  });
  const recorded = done.then(
    (r) =>
      c.audit
        .record(ctx, { action: 'backup.create', outcome: 'ok', detail: { bytes: r.bytes, counts: header.counts, ...about } })
        .then(() => r),
    async (e) => {
      await c.audit
        .record(ctx, { action: 'backup.create', outcome: 'error', detail: { error: String((e as Error)?.message).slice(0, 200) } })
        .catch(() => undefined);
      throw e;
    },
  );
  recorded.catch(() => undefined);
  return { stream: out, header, done: recorded };
}

/** Names of backup files: `hush-backup-20261123T030000Z.pgp` (UTC; older builds added milliseconds). */
export const BACKUP_FILE_RE = /^hush-backup-\d{8}T\d{6}(\d{3})?Z\.pgp$/;
const TEMP_FILE_RE = /^\.hush-backup-.*\.tmp-\d+$/;

export function backupFileName(d: Date): string {
  return `hush-backup-${d
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '')}.pgp`;
}

/**
 * Keeps the newest `keep` backups in `dir` (names sort by time); returns the
 * deleted names. Also removes temp files a crashed run left behind (older
 * than a day, so a run still in progress elsewhere is never touched).
 */
export function pruneBackups(dir: string, keep: number): string[] {
  const names = readdirSync(dir);
  const files = names.filter((f) => BACKUP_FILE_RE.test(f)).sort();
  const gone = files.slice(0, Math.max(0, files.length - keep));
  for (const f of gone) unlinkSync(join(dir, f));
  const dayAgo = Date.now() - 86_400_000;
  for (const f of names.filter((n) => TEMP_FILE_RE.test(n))) {
    try {
      if (statSync(join(dir, f)).mtimeMs < dayAgo) unlinkSync(join(dir, f));
    } catch {
      /* raced */
    }
  }
  return gone;
}

/** A passphrase file's first line (as gpg reads it); an empty one is refused. */
export function readPassphraseFile(path: string): string {
  const first = readFirstLine(path);
  if (first === '') throw new HushError('backup_key_invalid', 400, `passphrase file ${path} is empty (its first line is the passphrase)`);
  return first;
}
