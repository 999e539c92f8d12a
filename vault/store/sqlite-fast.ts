import { createRequire } from 'node:module';
import type { Knex } from 'knex';
import { acquireConnection, beforeDestroy } from './knex-internals.js';

/**
 * Hot statements on SQLite without knex. knex re-prepares every statement
 * and goes through its promise pipeline; better-sqlite3 runs a cached
 * prepared statement synchronously in microseconds. Only store/ uses this,
 * and only for statements that are identical on every call.
 *
 * Two connections per process:
 * - the writer is knex's single pooled connection. Inside a transaction
 *   opened with `transaction()` (db.ts) the store runs its statements on it
 *   directly, so they are part of that transaction.
 * - the reader is a second, query-only connection for reads made outside
 *   any transaction (token lookups, revision checks, audit verify). In WAL
 *   mode it sees every committed transaction at once and never waits for
 *   the writer, so it cannot see an uncommitted change either.
 */

interface Statement {
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  raw(on: boolean): Statement;
  pluck(on?: boolean): Statement;
}

export interface RawSqlite {
  prepare(sql: string): Statement;
  pragma(source: string): unknown;
  readonly inTransaction: boolean;
  close(): void;
  readonly open: boolean;
}

/** Cached prepared statements on one connection. Rows come back as better-sqlite3 gives them (the same shape knex returns). */
export interface Sql {
  get<T = Record<string, any>>(sql: string, ...params: unknown[]): T | undefined;
  all<T = Record<string, any>>(sql: string, ...params: unknown[]): T[];
  /** Rows as arrays in column order: no per-row object (bulk reads). */
  rows(sql: string, ...params: unknown[]): any[][];
  run(sql: string, ...params: unknown[]): number;
}

const sqlByConn = new WeakMap<object, Sql>();

export function sqlFor(conn: RawSqlite): Sql {
  let s = sqlByConn.get(conn);
  if (s) return s;
  const cache = new Map<string, Statement>();
  const rawCache = new Map<string, Statement>();
  const stmt = (sql: string) => {
    let st = cache.get(sql);
    if (!st) cache.set(sql, (st = conn.prepare(sql)));
    return st;
  };
  const rawStmt = (sql: string) => {
    let st = rawCache.get(sql);
    if (!st) rawCache.set(sql, (st = conn.prepare(sql).raw(true)));
    return st;
  };
  s = {
    get: <T>(sql: string, ...params: unknown[]) => stmt(sql).get(...params) as T | undefined,
    all: <T>(sql: string, ...params: unknown[]) => stmt(sql).all(...params) as T[],
    rows: (sql: string, ...params: unknown[]) => rawStmt(sql).all(...params) as any[][],
    run: (sql: string, ...params: unknown[]) => stmt(sql).run(...params).changes,
  };
  sqlByConn.set(conn, s);
  return s;
}

interface SqliteHandle {
  file: string;
  reader: RawSqlite | null;
  readerSql: Sql | null;
  /** knex's pooled connection, set by the pool when it opens it. */
  writer: { conn: RawSqlite | null };
  dataVersion: { conn: RawSqlite; stmt: Statement } | null;
}
const handles = new WeakMap<object, SqliteHandle>();
/** Transactions opened by transaction() on SQLite, with their connection. */
const txSql = new WeakMap<object, Sql>();

/** Called by openDb for a SQLite database: enables the fast path and closes the reader with the pool. */
export function registerSqlite(db: Knex, file: string, writer: { conn: RawSqlite | null }): void {
  const h: SqliteHandle = { file, reader: null, readerSql: null, writer, dataVersion: null };
  handles.set(db, h);
  // Close the reader with the pool.
  beforeDestroy(db, () => {
    if (h.reader?.open) h.reader.close();
    h.reader = null;
    h.readerSql = null;
  });
}

/**
 * SQLite: copies every frame of the write-ahead log into the database file
 * and truncates the log to zero bytes (PRAGMA wal_checkpoint(TRUNCATE)), so
 * the page images from before a delete no longer lie in hush.db-wal. It
 * waits for a write transaction open on the writer to end first (up to
 * about a second). 'done', 'busy' (another connection still reads an older
 * snapshot: the log was copied as far as it could be, and is truncated by
 * the next checkpoint), or null on PostgreSQL.
 */
export async function checkpointTruncate(db: object): Promise<'done' | 'busy' | null> {
  const conn = handles.get(db)?.writer.conn;
  if (!conn?.open) return null;
  for (let i = 0; conn.inTransaction && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
  if (conn.inTransaction) return 'busy';
  const [r] = conn.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
  return r && r.busy === 0 ? 'done' : 'busy';
}

function openReader(db: Knex, h: SqliteHandle): Sql {
  const Driver = ((db.client as { driver?: unknown }).driver ?? createRequire(import.meta.url)('better-sqlite3')) as new (
    file: string,
    opts?: object,
  ) => RawSqlite;
  const conn = new Driver(h.file, { fileMustExist: true });
  // A WAL reader only waits on a checkpoint or WAL recovery; keep it short, it blocks the event loop.
  conn.pragma('busy_timeout = 1000');
  conn.pragma('query_only = ON');
  h.reader = conn;
  return (h.readerSql = sqlFor(conn));
}

/**
 * A number that changes whenever a connection other than this process's
 * writer (another server process, the CLI, an operator's sqlite3) has
 * committed to the database since the last call: PRAGMA data_version on the
 * writer, which this process's own commits leave alone. Null when it cannot
 * be told (PostgreSQL, the writer not open yet): then nothing may be cached.
 *
 * Safe at any moment, also while a transaction is open on the writer: the
 * statement is synchronous, and inside a write transaction no other
 * connection can commit.
 */
export function foreignVersion(db: object): number | null {
  const h = handles.get(db);
  const conn = h?.writer.conn;
  if (!h || !conn?.open) return null;
  if (h.dataVersion?.conn !== conn) h.dataVersion = { conn, stmt: conn.prepare('pragma data_version').pluck() };
  return h.dataVersion.stmt.get() as number;
}

/**
 * The fast path for `tx`: its connection when it is a transaction opened by
 * transaction() on SQLite, the reader when there is no transaction, or null
 * (PostgreSQL, or a knex transaction opened elsewhere): use knex then.
 */
export function fastSql(db: Knex, tx?: unknown): Sql | null {
  if (tx !== undefined && tx !== db) return txSql.get(tx as object) ?? null;
  const h = handles.get(db);
  if (!h) return null;
  return h.readerSql ?? openReader(db, h);
}

/** The connection of a transaction opened by transaction() on SQLite, or null. */
export function fastTx(tx: unknown): Sql | null {
  return txSql.get(tx as object) ?? null;
}

/** Binds a knex transaction on SQLite to its raw connection (see transaction() in db.ts). */
export async function bindTransaction(trx: Knex.Transaction): Promise<Sql> {
  const conn = await acquireConnection<RawSqlite>(trx);
  const s = sqlFor(conn);
  txSql.set(trx, s);
  return s;
}
