import type { Db, Tx } from './db.js';
import { query, sql } from './sql.js';
import type { StoredValue } from './secret-store.js';

/** One version of one secret of an environment, without its value: what env history is built from. */
export interface VersionMeta {
  name: string;
  version: number;
  revision: number;
  deleted: boolean;
  createdBy: string;
  createdAt: number;
}
/** One revision that wrote anything: when (its last version), how many versions, and how many secrets were live after it. */
export interface RevisionMeta {
  revision: number;
  createdAt: number;
  versionCount: number;
  live: number;
}

/** Revisions not above `upTo`, newest first, each with the live count after it (a running sum of +1 per secret made live, -1 per delete). */
const REVISIONS = `with d as (
    select v.revision, v.created_at,
      case when v.deleted then -1 when lag(v.deleted, 1, true) over (partition by v.secret_id order by v.version) then 1 else 0 end as delta
    from secret_versions v join secrets s on s.id = v.secret_id
    where s.env_id = ? and v.revision <= ?
  ), r as (
    select revision, max(created_at) as created_at, count(*) as n, sum(delta) as delta from d group by revision
  ), l as (
    select revision, created_at, n, sum(delta) over (order by revision rows between unbounded preceding and current row) as live from r
  )
  select revision, created_at, n, live from l where revision < ? order by revision desc limit ?`;

const Q = {
  revisions: query(REVISIONS),
  versionsIn: query(`select s.name, v.version, v.revision, v.deleted, v.created_by, v.created_at
    from secret_versions v join secrets s on s.id = v.secret_id
    where s.env_id = ? and v.revision >= ? and v.revision <= ? order by v.revision, s.name collate_c`),
  // For each secret of the env, its newest version written at or before the revision; deleted ones are left out.
  valuesAt: query(`select s.name, s.id, v.version, v.nonce, v.ciphertext, v.dek_version, v.created_at
    from secrets s join secret_versions v on v.secret_id = s.id
    where s.env_id = ? and v.deleted = false
      and v.version = (select max(w.version) from secret_versions w where w.secret_id = s.id and w.revision <= ?)
    order by s.name collate_c`),
  tokenNames: query('select id, name from tokens where id in json_text_list(?)'),
  setRevision: query('update environments set revision = ? where id = ?'),
};

export function historyStoreFactory(db: Db) {
  return {
    /**
     * Revisions of an env that wrote anything, not above `upTo` and below
     * `before`, newest first, at most `limit`. One row per revision (the
     * database sums the versions), so memory follows the page, not the history.
     */
    async revisions(envId: number, upTo: number, before: number, limit: number, tx?: Tx): Promise<RevisionMeta[]> {
      const rows = await sql(db, tx).all(Q.revisions, envId, upTo, before, limit);
      return rows.map((r) => ({
        revision: Number(r.revision),
        createdAt: Number(r.created_at),
        versionCount: Number(r.n),
        live: Number(r.live),
      }));
    },
    /** The versions written by revisions `from` to `to`, in revision order (names byte-wise within one). */
    async versionsIn(envId: number, from: number, to: number, tx?: Tx): Promise<VersionMeta[]> {
      const rows = await sql(db, tx).all(Q.versionsIn, envId, from, to);
      return rows.map((r) => ({
        name: r.name,
        version: Number(r.version),
        revision: Number(r.revision),
        deleted: !!r.deleted,
        createdBy: r.created_by,
        createdAt: Number(r.created_at),
      }));
    },
    /** Ciphertext of the secrets live at `revision`, by name. */
    async valuesAt(envId: number, revision: number, tx?: Tx): Promise<StoredValue[]> {
      const rows = await sql(db, tx).rows(Q.valuesAt, envId, revision);
      return rows.map((c) => ({
        name: c[0],
        secretId: c[1],
        version: c[2],
        nonce: c[3],
        ciphertext: c[4],
        dekVersion: c[5],
        updatedAt: Number(c[6]),
      }));
    },
    /** Names of the tokens among `ids` (actors of history entries); ids that are not tokens are left out. */
    async tokenNames(ids: string[], tx?: Tx): Promise<Map<string, string>> {
      if (ids.length === 0) return new Map();
      const rows = await sql(db, tx).all<{ id: string; name: string }>(Q.tokenNames, JSON.stringify(ids));
      return new Map(rows.map((r) => [r.id, r.name]));
    },
    /**
     * Puts back the revision a write moved (inside the write's transaction,
     * which still holds the row's lock): a write that changed nothing makes
     * no revision.
     */
    async setRevision(envId: number, revision: number, tx: Tx): Promise<void> {
      await sql(db, tx).run(Q.setRevision, revision, envId);
    },
  };
}
export type HistoryStore = ReturnType<typeof historyStoreFactory>;

/** Revisions for versions that have none (an older vault's, or an older backup's): the upgrade migration's rule, in one place. */
export { backfillRevisions } from '../../migrations/20261209000000_env_history.js';
