import { createReadStream, existsSync, mkdirSync, readdirSync, rmdirSync, statSync, unlinkSync, type ReadStream } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import { hasSchema, openDb, sqlitePath, storageKind, unmigrate } from '../store/db.js';
import { databaseUrl, DEV_KEY_FILE, ensureDataDir, type OpenedDb } from '../vault.js';
import { decryptBackupStream, type DecryptOptions, type SignatureStatus } from './pgp.js';
import {
  readLineBatches,
  restoreBackup,
  RestoreTargetNotEmptyError,
  targetHasVault,
  verifyBackup,
  type RestoreResult,
  type VerifyReport,
} from './restore.js';
import { assertNoHardLinks, assertNoLinks, createSqliteFile, fsyncFiles, sqliteTargetFiles } from './target.js';

/**
 * Backup files on local disk, without a server: what `hush backup verify`
 * and `hush backup restore` run.
 */

/**
 * A logger that drops everything, without loading the server's logging
 * stack (a restore from the CLI logs nothing; loading vault/server.js for
 * its logger cost the restore a good share of its start-up).
 */
export const silentLogger: FastifyBaseLogger = (() => {
  const noop = () => undefined;
  const l = { level: 'silent', fatal: noop, error: noop, warn: noop, info: noop, debug: noop, trace: noop, silent: noop, child: () => l };
  return l;
})();

export type OpenKeys = Pick<DecryptOptions, 'identities' | 'passphrase' | 'verifyKeys'>;

export interface FileVerifyReport extends VerifyReport {
  signature: SignatureStatus;
}

/**
 * Opens a backup file for reading. When `signal` aborts (Ctrl-C), the read
 * fails with the signal's reason, so the verify or restore reading it fails
 * too and cleans up as after any other failure.
 */
function openBackupFile(file: string, signal?: AbortSignal): ReadStream {
  const s = createReadStream(file);
  if (signal) {
    const abort = () => s.destroy(signal.reason instanceof Error ? signal.reason : new Error('interrupted'));
    if (signal.aborted) abort();
    else {
      signal.addEventListener('abort', abort, { once: true });
      s.once('close', () => signal.removeEventListener('abort', abort));
    }
  }
  return s;
}

/** Decrypts `file` and checks it end to end (OpenPGP integrity, signature, body hash, counts, audit chain). Writes nothing. */
export async function verifyBackupFile(file: string, keys: OpenKeys, signal?: AbortSignal): Promise<FileVerifyReport> {
  const { plain, signed } = await decryptBackupStream(openBackupFile(file, signal), keys);
  try {
    const report = await verifyBackup(readLineBatches(plain));
    return { ...report, signature: await signed };
  } finally {
    plain.destroy();
  }
}

/** Throws RestoreTargetNotEmptyError when the target holds a vault. Creates nothing (a missing SQLite file is simply empty). */
export async function assertEmptyTarget(config: Readonly<Config>): Promise<void> {
  const url = databaseUrl(config);
  if (storageKind(url) === 'sqlite') {
    const file = sqlitePath(url);
    if (!existsSync(file)) return;
    // Checked before the file is opened: opening a database writes to it.
    assertNoLinks([file]);
    assertNoHardLinks(file);
    if (statSync(file).size === 0) return; // an empty file holds no vault
  }
  const db = openDb({ url, sqliteSynchronous: config.sqliteSynchronous });
  try {
    if (await targetHasVault(db)) {
      throw new RestoreTargetNotEmptyError(
        `the restore target ${storageKind(url) === 'sqlite' ? sqlitePath(url) : 'database'} already holds a vault; restore into an empty data dir or database`,
      );
    }
  } finally {
    await db.destroy();
  }
}

export interface FileRestoreResult extends RestoreResult {
  verify: FileVerifyReport;
  target: string;
}

/**
 * Restores `file` into the (empty) vault `config` points at, in one pass
 * over the file: `restoreBackup` checks the whole body as it writes (the
 * checks `verifyBackupFile` makes) inside one transaction, and commits only
 * after the stream ended cleanly (OpenPGP integrity and signature included).
 * A wrong key or passphrase fails before anything is created; any later
 * failure rolls back, and what this call created (SQLite file, data dir,
 * PostgreSQL schema, master.key) is removed again.
 *
 * SQLite: the target must hold no symbolic link where the restore writes
 * (restore_target_unsafe); the database file is created with O_EXCL and
 * O_NOFOLLOW, mode 0600. The restore runs with synchronous=OFF and the files
 * are fsynced before this returns, so the vault is durable once it is reported.
 */
export async function restoreBackupFile(
  config: Readonly<Config>,
  file: string,
  keys: OpenKeys,
  log: FastifyBaseLogger,
  onPhase?: (phase: 'verify' | 'restore') => void,
  signal?: AbortSignal,
): Promise<FileRestoreResult> {
  const url = databaseUrl(config);
  const sqlite = storageKind(url) === 'sqlite';
  const dbFile = sqlite ? sqlitePath(url) : null;
  const keyFile = join(config.dataDir, DEV_KEY_FILE);
  const written = dbFile ? sqliteTargetFiles(dbFile, config.dataDir) : [keyFile];
  // Before anything opens the target (the emptiness check opens an existing SQLite file).
  assertNoLinks(written);
  await assertEmptyTarget(config);
  const existed = { dataDir: existsSync(config.dataDir), dbFile: dbFile !== null && existsSync(dbFile), keyFile: existsSync(keyFile) };
  onPhase?.('restore');
  // A wrong key or passphrase fails here, before the target is touched.
  const { plain, signed } = await decryptBackupStream(openBackupFile(file, signal), keys);
  let opened: OpenedDb | null = null;
  let schemaExisted = true;
  let ok = false;
  try {
    if (dbFile) {
      if (!config.databaseUrl) ensureDataDir(config.dataDir);
      else mkdirSync(dirname(dbFile), { recursive: true, mode: 0o700 });
      createSqliteFile(dbFile);
    }
    opened = {
      db: openDb({ url, sqliteSynchronous: 'off', poolMax: config.databasePoolMax }),
      storage: sqlite ? 'sqlite' : 'postgres',
      url,
    };
    schemaExisted = await hasSchema(opened.db);
    const r = await restoreBackup(config, opened, readLineBatches(plain), log);
    const signature = await signed;
    ok = true;
    return { ...r, verify: { ...r.report, signature }, target: sqlite ? dbFile! : 'database' };
  } finally {
    plain.destroy();
    if (opened) {
      if (!ok && !sqlite && !schemaExisted) {
        // Migrations ran outside the (rolled back) data transaction: undo them.
        await unmigrate(opened.db).catch(() => undefined);
      }
      await opened.db.destroy();
    }
    if (ok && dbFile) fsyncFiles(written);
    if (!ok) {
      if (!existed.keyFile)
        try {
          unlinkSync(keyFile);
        } catch {
          /* not written */
        }
      if (dbFile && !existed.dbFile) removeCreatedSqlite(dbFile, config.dataDir, existed.dataDir);
    }
  }
}

/** Removes a SQLite database this process created (with its WAL files) and the data dir if it is then empty and was created too. */
export function removeCreatedSqlite(dbFile: string, dataDir: string, dataDirExisted: boolean): void {
  for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`, `${dbFile}-journal`]) {
    try {
      unlinkSync(f);
    } catch {
      /* absent */
    }
  }
  if (!dataDirExisted) {
    try {
      if (readdirSync(dataDir).length === 0) rmdirSync(dataDir);
    } catch {
      /* absent or not empty */
    }
  }
}
