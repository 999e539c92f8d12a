/**
 * The store's only uses of knex internals (vault/store/knex-internals.ts), checked against the installed knex on both
 * engines. A knex upgrade that changes one of them fails here, naming the version, instead of in production.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Knex } from 'knex';
import { openDb } from '../../vault/store/db.js';
import { acquireConnection, beforeDestroy, releaseConnection, transactionEnded } from '../../vault/store/knex-internals.js';
import { BACKENDS, freshPgDatabase, onBackend } from '../helpers/server.js';

const KNEX = (JSON.parse(readFileSync(new URL('../../../node_modules/knex/package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
const changed = (what: string) => `knex ${KNEX}: ${what} changed; update vault/store/knex-internals.ts`;

/** Runs one query on a raw driver connection, as the store's fast paths do. */
async function one(conn: unknown, backend: string): Promise<number> {
  if (backend === 'sqlite') return (conn as { prepare(s: string): { get(): { v: number } } }).prepare('select 1 as v').get().v;
  return Number((await (conn as { query(s: string): Promise<{ rows: { v: number }[] }> }).query('select 1 as v')).rows[0].v);
}

for (const backend of BACKENDS) {
  describe(`knex internals the store relies on (${backend})`, onBackend(backend), () => {
    let db: Knex;
    let cleanup: () => Promise<void>;
    const open = async () => {
      if (backend === 'sqlite') {
        const dir = mkdtempSync(join(tmpdir(), 'hush-knex-'));
        db = openDb({ url: `sqlite:${join(dir, 'hush.db')}` });
        cleanup = async () => rmSync(dir, { recursive: true, force: true });
      } else {
        const pg = (await freshPgDatabase())!;
        db = openDb({ url: pg.url });
        cleanup = pg.drop;
      }
    };
    after(async () => {
      await cleanup?.();
    });

    it('acquireConnection gives a usable driver connection from the pool, and releaseConnection gives it back', async () => {
      await open();
      const conn = await acquireConnection(db);
      assert.ok(conn, changed('client.acquireConnection()'));
      assert.equal(await one(conn, backend), 1, changed('the driver connection client.acquireConnection() returns'));
      await releaseConnection(db, conn);
      // The pool still serves: the connection went back (SQLite's pool has one connection only).
      assert.equal(
        Number(
          (
            await db
              .raw('select 2 as v')
              .then((r: unknown) => (backend === 'sqlite' ? (r as { v: number }[])[0] : (r as { rows: { v: number }[] }).rows[0]))
          ).v,
        ),
        2,
        changed('client.releaseConnection()'),
      );
    });

    it("in a transaction, acquireConnection gives the transaction's own connection, and executionPromise settles when it ends", async () => {
      let ended: Promise<unknown> | undefined;
      let settled = false;
      await db.transaction(async (trx) => {
        const conn = await acquireConnection(trx);
        assert.equal(conn, await acquireConnection(trx), changed("a transaction's client.acquireConnection()"));
        assert.equal(await one(conn, backend), 1);
        ended = transactionEnded(trx);
        assert.ok(ended instanceof Promise, changed('Transaction.executionPromise'));
        void ended.then(() => {
          settled = true;
        });
        await new Promise((r) => setImmediate(r));
        assert.equal(settled, false, changed('Transaction.executionPromise (settled before the transaction ended)'));
      });
      await ended;
      assert.equal(settled, true);
      assert.equal(transactionEnded(db), undefined, 'the pool is not a transaction');
    });

    it('beforeDestroy runs its hook when knex.destroy() is called, and the pool still closes', async () => {
      let ran = 0;
      beforeDestroy(db, () => {
        ran++;
      });
      await db.destroy();
      assert.equal(ran, 1, changed('knex.destroy() no longer ends in client.destroy()'));
      await assert.rejects(db.raw('select 1'), changed('client.destroy() (the pool did not close)'));
    });
  });
}
