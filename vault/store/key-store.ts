import type { WrappedKey, KeyPurpose } from '../crypto/keyring.js';
import type { Db, Tx } from './db.js';
import { query, sql } from './sql.js';

interface KeyRowDb {
  id: number;
  purpose: string;
  scope: string;
  version: number;
  wrapped: Buffer;
  mk_fingerprint: string;
}

const toKey = (r: KeyRowDb): WrappedKey & { id: number } => ({
  id: r.id,
  purpose: r.purpose as KeyPurpose,
  scope: r.scope,
  version: r.version,
  wrapped: Buffer.from(r.wrapped),
  mkFingerprint: r.mk_fingerprint,
});

const Q = {
  insert: query('insert into keys (purpose, scope, version, wrapped, mk_fingerprint, created_at) values (?, ?, ?, ?, ?, ?)'),
  get: query('select id, purpose, scope, version, wrapped, mk_fingerprint from keys where purpose = ? and scope = ? and version = ?'),
  /**
   * The key-check row, locked until the transaction ends (PostgreSQL; a
   * SQLite write transaction holds the whole database already). Wrapping a
   * new key takes it shared, rotating the master key exclusive, so a key is
   * never wrapped under a master key a concurrent rotation is replacing,
   * and wraps do not wait for each other.
   */
  checkShare: query(
    "select id, purpose, scope, version, wrapped, mk_fingerprint from keys where purpose = 'check' and scope = 'vault' and version = 1 for_share",
  ),
  checkUpdate: query(
    "select id, purpose, scope, version, wrapped, mk_fingerprint from keys where purpose = 'check' and scope = 'vault' and version = 1 for_update",
  ),
  latest: query(
    'select id, purpose, scope, version, wrapped, mk_fingerprint from keys where purpose = ? and scope = ? order by version desc limit 1',
  ),
  all: query('select id, purpose, scope, version, wrapped, mk_fingerprint from keys order by id'),
  updateWrapped: query('update keys set wrapped = ?, mk_fingerprint = ? where id = ?'),
  deleteScope: query('delete from keys where purpose = ? and scope = ?'),
  metaGet: query('select value from meta where key = ?'),
  metaSet: query('insert into meta (key, value) values (?, ?) on conflict (key) do update set value = excluded.value'),
  metaDelete: query('delete from meta where key = ?'),
};

export function keyStoreFactory(db: Db) {
  return {
    async insert(k: WrappedKey, tx?: Tx): Promise<void> {
      await sql(db, tx).run(Q.insert, k.purpose, k.scope, k.version, k.wrapped, k.mkFingerprint, Date.now());
    },
    async get(purpose: KeyPurpose, scope: string, version: number, tx?: Tx) {
      const r = await sql(db, tx).get<KeyRowDb>(Q.get, purpose, scope, version);
      return r ? toKey(r) : null;
    },
    /** The key-check row, locked for the rest of `tx` (see Q.checkShare). */
    async checkLocked(tx: Tx, mode: 'share' | 'update') {
      const r = await sql(db, tx).get<KeyRowDb>(mode === 'share' ? Q.checkShare : Q.checkUpdate);
      return r ? toKey(r) : null;
    },
    async latest(purpose: KeyPurpose, scope: string, tx?: Tx) {
      const r = await sql(db, tx).get<KeyRowDb>(Q.latest, purpose, scope);
      return r ? toKey(r) : null;
    },
    async all(tx?: Tx) {
      return (await sql(db, tx).all<KeyRowDb>(Q.all)).map(toKey);
    },
    async updateWrapped(id: number, wrapped: Buffer, mkFingerprint: string, tx?: Tx): Promise<void> {
      await sql(db, tx).run(Q.updateWrapped, wrapped, mkFingerprint, id);
    },
    async deleteScope(purpose: KeyPurpose, scope: string, tx?: Tx): Promise<void> {
      await sql(db, tx).run(Q.deleteScope, purpose, scope);
    },
  };
}
export type KeyStore = ReturnType<typeof keyStoreFactory>;

export function metaStoreFactory(db: Db) {
  return {
    async get(key: string, tx?: Tx): Promise<string | null> {
      const r = await sql(db, tx).get<{ value: string }>(Q.metaGet, key);
      return r ? r.value : null;
    },
    async set(key: string, value: string, tx?: Tx): Promise<void> {
      await sql(db, tx).run(Q.metaSet, key, value);
    },
    async delete(key: string, tx?: Tx): Promise<void> {
      await sql(db, tx).run(Q.metaDelete, key);
    },
  };
}
export type MetaStore = ReturnType<typeof metaStoreFactory>;
