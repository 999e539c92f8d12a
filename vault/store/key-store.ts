import type { WrappedKey, KeyPurpose } from '../crypto/keyring.js';
import type { Db, Tx } from './db.js';

interface KeyRowDb { id: number; purpose: string; scope: string; version: number; wrapped: Buffer; mk_fingerprint: string }

const toKey = (r: KeyRowDb): WrappedKey & { id: number } => ({
  id: r.id, purpose: r.purpose as KeyPurpose, scope: r.scope, version: r.version, wrapped: Buffer.from(r.wrapped), mkFingerprint: r.mk_fingerprint,
});

export function keyStoreFactory(db: Db) {
  return {
    async insert(k: WrappedKey, tx?: Tx): Promise<void> {
      await (tx ?? db)('keys').insert({ purpose: k.purpose, scope: k.scope, version: k.version, wrapped: k.wrapped, mk_fingerprint: k.mkFingerprint, created_at: Date.now() });
    },
    async get(purpose: KeyPurpose, scope: string, version: number, tx?: Tx) {
      const r = await (tx ?? db)<KeyRowDb>('keys').where({ purpose, scope, version }).first();
      return r ? toKey(r) : null;
    },
    async latest(purpose: KeyPurpose, scope: string, tx?: Tx) {
      const r = await (tx ?? db)<KeyRowDb>('keys').where({ purpose, scope }).orderBy('version', 'desc').first();
      return r ? toKey(r) : null;
    },
    async all(tx?: Tx) {
      const rows = await (tx ?? db)<KeyRowDb>('keys').orderBy('id');
      return rows.map(toKey);
    },
    async updateWrapped(id: number, wrapped: Buffer, mkFingerprint: string, tx?: Tx): Promise<void> {
      await (tx ?? db)('keys').where({ id }).update({ wrapped, mk_fingerprint: mkFingerprint });
    },
    async deleteScope(purpose: KeyPurpose, scope: string, tx?: Tx): Promise<void> {
      await (tx ?? db)('keys').where({ purpose, scope }).del();
    },
  };
}
export type KeyStore = ReturnType<typeof keyStoreFactory>;

export function metaStoreFactory(db: Db) {
  return {
    async get(key: string, tx?: Tx): Promise<string | null> {
      const r = await (tx ?? db)('meta').where('key', key).first();
      return r ? r.value : null;
    },
    async set(key: string, value: string, tx?: Tx): Promise<void> {
      await (tx ?? db)('meta').insert({ key, value }).onConflict('key').merge();
    },
  };
}
export type MetaStore = ReturnType<typeof metaStoreFactory>;
