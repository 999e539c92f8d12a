/**
 * The only place the store reaches below knex's public API. knex does not
 * document these, so a knex release may change them; test/core/knex-internals.test.ts
 * checks each one against the installed knex, on SQLite and PostgreSQL, and
 * fails naming the knex version when one has changed.
 *
 * - acquireConnection / releaseConnection: the raw driver connection of a
 *   transaction (knex's transaction client holds one; acquiring it again
 *   returns that one) or of the pool, so that hot queries skip knex's query
 *   builder (store/sql.ts, store/sqlite-fast.ts).
 * - client.destroy: what knex.destroy() ends in; hooked to close what the
 *   store opened beside the pool (the SQLite reader).
 * - executionPromise: settles when a transaction has committed or rolled back.
 */
import type { Knex } from 'knex';

interface ClientInternals<C> {
  acquireConnection(): Promise<C>;
  releaseConnection(conn: C): Promise<unknown>;
  destroy(cb?: unknown): Promise<void>;
}

const internals = <C>(db: Knex | Knex.Transaction) => db.client as unknown as ClientInternals<C>;

/** The driver connection of a transaction (the one it runs on), or one taken from the pool (give it back with releaseConnection). */
export function acquireConnection<C>(db: Knex | Knex.Transaction): Promise<C> {
  return internals<C>(db).acquireConnection();
}

/** Gives a connection taken by acquireConnection(db) back to db's pool. */
export function releaseConnection<C>(db: Knex, conn: C): Promise<unknown> {
  return internals<C>(db).releaseConnection(conn);
}

/** Runs `before` when db is destroyed (knex.destroy()), before the pool closes. */
export function beforeDestroy(db: Knex, before: () => void): void {
  const client = internals<unknown>(db);
  const destroy = client.destroy.bind(client);
  client.destroy = (cb?: unknown) => {
    before();
    return destroy(cb);
  };
}

/** A promise that settles when the transaction has ended (committed or rolled back); undefined for something that is not a knex transaction. */
export function transactionEnded(tx: unknown): Promise<unknown> | undefined {
  return (tx as Partial<Knex.Transaction> | null | undefined)?.executionPromise;
}
