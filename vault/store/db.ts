import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { migrationSource } from '../../migrations/index.js';
import { bindTransaction, fastTx, registerSqlite, type RawSqlite } from './sqlite-fast.js';
export { checkpointTruncate } from './sqlite-fast.js';
import { bindPgTransaction, pgScript } from './sql.js';

let pgReady = false;
/**
 * Loaded on first use, so a SQLite server does not carry the driver. It is
 * the module instance knex requires, so the type parser applies to knex's
 * connections: int8 (bigint) columns hold epoch milliseconds and sequence
 * numbers, all well inside Number's safe range; return numbers, as SQLite does.
 */
function preparePg(): void {
  if (pgReady) return;
  const pg = createRequire(import.meta.url)('pg') as typeof import('pg');
  pg.types.setTypeParser(20, (v: string) => Number(v));
  pgReady = true;
}

export type Db = Knex;
export type Tx = Knex | Knex.Transaction;
export type StorageKind = 'sqlite' | 'postgres';

export interface DbOptions {
  /** postgres://... or a SQLite file path. */
  url: string;
  /** 'off': only for a restore, which fsyncs the files itself before it reports done (backup/target.ts). */
  sqliteSynchronous?: 'normal' | 'full' | 'off';
  poolMax?: number;
}

export function storageKind(url: string): StorageKind {
  return /^postgres(ql)?:\/\//.test(url) ? 'postgres' : 'sqlite';
}

export function sqlitePath(url: string): string {
  return url.replace(/^sqlite:(\/\/)?/, '');
}

/**
 * knex writes its own warnings to the console (a failed connection as a
 * multi-line stack). Every such failure reaches Hush as an error, which says
 * it in one line (CLI) or logs it (server), so knex's copy is dropped.
 */
const KNEX_LOG = { warn: () => undefined, error: () => undefined, deprecate: () => undefined, debug: () => undefined };

export function openDb(opts: DbOptions): Db {
  if (storageKind(opts.url) === 'postgres') {
    preparePg();
    return knexFactory({
      client: 'pg',
      log: KNEX_LOG,
      connection: opts.url,
      pool: { min: 0, max: opts.poolMax ?? 10 },
      acquireConnectionTimeout: 10_000,
    });
  }
  const file = sqlitePath(opts.url);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const sync = opts.sqliteSynchronous === 'full' ? 'FULL' : opts.sqliteSynchronous === 'off' ? 'OFF' : 'NORMAL';
  const writer: { conn: RawSqlite | null } = { conn: null };
  const db = knexFactory({
    client: 'better-sqlite3',
    log: KNEX_LOG,
    connection: { filename: file },
    useNullAsDefault: true,
    pool: {
      min: 1,
      max: 1,
      // WAL: readers never block the writer; busy_timeout: a second process
      // (the CLI's init, a backup restore) waits instead of failing at once.
      afterCreate(conn: RawSqlite, done: (err: Error | null, conn: unknown) => void) {
        try {
          conn.pragma('journal_mode = WAL');
          conn.pragma(`synchronous = ${sync}`);
          conn.pragma('busy_timeout = 5000');
          conn.pragma('foreign_keys = ON');
          // Deleted rows are overwritten with zeros in the database file (docs/keys.md, "Deleted data").
          conn.pragma('secure_delete = ON');
          writer.conn = conn;
          done(null, conn);
        } catch (e) {
          done(e as Error, conn);
        }
      },
    },
    acquireConnectionTimeout: 10_000,
  });
  registerSqlite(db, file, writer);
  return db;
}

export function isPostgres(db: Tx): boolean {
  return (db as Knex).client.config.client === 'pg';
}

/**
 * A write transaction. On SQLite it takes the write lock first (waiting up
 * to busy_timeout for another process), so a read made early in it cannot
 * later fail to upgrade, and the store's statements run on its connection
 * (sqlite-fast.ts). On PostgreSQL the store's statements run on the
 * transaction's connection as prepared statements (sql.ts).
 *
 * Nothing is locked up front on PostgreSQL: each process appends to its own
 * audit stream, so transactions of different nodes meet only on the rows
 * they change. Two batches of two nodes that lock environment rows in
 * opposite orders can deadlock; PostgreSQL then aborts one after
 * deadlock_timeout, and the unit of work retries its jobs one per
 * transaction (unit-of-work.ts).
 */
export async function transaction<T>(db: Db, fn: (tx: Knex.Transaction) => Promise<T>): Promise<T> {
  if (isPostgres(db)) {
    return db.transaction(async (trx) => {
      await bindPgTransaction(trx);
      return fn(trx);
    });
  }
  return db.transaction(async (trx) => {
    const sql = await bindTransaction(trx);
    sql.run('update meta set value = value where 0'); // writes nothing, takes the lock
    return fn(trx);
  });
}

export interface ReadSnapshot {
  tx: Knex.Transaction;
  release: () => Promise<void>;
}

/**
 * A read-only transaction that sees one consistent state for as long as it
 * is held (a backup dump), bound like transaction()'s so the sql layer runs
 * in it. PostgreSQL: REPEATABLE READ, READ ONLY, on a pool connection.
 * SQLite: a second connection of its own in a read transaction (WAL keeps
 * its snapshot while the server goes on writing on its one writer
 * connection, which the snapshot must not hold). `release` ends it.
 */
export async function readSnapshot(db: Db): Promise<ReadSnapshot> {
  if (isPostgres(db)) {
    const tx = await db.transaction({ isolationLevel: 'repeatable read', readOnly: true } as never);
    try {
      await bindPgTransaction(tx);
    } catch (e) {
      await tx.rollback().catch(() => undefined);
      throw e;
    }
    return {
      tx,
      release: async () => {
        await tx.commit();
      },
    };
  }
  const own = openDb({ url: (db.client.config.connection as { filename: string }).filename });
  try {
    const tx = await own.transaction();
    const sql = await bindTransaction(tx);
    sql.get('select count(*) from meta'); // starts the read snapshot now
    return {
      tx,
      release: async () => {
        await tx.commit().catch(() => undefined);
        await own.destroy();
      },
    };
  } catch (e) {
    await own.destroy();
    throw e;
  }
}

/**
 * Savepoints let one statement group inside a shared transaction fail
 * alone: rollbackTo undoes its changes and leaves the transaction usable
 * (on PostgreSQL too, after an SQL error). savepoint() returns false when
 * none was needed (then there is nothing to release or roll back).
 *
 * PostgreSQL: every control statement is a round trip, so they go in pairs
 * where they can: `releasePrevious` releases the savepoint the previous
 * group left open and takes the next in one round trip, and a rollback
 * releases in the same one. (A savepoint left open is released by the
 * commit.)
 */
export async function savepoint(tx: Tx, opts: { readOnly?: boolean; releasePrevious?: boolean } = {}): Promise<boolean> {
  const f = fastTx(tx);
  if (f) {
    if (opts.releasePrevious) f.run('release savepoint hush_item');
    // SQLite: a failed statement leaves the transaction usable, and a job that only reads has nothing to undo.
    if (opts.readOnly) return false;
    f.run('savepoint hush_item');
    return true;
  }
  await pgScript(tx, opts.releasePrevious ? 'release savepoint hush_item; savepoint hush_item' : 'savepoint hush_item');
  return true;
}

export async function releaseSavepoint(tx: Tx): Promise<void> {
  const f = fastTx(tx);
  if (f) f.run('release savepoint hush_item');
  else await pgScript(tx, 'release savepoint hush_item');
}

export async function rollbackToSavepoint(tx: Tx): Promise<void> {
  const f = fastTx(tx);
  if (f) {
    f.run('rollback to savepoint hush_item');
    f.run('release savepoint hush_item');
  } else await pgScript(tx, 'rollback to savepoint hush_item; release savepoint hush_item');
}

export async function hasSchema(db: Db): Promise<boolean> {
  return db.schema.hasTable('keys');
}

export async function migrate(db: Db): Promise<void> {
  await db.migrate.latest({ migrationSource });
}

/** Undoes migrate() on a database it created the schema in: every migration rolled back, and knex's own tables dropped. */
export async function unmigrate(db: Db): Promise<void> {
  await db.migrate.rollback({ migrationSource }, true);
  for (const t of ['knex_migrations', 'knex_migrations_lock']) await db.schema.dropTableIfExists(t);
}

// Classifying a driver's failure is the error family's job (vault/errors.ts), so that http/ need not import the store.
export { isStorageFailure, storageError } from '../errors.js';

/**
 * The connection pool's state, for the metrics. knex keeps its pool (tarn)
 * at `client.pool`; this is the one place that reaches into it. SQLite: the
 * pool is the one writer connection (reads outside a transaction use the
 * second, query-only connection of sqlite-fast.ts, which never waits).
 */
export function poolStats(db: Db): { used: number; free: number; pending: number; max: number } {
  const pool = (db as unknown as { client: { pool?: { numUsed(): number; numFree(): number; numPendingAcquires(): number; max: number } } })
    .client.pool;
  if (!pool) return { used: 0, free: 0, pending: 0, max: 0 };
  return { used: pool.numUsed(), free: pool.numFree(), pending: pool.numPendingAcquires(), max: pool.max };
}
