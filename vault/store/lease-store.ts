import type { Db, Tx } from './db.js';
import { query, sql } from './sql.js';

/**
 * Leases: what must happen once among every server sharing the database
 * (a scheduled backup tick) goes to the first process that inserts its row.
 */
const Q = {
  claim: query('insert into leases (name, holder, expires_at) values (?, ?, ?) on conflict (name) do nothing returning name'),
  // escape '!': a prefix is matched as written, even with % or _ in it.
  dropExpired: query("delete from leases where name like ? escape '!' and expires_at < ?"),
};

export function leaseStoreFactory(db: Db) {
  return {
    /** True when this call took the lease; false when another holder has it. */
    async claim(name: string, holder: string, expiresAt: number, tx?: Tx): Promise<boolean> {
      return (await sql(db, tx).get(Q.claim, name, holder, expiresAt)) !== undefined;
    },
    /** Deletes the leases named `prefix...` that expired before `now`. */
    async dropExpired(prefix: string, now: number, tx?: Tx): Promise<void> {
      await sql(db, tx).run(Q.dropExpired, prefix.replace(/[!%_]/g, '!$&') + '%', now);
    },
  };
}
export type LeaseStore = ReturnType<typeof leaseStoreFactory>;
