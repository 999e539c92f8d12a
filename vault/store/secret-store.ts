import type { Db, Tx } from './db.js';
import { fastSql, fastTx } from './sqlite-fast.js';

export interface StoredValue { name: string; secretId: number; version: number; nonce: Buffer; ciphertext: Buffer; dekVersion: number; updatedAt: number }
export interface SecretRow { id: number; envId: number; name: string; version: number; deleted: boolean; createdAt: number; updatedAt: number }
export interface VersionRow { secretId: number; version: number; nonce: Buffer | null; ciphertext: Buffer | null; dekVersion: number | null; deleted: boolean; createdBy: string; createdAt: number }

const toSecret = (r: any): SecretRow => ({ id: r.id, envId: r.env_id, name: r.name, version: r.version, deleted: !!r.deleted, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at) });
const toVersion = (r: any): VersionRow => ({
  secretId: r.secret_id, version: r.version, nonce: r.nonce ? Buffer.from(r.nonce) : null, ciphertext: r.ciphertext ? Buffer.from(r.ciphertext) : null,
  dekVersion: r.dek_version, deleted: !!r.deleted, createdBy: r.created_by, createdAt: Number(r.created_at),
});

export function secretStoreFactory(db: Db) {
  return {
    /** Current ciphertext of every live secret in an env, by name. */
    async liveValues(envId: number, names: string[] | null, tx?: Tx): Promise<StoredValue[]> {
      const f = fastSql(db, tx);
      if (f) {
        const sql = `select s.name, s.id as secret_id, s.version, v.nonce, v.ciphertext, v.dek_version, s.updated_at
          from secrets s join secret_versions v on v.secret_id = s.id and v.version = s.version
          where s.env_id = ? and s.deleted = 0${names ? ' and s.name in (select value from json_each(?))' : ''} order by s.name`;
        const rows = names ? f.all(sql, envId, JSON.stringify(names)) : f.all(sql, envId);
        // better-sqlite3 hands out a fresh Buffer per BLOB: no copy needed.
        return rows.map((r) => ({ name: r.name, secretId: r.secret_id, version: r.version, nonce: r.nonce, ciphertext: r.ciphertext, dekVersion: r.dek_version, updatedAt: Number(r.updated_at) }));
      }
      const q = (tx ?? db)('secrets as s')
        .join('secret_versions as v', function () { this.on('v.secret_id', '=', 's.id').andOn('v.version', '=', 's.version'); })
        .where('s.env_id', envId).andWhere('s.deleted', false)
        .select('s.name', 's.id as secret_id', 's.version', 'v.nonce', 'v.ciphertext', 'v.dek_version', 's.updated_at')
        .orderBy('s.name');
      if (names) q.whereIn('s.name', names);
      const rows = await q;
      return rows.map((r: any) => ({ name: r.name, secretId: r.secret_id, version: r.version, nonce: Buffer.from(r.nonce), ciphertext: Buffer.from(r.ciphertext), dekVersion: r.dek_version, updatedAt: Number(r.updated_at) }));
    },
    async listLive(envId: number, tx?: Tx): Promise<SecretRow[]> {
      const f = fastSql(db, tx);
      if (f) return f.all('select * from secrets where env_id = ? and deleted = 0 order by name', envId).map(toSecret);
      return (await (tx ?? db)('secrets').where({ env_id: envId, deleted: false }).orderBy('name')).map(toSecret);
    },
    async countLive(envId: number, tx?: Tx): Promise<number> {
      const f = fastSql(db, tx);
      if (f) return Number(f.get<{ n: number }>('select count(*) as n from secrets where env_id = ? and deleted = 0', envId)!.n);
      const r = await (tx ?? db)('secrets').where({ env_id: envId, deleted: false }).count({ n: '*' }).first();
      return Number(r?.n ?? 0);
    },
    async get(envId: number, name: string, tx?: Tx): Promise<SecretRow | null> {
      const f = fastSql(db, tx);
      const r = f ? f.get('select * from secrets where env_id = ? and name = ?', envId, name) : await (tx ?? db)('secrets').where({ env_id: envId, name }).first();
      return r ? toSecret(r) : null;
    },
    async getMany(envId: number, names: string[], tx?: Tx): Promise<SecretRow[]> {
      if (names.length === 0) return [];
      const f = fastSql(db, tx);
      if (f) return f.all('select * from secrets where env_id = ? and name in (select value from json_each(?))', envId, JSON.stringify(names)).map(toSecret);
      const out: SecretRow[] = [];
      // Chunked: SQLite limits bound parameters per statement.
      for (let i = 0; i < names.length; i += 500) {
        out.push(...(await (tx ?? db)('secrets').where({ env_id: envId }).whereIn('name', names.slice(i, i + 500))).map(toSecret));
      }
      return out;
    },
    async createSecret(envId: number, name: string, tx: Tx): Promise<SecretRow> {
      const now = Date.now();
      const f = fastTx(tx);
      if (f) return toSecret(f.get('insert into secrets (env_id, name, version, deleted, created_at, updated_at) values (?, ?, 0, 0, ?, ?) returning *', envId, name, now, now));
      const rows = await tx('secrets').insert({ env_id: envId, name, version: 0, deleted: false, created_at: now, updated_at: now }).returning('*');
      return toSecret(rows[0]);
    },
    async writeVersion(secretId: number, version: number, v: { nonce: Buffer; ciphertext: Buffer; dekVersion: number } | null, createdBy: string, tx: Tx): Promise<void> {
      const now = Date.now();
      const f = fastTx(tx);
      if (f) {
        f.run('insert into secret_versions (secret_id, version, nonce, ciphertext, dek_version, deleted, created_by, created_at) values (?, ?, ?, ?, ?, ?, ?, ?)',
          secretId, version, v?.nonce ?? null, v?.ciphertext ?? null, v?.dekVersion ?? null, v === null ? 1 : 0, createdBy, now);
        f.run('update secrets set version = ?, deleted = ?, updated_at = ? where id = ?', version, v === null ? 1 : 0, now, secretId);
        return;
      }
      await tx('secret_versions').insert({
        secret_id: secretId, version, nonce: v?.nonce ?? null, ciphertext: v?.ciphertext ?? null, dek_version: v?.dekVersion ?? null,
        deleted: v === null, created_by: createdBy, created_at: now,
      });
      await tx('secrets').where({ id: secretId }).update({ version, deleted: v === null, updated_at: now });
    },
    async versions(secretId: number, tx?: Tx): Promise<VersionRow[]> {
      const f = fastSql(db, tx);
      if (f) return f.all('select * from secret_versions where secret_id = ? order by version desc', secretId).map(toVersion);
      return (await (tx ?? db)('secret_versions').where({ secret_id: secretId }).orderBy('version', 'desc')).map(toVersion);
    },
    /** Version rows of a project still encrypted under an older DEK version, in batches. */
    async versionsBelowDek(projectId: number, dekVersion: number, limit: number, tx: Tx) {
      const rows = await tx('secret_versions as v')
        .join('secrets as s', 's.id', 'v.secret_id')
        .join('environments as e', 'e.id', 's.env_id')
        .where('e.project_id', projectId).andWhere('v.deleted', false).andWhere('v.dek_version', '<', dekVersion)
        .select('v.id', 'v.version', 'v.nonce', 'v.ciphertext', 'v.dek_version', 's.name', 's.env_id')
        .orderBy('v.id').limit(limit);
      return rows.map((r: any) => ({ id: Number(r.id), version: r.version, nonce: Buffer.from(r.nonce), ciphertext: Buffer.from(r.ciphertext), dekVersion: r.dek_version, name: r.name as string, envId: r.env_id as number }));
    },
    async replaceCiphertext(versionRowId: number, v: { nonce: Buffer; ciphertext: Buffer; dekVersion: number }, tx: Tx): Promise<void> {
      await tx('secret_versions').where({ id: versionRowId }).update({ nonce: v.nonce, ciphertext: v.ciphertext, dek_version: v.dekVersion });
    },
  };
}
export type SecretStore = ReturnType<typeof secretStoreFactory>;
