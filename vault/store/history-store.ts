import type { Db, Tx } from './db.js';
import { query, sql } from './sql.js';
import type { StoredValue } from './secret-store.js';

/** One version of one secret of an environment, without its value: what env history is built from. */
export interface VersionMeta { name: string; version: number; revision: number; deleted: boolean; createdBy: string; createdAt: number }

const Q = {
  envVersions: query(`select s.name, v.version, v.revision, v.deleted, v.created_by, v.created_at
    from secret_versions v join secrets s on s.id = v.secret_id
    where s.env_id = ? and v.revision <= ? order by v.revision, s.name collate_c`),
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
    /** Every version of an env written at or before `upTo`, in revision order (names byte-wise within one). */
    async envVersions(envId: number, upTo: number, tx?: Tx): Promise<VersionMeta[]> {
      const rows = await sql(db, tx).all(Q.envVersions, envId, upTo);
      return rows.map((r) => ({ name: r.name, version: Number(r.version), revision: Number(r.revision), deleted: !!r.deleted, createdBy: r.created_by, createdAt: Number(r.created_at) }));
    },
    /** Ciphertext of the secrets live at `revision`, by name. */
    async valuesAt(envId: number, revision: number, tx?: Tx): Promise<StoredValue[]> {
      const rows = await sql(db, tx).rows(Q.valuesAt, envId, revision);
      return rows.map((c) => ({ name: c[0], secretId: c[1], version: c[2], nonce: c[3], ciphertext: c[4], dekVersion: c[5], updatedAt: Number(c[6]) }));
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
