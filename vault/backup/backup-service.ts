import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, unlinkSync, writeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { Container } from '../container.js';
import type { AuditContext } from '../services/audit/audit-service.js';
import { dumpStream, type BackupHeader } from './dump.js';
import { encryptBackupStream, type EncryptOptions } from './pgp.js';

export interface BackupRun { stream: Readable; header: BackupHeader; done: Promise<{ bytes: number }> }

/**
 * Creates an encrypted backup as a stream. Keys are validated before any
 * row is read. `done` settles when the stream has been fully consumed (or
 * failed); the audit event (backup.create, with size and counts) is written
 * then, because only then is the size known.
 */
export async function createBackup(c: Container, enc: EncryptOptions, ctx: AuditContext): Promise<BackupRun> {
  // Validate the recipients first: a bad key must fail before any row is read.
  const { readRecipientKey } = await import('./pgp.js');
  for (const r of enc.recipients ?? []) await readRecipientKey(r);
  const { stream: plain, header } = await dumpStream(c);
  const cipher = await encryptBackupStream(plain, enc);
  let bytes = 0;
  const out = new PassThrough();
  const done = new Promise<{ bytes: number }>((resolve, reject) => {
    cipher.on('data', (d: Buffer) => { bytes += d.length; });
    cipher.on('error', reject);
    out.on('error', reject);
    out.on('close', () => { if (!out.writableFinished) reject(new Error('backup stream closed early')); });
    cipher.on('end', () => resolve({ bytes }));
  });
  cipher.pipe(out);
  out.on('close', () => { if (!cipher.readableEnded) cipher.destroy(); });
  const recorded = done.then(
    (r) => c.audit.record(ctx, { action: 'backup.create', outcome: 'ok', detail: { bytes: r.bytes, counts: header.counts, recipients: (enc.recipients ?? []).length, passphrase: enc.passphrase !== undefined, signed: !!enc.signingKey } }).then(() => r),
    async (e) => {
      await c.audit.record(ctx, { action: 'backup.create', outcome: 'error', detail: { error: String((e as Error).message).slice(0, 200) } }).catch(() => undefined);
      throw e;
    },
  );
  recorded.catch(() => undefined);
  return { stream: out, header, done: recorded };
}

export const BACKUP_FILE_RE = /^hush-backup-\d{8}T\d{6}(\d{3})?Z\.pgp$/;

export function backupFileName(d: Date): string {
  return `hush-backup-${d.toISOString().replace(/[-:]/g, '').replace(/\.(\d{3})Z$/, '$1Z')}.pgp`;
}

/** Writes a stream to `dir/name` atomically: temp file (0600), fsync, rename. */
export async function writeAtomically(dir: string, name: string, stream: Readable): Promise<string> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const final = join(dir, name);
  const tmp = join(dir, `.${name}.tmp-${process.pid}`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    for await (const chunk of stream) writeSync(fd, chunk as Buffer);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try { unlinkSync(tmp); } catch { /* gone */ }
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, final);
  const dfd = openSync(dir, 'r');
  try { fsyncSync(dfd); } finally { closeSync(dfd); }
  return final;
}

/** Keeps the newest `keep` backups in `dir`; returns the deleted names. */
export function pruneBackups(dir: string, keep: number): string[] {
  const files = readdirSync(dir).filter((f) => BACKUP_FILE_RE.test(f)).sort();
  const gone = files.slice(0, Math.max(0, files.length - keep));
  for (const f of gone) unlinkSync(join(dir, f));
  return gone;
}

export function readKeyFiles(paths: string[]): string[] {
  return paths.map((p) => readFileSync(p, 'utf8'));
}
