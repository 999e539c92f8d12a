/** A second connection to a test server's database, and faults made with the engine's own mechanisms. */
import { join } from 'node:path';
import type { Knex } from 'knex';
import { openDb } from '../../vault/store/db.js';
import type { TestServer } from './server.js';

/** A second connection to the server's database, as an operator (or a failing disk) would have. */
export function sideDb(s: Pick<TestServer, 'config' | 'dataDir'>): Knex {
  return openDb({ url: s.config.databaseUrl ?? `sqlite:${join(s.dataDir, 'hush.db')}` });
}

const isPg = (db: Knex) => db.client.config.client === 'pg';

/** Makes every insert into audit_events fail (a trigger that raises), on SQLite or PostgreSQL. */
export async function blockAuditInserts(db: Knex): Promise<void> {
  if (!isPg(db)) {
    await db.raw(`create trigger audit_block before insert on audit_events begin select raise(abort, 'audit insert blocked by test'); end`);
  } else {
    await db.raw(
      `create or replace function audit_block() returns trigger language plpgsql as $$ begin raise exception 'audit insert blocked by test'; end $$`,
    );
    await db.raw('create trigger audit_block before insert on audit_events for each row execute function audit_block()');
  }
}

export async function unblockAuditInserts(db: Knex): Promise<void> {
  await db.raw(isPg(db) ? 'drop trigger audit_block on audit_events' : 'drop trigger audit_block');
}

/** Runs `fn` while audit inserts fail; they work again afterwards, whatever `fn` did. */
export async function withAuditBlocked<T>(db: Knex, fn: () => Promise<T>): Promise<T> {
  await blockAuditInserts(db);
  try {
    return await fn();
  } finally {
    await unblockAuditInserts(db);
  }
}
