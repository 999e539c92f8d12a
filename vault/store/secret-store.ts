import type { Db, Tx } from './db.js';
import { query, sql } from './sql.js';

export interface StoredValue {
  name: string;
  secretId: number;
  version: number;
  nonce: Buffer;
  ciphertext: Buffer;
  dekVersion: number;
  updatedAt: number;
}
export interface SecretRow {
  id: number;
  envId: number;
  name: string;
  version: number;
  deleted: boolean;
  createdAt: number;
  updatedAt: number;
}
export interface VersionRow {
  secretId: number;
  version: number;
  nonce: Buffer | null;
  ciphertext: Buffer | null;
  dekVersion: number | null;
  deleted: boolean;
  createdBy: string;
  createdAt: number;
}

// Both drivers hand out a fresh Buffer per binary value: rows are used as they come, without a copy.
const toSecret = (r: any): SecretRow => ({
  id: r.id,
  envId: r.env_id,
  name: r.name,
  version: r.version,
  deleted: !!r.deleted,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});
const toVersion = (r: any): VersionRow => ({
  secretId: r.secret_id,
  version: r.version,
  nonce: r.nonce ?? null,
  ciphertext: r.ciphertext ?? null,
  dekVersion: r.dek_version,
  deleted: !!r.deleted,
  createdBy: r.created_by,
  createdAt: Number(r.created_at),
});

const SECRET = 'id, env_id, name, version, deleted, created_at, updated_at';
const LIVE_VALUES =
  `select s.name, s.id, s.version, v.nonce, v.ciphertext, v.dek_version, s.updated_at
  from ` +
  `secrets s join secret_versions v on v.secret_id = s.id and v.version = s.version
  where ` +
  `s.env_id = ? and s.deleted = false`;

const Q = {
  liveValues: query(`${LIVE_VALUES} order by s.name`),
  liveValuesNamed: query(`${LIVE_VALUES} and s.name in json_text_list(?) order by s.name`),
  listLive: query(`select ${SECRET} from secrets where env_id = ? and deleted = false order by name`),
  // Bytes of the live names and values (a value is its ciphertext less the AEAD tag, the first parameter):
  // in total, and of the names in a list, in one statement (a write checks its env's size with it).
  liveSize: query(
    `select coalesce(sum(octet_length(s.name) + octet_length(v.ciphertext) - ?), 0) as total,
    ` +
      `coalesce(sum(case when s.name in json_text_list(?) then octet_length(s.name) + ` +
      `octet_length(v.ciphertext) - ? else 0 end), 0) as named
    from secrets s join secret_versions ` +
      `v on v.secret_id = s.id and v.version = s.version where s.env_id = ? and s.deleted = false`,
  ),
  countLive: query('select count(*) as n from secrets where env_id = ? and deleted = false'),
  get: query(`select ${SECRET} from secrets where env_id = ? and name = ?`),
  getMany: query(`select ${SECRET} from secrets where env_id = ? and name in json_text_list(?)`),
  create: query(
    `insert into secrets (env_id, name, version, deleted, created_at, updated_at) values (?, ?, 0, false, ?, ?) returning ${SECRET}`,
  ),
  insertVersion: query(
    'insert into secret_versions (secret_id, version, nonce, ciphertext, dek_version, deleted, ' +
      'created_by, created_at, revision) values (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  ),
  setVersion: query('update secrets set version = ?, deleted = ?, updated_at = ? where id = ?'),
  versions: query(
    'select secret_id, version, nonce, ciphertext, dek_version, deleted, created_by, created_at from ' +
      'secret_versions where secret_id = ? order by version desc',
  ),
  versionsBelowDek: query(
    `select v.id, v.version, v.nonce, v.ciphertext, v.dek_version, s.name, s.env_id
    from ` +
      `secret_versions v join secrets s on s.id = v.secret_id join environments e on e.id = s.env_id
   ` +
      ` where e.project_id = ? and v.deleted = false and v.dek_version < ? order by v.id limit ?`,
  ),
  replaceCiphertext: query('update secret_versions set nonce = ?, ciphertext = ?, dek_version = ? where id = ?'),
};

export function secretStoreFactory(db: Db) {
  return {
    /** Current ciphertext of every live secret in an env, by name. */
    async liveValues(envId: number, names: string[] | null, tx?: Tx): Promise<StoredValue[]> {
      const r = sql(db, tx);
      const rows = names ? await r.rows(Q.liveValuesNamed, envId, JSON.stringify(names)) : await r.rows(Q.liveValues, envId);
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
    async listLive(envId: number, tx?: Tx): Promise<SecretRow[]> {
      return (await sql(db, tx).all(Q.listLive, envId)).map(toSecret);
    },
    /**
     * UTF-8 bytes of the live names and values of an env, read from the ciphertext lengths (no
     * decryption): in total, and of those among `names` (what a write replaces or deletes).
     */
    async liveSize(envId: number, names: string[], tagBytes: number, tx?: Tx): Promise<{ total: number; named: number }> {
      const r = await sql(db, tx).get<{ total: number | string; named: number | string }>(
        Q.liveSize,
        tagBytes,
        JSON.stringify(names),
        tagBytes,
        envId,
      );
      return { total: Number(r?.total ?? 0), named: Number(r?.named ?? 0) };
    },
    async countLive(envId: number, tx?: Tx): Promise<number> {
      const r = await sql(db, tx).get<{ n: number }>(Q.countLive, envId);
      return Number(r?.n ?? 0);
    },
    async get(envId: number, name: string, tx?: Tx): Promise<SecretRow | null> {
      const r = await sql(db, tx).get(Q.get, envId, name);
      return r ? toSecret(r) : null;
    },
    async getMany(envId: number, names: string[], tx?: Tx): Promise<SecretRow[]> {
      if (names.length === 0) return [];
      return (await sql(db, tx).all(Q.getMany, envId, JSON.stringify(names))).map(toSecret);
    },
    async createSecret(envId: number, name: string, tx: Tx): Promise<SecretRow> {
      const now = Date.now();
      return toSecret(await sql(db, tx).get(Q.create, envId, name, now, now));
    },
    /** `revision`: the environment's revision this write makes (env history, history-store.ts). */
    async writeVersion(
      secretId: number,
      version: number,
      v: { nonce: Buffer; ciphertext: Buffer; dekVersion: number } | null,
      createdBy: string,
      revision: number,
      tx: Tx,
    ): Promise<void> {
      const now = Date.now();
      const r = sql(db, tx);
      await r.run(
        Q.insertVersion,
        secretId,
        version,
        v?.nonce ?? null,
        v?.ciphertext ?? null,
        v?.dekVersion ?? null,
        v === null,
        createdBy,
        now,
        revision,
      );
      await r.run(Q.setVersion, version, v === null, now, secretId);
    },
    async versions(secretId: number, tx?: Tx): Promise<VersionRow[]> {
      return (await sql(db, tx).all(Q.versions, secretId)).map(toVersion);
    },
    /** Version rows of a project still encrypted under an older DEK version, in batches. */
    async versionsBelowDek(projectId: number, dekVersion: number, limit: number, tx: Tx) {
      const rows = await sql(db, tx).all(Q.versionsBelowDek, projectId, dekVersion, limit);
      return rows.map((r) => ({
        id: Number(r.id),
        version: r.version as number,
        nonce: r.nonce as Buffer,
        ciphertext: r.ciphertext as Buffer,
        dekVersion: r.dek_version as number,
        name: r.name as string,
        envId: r.env_id as number,
      }));
    },
    async replaceCiphertext(versionRowId: number, v: { nonce: Buffer; ciphertext: Buffer; dekVersion: number }, tx: Tx): Promise<void> {
      await sql(db, tx).run(Q.replaceCiphertext, v.nonce, v.ciphertext, v.dekVersion, versionRowId);
    },
  };
}
export type SecretStore = ReturnType<typeof secretStoreFactory>;
