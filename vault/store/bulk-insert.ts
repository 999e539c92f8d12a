import type { Db, Tx } from './db.js';
import { insertRows, pgScript, query, rowsInsert, sql } from './sql.js';
import { AUDIT_COLUMNS as AUDIT_COLS } from './audit-store.js';

/**
 * The restore's bulk writes into an EMPTY vault, in the caller's (one)
 * transaction: projects, environments and secrets with ids the restore chose
 * (ascending from `nextId`, so a row names its parent without a lookup or a
 * round trip per row), versions,
 * and audit events whose target/detail are already canonical JSON text.
 *
 * - SQLite: multi-row INSERTs of up to 200 rows, prepared once (a statement
 *   is limited to 32,766 parameters).
 * - PostgreSQL: one INSERT ... SELECT FROM unnest(arrays) per batch: one
 *   parameter per column whatever the row count, so a batch of thousands of
 *   rows is one round trip and one plan (the restore's COPY).
 *
 * `finish` moves PostgreSQL's serial sequences above the ids chosen here.
 *
 * PostgreSQL checks a foreign key with a trigger per inserted row (an index
 * probe and a row lock on the parent): for environments, secrets and
 * versions that was most of a restore's time in PostgreSQL. `begin` drops
 * those tables' foreign keys inside the restore's transaction and `finish`
 * adds them back (the same names and definitions, read from the catalog),
 * which checks every row in one join, as pg_restore does. DDL is
 * transactional in PostgreSQL: a restore that fails rolls the drop back
 * with everything else, and nothing else sees the tables in between.
 */

const PROJECT_COLS = ['id', 'name', 'dek_version', 'created_at'];
const KEY_COLS = ['purpose', 'scope', 'version', 'wrapped', 'mk_fingerprint', 'created_at'];
const ENV_COLS = ['id', 'project_id', 'name', 'revision', 'created_at'];
const SECRET_COLS = ['id', 'env_id', 'name', 'version', 'deleted', 'created_at', 'updated_at'];
const VERSION_COLS = ['secret_id', 'version', 'nonce', 'ciphertext', 'dek_version', 'deleted', 'created_by', 'created_at', 'revision'];

const SIZES = [200, 20, 1];
const SQLITE = {
  projects: rowsInsert('projects', PROJECT_COLS, SIZES),
  keys: rowsInsert('keys', KEY_COLS, SIZES),
  envs: rowsInsert('environments', ENV_COLS, SIZES),
  secrets: rowsInsert('secrets', SECRET_COLS, SIZES),
  versions: rowsInsert('secret_versions', VERSION_COLS, SIZES),
  audit: rowsInsert('audit_events', AUDIT_COLS, [100, 10, 1]),
};

const unnest = (table: string, cols: readonly string[], types: string[]) =>
  query(`insert into ${table} (${cols.join(', ')}) select * from unnest(${types.map((t) => `?::${t}[]`).join(', ')})`);
const PG = {
  projects: unnest('projects', PROJECT_COLS, ['int', 'text', 'int', 'bigint']),
  keys: unnest('keys', KEY_COLS, ['text', 'text', 'int', 'bytea', 'text', 'bigint']),
  envs: unnest('environments', ENV_COLS, ['int', 'int', 'text', 'bigint', 'bigint']),
  secrets: unnest('secrets', SECRET_COLS, ['int', 'int', 'text', 'int', 'bool', 'bigint', 'bigint']),
  versions: unnest('secret_versions', VERSION_COLS, ['int', 'int', 'bytea', 'bytea', 'int', 'bool', 'text', 'bigint', 'bigint']),
  audit: unnest('audit_events', AUDIT_COLS, [
    'bigint',
    'bigint',
    'text',
    'text',
    'text',
    'text',
    'text',
    'text',
    'text',
    'text',
    'text',
    'text',
    'bytea',
    'bytea',
    'bigint',
    'bigint',
  ]),
  sequences: ['projects', 'environments', 'secrets'].map((t) =>
    query(
      `select setval(pg_get_serial_sequence('${t}', 'id'), greatest((select coalesce(max(id), 0) from ${t}), 1), (select count(*) > 0 from ${t}))`,
    ),
  ),
};
/** Foreign keys defined on the bulk-loaded tables (PostgreSQL catalog): table, name and definition. */
const PG_FKS = query(`select c.conrelid::regclass::text as tbl, c.conname as name, pg_get_constraintdef(c.oid) as def from pg_constraint c
  where c.contype = 'f' and c.conrelid in ('environments'::regclass, 'secrets'::regclass, 'secret_versions'::regclass) order by c.conname`);
const ident = (x: string) => `"${x.replace(/"/g, '""')}"`;
const MAX_ID = {
  projects: query('select coalesce(max(id), 0) as id from projects'),
  envs: query('select coalesce(max(id), 0) as id from environments'),
  secrets: query('select coalesce(max(id), 0) as id from secrets'),
};

/** Column-major batch: one array per column (what unnest takes), filled row by row. */
export class Columns {
  readonly cols: unknown[][];
  length = 0;
  constructor(n: number) {
    this.cols = Array.from({ length: n }, () => []);
  }
  push(...values: unknown[]): void {
    for (let i = 0; i < values.length; i++) this.cols[i].push(values[i]);
    this.length++;
  }
  clear(): void {
    for (const c of this.cols) c.length = 0;
    this.length = 0;
  }
  /** Row-major copy (SQLite's multi-row insert). */
  rows(): unknown[][] {
    const out: unknown[][] = new Array(this.length);
    for (let r = 0; r < this.length; r++) out[r] = this.cols.map((c) => c[r]);
    return out;
  }
}

export const newProjectBatch = () => new Columns(PROJECT_COLS.length);
export const newKeyBatch = () => new Columns(KEY_COLS.length);
export const newEnvBatch = () => new Columns(ENV_COLS.length);
export const newSecretBatch = () => new Columns(SECRET_COLS.length);
export const newVersionBatch = () => new Columns(VERSION_COLS.length);
export const newAuditBatch = () => new Columns(AUDIT_COLS.length);

export function bulkInsertFactory(db: Db) {
  let droppedFks: { tbl: string; name: string; def: string }[] = [];
  async function write(tx: Tx, batch: Columns, which: 'projects' | 'keys' | 'envs' | 'secrets' | 'versions' | 'audit'): Promise<void> {
    if (batch.length === 0) return;
    const s = sql(db, tx);
    if (s.engine === 'postgres') await s.run(PG[which], ...batch.cols);
    else await insertRows(s, SQLITE[which], batch.rows());
    batch.clear();
  }
  return {
    /** The first id free for the restore to hand out in a table. */
    async nextId(table: 'projects' | 'envs' | 'secrets', tx: Tx): Promise<number> {
      return Number((await sql(db, tx).get<{ id: number }>(MAX_ID[table]))!.id) + 1;
    },
    /** Rows: id, name, dek_version, created_at. */
    projects: (batch: Columns, tx: Tx) => write(tx, batch, 'projects'),
    /** Wrapped keys (the projects' data keys): purpose, scope, version, wrapped, mk_fingerprint, created_at. */
    keys: (batch: Columns, tx: Tx) => write(tx, batch, 'keys'),
    /** Rows: id, project_id, name, revision, created_at. */
    envs: (batch: Columns, tx: Tx) => write(tx, batch, 'envs'),
    /** Rows: id, env_id, name, version, deleted, created_at, updated_at. */
    secrets: (batch: Columns, tx: Tx) => write(tx, batch, 'secrets'),
    /** Rows: secret_id, version, nonce, ciphertext, dek_version, deleted, created_by, created_at, revision (null: rebuilt after the restore). */
    versions: (batch: Columns, tx: Tx) => write(tx, batch, 'versions'),
    /** Rows in AUDIT_COLS order, target and detail as text. */
    audit: (batch: Columns, tx: Tx) => write(tx, batch, 'audit'),
    /** Before the first write (PostgreSQL): drops the bulk-loaded tables' foreign keys, in `tx`; `finish` adds them back. */
    async begin(tx: Tx): Promise<void> {
      const s = sql(db, tx);
      if (s.engine !== 'postgres') return;
      droppedFks = await s.all(PG_FKS);
      if (droppedFks.length) await pgScript(tx, droppedFks.map((f) => `alter table ${f.tbl} drop constraint ${ident(f.name)}`).join('; '));
    },
    async finish(tx: Tx): Promise<void> {
      const s = sql(db, tx);
      if (s.engine !== 'postgres') return;
      for (const q of PG.sequences) await s.get(q);
      // Each added key checks every row at once (a failure rolls the whole restore back).
      if (droppedFks.length)
        await pgScript(tx, droppedFks.map((f) => `alter table ${f.tbl} add constraint ${ident(f.name)} ${f.def}`).join('; '));
      droppedFks = [];
    },
  };
}
export type BulkInsert = ReturnType<typeof bulkInsertFactory>;
