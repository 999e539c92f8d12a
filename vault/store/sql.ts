import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { fastSql, fastTx, type Sql as SqliteSql } from './sqlite-fast.js';
import { acquireConnection, releaseConnection } from './knex-internals.js';

/**
 * One SQL text per query, on both engines.
 *
 * A store writes each statement once, with `?` placeholders, as a module
 * constant: `const BY_ID = query('select * from tokens where id = ?')`.
 * This module is the one place that knows the two drivers:
 *
 * - SQLite (better-sqlite3): the text as written, prepared once per
 *   connection and run synchronously (sqlite-fast.ts).
 * - PostgreSQL (pg): placeholders become `$1..$n`, and the statement is sent
 *   as a named prepared statement, so each connection parses and plans it
 *   once and later calls send only the parameters.
 *
 * The few constructs the engines spell differently are written as macros
 * that this module expands per engine (and nowhere else):
 *
 * - `json_text_list(?)`: a set of strings given as one JSON array parameter,
 *   for `x in json_text_list(?)` (SQLite json_each, PostgreSQL
 *   json_array_elements_text). One text serves every list length.
 * - `for_update`, `for_share`, `for_update_skip_locked`: `for update` /
 *   `for share` / `for update skip locked` on PostgreSQL, nothing on SQLite
 *   (a write transaction there already holds the database's write lock).
 * - `collate_c`: byte-wise text ordering (`collate "C"` on PostgreSQL,
 *   SQLite's default BINARY collation already is).
 *
 * Booleans are written as the literals `true`/`false` (SQLite reads them as
 * 1/0); boolean parameters are bound as 1/0 on SQLite. A `?` must not appear
 * inside a string literal of a query text.
 *
 * knex stays for migrations and for the few queries whose shape depends on
 * their input (the audit list filter).
 */
export interface Query {
  readonly sqlite: string;
  readonly pg: string;
  /** Name of the PostgreSQL prepared statement: a hash of its text. */
  readonly name: string;
}

const MACROS: [RegExp, string, string][] = [
  [/json_text_list\(\?\)/g, '(select value from json_each(?))', '(select json_array_elements_text(?::json))'],
  [/\bfor_update_skip_locked\b/g, '', 'for update skip locked'],
  [/\bfor_update\b/g, '', 'for update'],
  [/\bfor_share\b/g, '', 'for share'],
  [/\bcollate_c\b/g, '', 'collate "C"'],
];

export function query(text: string): Query {
  let sqlite = text;
  let pg = text;
  for (const [re, s, p] of MACROS) {
    sqlite = sqlite.replace(re, s);
    pg = pg.replace(re, p);
  }
  let n = 0;
  pg = pg.replace(/\?/g, () => `$${++n}`);
  return Object.freeze({ sqlite, pg, name: 'h' + createHash('sha256').update(pg).digest('hex').slice(0, 20) });
}

/** Runs queries on one connection or pool. Rows come back as objects keyed by column (or arrays, with rows()). */
export interface Runner {
  readonly engine: 'sqlite' | 'postgres';
  get<T = Record<string, any>>(q: Query, ...params: unknown[]): Promise<T | undefined>;
  all<T = Record<string, any>>(q: Query, ...params: unknown[]): Promise<T[]>;
  /** Rows as arrays in column order: no per-row object (bulk reads). */
  rows(q: Query, ...params: unknown[]): Promise<any[][]>;
  /** Rows changed. */
  run(q: Query, ...params: unknown[]): Promise<number>;
}

/** The subset of pg.Client this module uses. */
interface PgConn {
  query(config: { name: string; text: string; values: unknown[]; rowMode?: 'array' }): Promise<{ rows: any[]; rowCount: number | null }>;
}

/** PostgreSQL connections of transactions opened by transaction() (db.ts). */
const pgTxConn = new WeakMap<object, PgConn>();

/**
 * PostgreSQL: statements without parameters, several in one round trip (the
 * simple query protocol), on a transaction opened by transaction(). For the
 * transaction's own control statements (savepoints), nothing else.
 */
export async function pgScript(tx: object, text: string): Promise<void> {
  const conn = pgTxConn.get(tx) as unknown as { query(text: string): Promise<unknown> } | undefined;
  if (!conn) throw new Error('store: a transaction must be opened with transaction() from store/db.ts');
  await conn.query(text);
}

/** Binds a knex transaction on PostgreSQL to its pg connection, so queries in it run there directly. */
export async function bindPgTransaction(trx: Knex.Transaction): Promise<void> {
  const conn = await acquireConnection<PgConn>(trx);
  pgTxConn.set(trx, conn);
}

const sqliteParams = (params: unknown[]) => params.map((p) => (p === true ? 1 : p === false ? 0 : p));

function sqliteRunner(s: SqliteSql): Runner {
  return {
    engine: 'sqlite',
    get: async (q, ...p) => s.get(q.sqlite, ...sqliteParams(p)),
    // async with no await on purpose: a synchronous SQLite error becomes a rejection, as a PostgreSQL one is.
    /* eslint-disable @typescript-eslint/require-await */
    all: async (q, ...p) => s.all(q.sqlite, ...sqliteParams(p)),
    rows: async (q, ...p) => s.rows(q.sqlite, ...sqliteParams(p)),
    run: async (q, ...p) => s.run(q.sqlite, ...sqliteParams(p)),
    /* eslint-enable @typescript-eslint/require-await */
  };
}

const pgValues = (params: unknown[]) => params.map((p) => (p === undefined ? null : p));

function pgRunner(exec: <R>(fn: (c: PgConn) => Promise<R>) => Promise<R>): Runner {
  return {
    engine: 'postgres',
    get: (q, ...p) => exec(async (c) => (await c.query({ name: q.name, text: q.pg, values: pgValues(p) })).rows[0]),
    all: (q, ...p) => exec(async (c) => (await c.query({ name: q.name, text: q.pg, values: pgValues(p) })).rows),
    rows: (q, ...p) => exec(async (c) => (await c.query({ name: q.name, text: q.pg, values: pgValues(p), rowMode: 'array' })).rows),
    run: (q, ...p) => exec(async (c) => (await c.query({ name: q.name, text: q.pg, values: pgValues(p) })).rowCount ?? 0),
  };
}

const poolRunners = new WeakMap<object, Runner>();
const txRunners = new WeakMap<object, Runner>();

/**
 * The runner for `tx` (a transaction opened by transaction() in db.ts), or
 * for the database outside any transaction when `tx` is absent or is `db`
 * itself: on SQLite the read-only reader connection, on PostgreSQL a pool
 * connection per query.
 */
export function sql(db: Knex, tx?: Knex | Knex.Transaction): Runner {
  const inTx = tx !== undefined && tx !== db;
  const key = inTx ? tx : db;
  const known = (inTx ? txRunners : poolRunners).get(key);
  if (known) return known;
  let r: Runner;
  const f = inTx ? fastTx(tx) : fastSql(db);
  if (f) r = sqliteRunner(f);
  else if (inTx) {
    const conn = pgTxConn.get(tx);
    if (!conn) throw new Error('store: a transaction must be opened with transaction() from store/db.ts');
    r = pgRunner((fn) => fn(conn));
  } else {
    r = pgRunner(async (fn) => {
      const conn = await acquireConnection<PgConn>(db);
      try {
        return await fn(conn);
      } finally {
        await releaseConnection(db, conn);
      }
    });
  }
  (inTx ? txRunners : poolRunners).set(key, r);
  return r;
}

/**
 * An INSERT of many rows whose number varies (a restore), as fixed texts:
 * one per batch size in `sizes` (largest first, ending with 1), each
 * prepared once per connection like any other query. insertRows() covers
 * any row count with them: full batches, then the remainder.
 */
export interface RowsInsert {
  readonly columns: number;
  readonly bySize: readonly (readonly [number, Query])[];
}

export function rowsInsert(table: string, columns: readonly string[], sizes: readonly number[] = [100, 10, 1]): RowsInsert {
  if (sizes[sizes.length - 1] !== 1) throw new Error('store: rowsInsert sizes must end with 1');
  const row = `(${columns.map(() => '?').join(', ')})`;
  const head = `insert into ${table} (${columns.join(', ')}) values `;
  return { columns: columns.length, bySize: sizes.map((n) => [n, query(head + Array(n).fill(row).join(', '))] as const) };
}

/** Inserts `rows` (each an array of `ins.columns` values, in column order). */
export async function insertRows(r: Runner, ins: RowsInsert, rows: readonly (readonly unknown[])[]): Promise<void> {
  let i = 0;
  for (const [n, q] of ins.bySize) {
    for (; i + n <= rows.length; i += n) {
      const params: unknown[] = [];
      for (let j = i; j < i + n; j++) {
        if (rows[j].length !== ins.columns) throw new Error(`store: a row of ${rows[j].length} values for ${ins.columns} columns`);
        params.push(...rows[j]);
      }
      await r.run(q, ...params);
    }
  }
}
