import type { Db, Tx } from './db.js';
import { query, sql } from './sql.js';

/** A secret's lifecycle policy (migrations/20261208120000_secret_policies.ts). */
export interface PolicyRow {
  secretId: number;
  rotateEveryMs: number | null;
  expiresAt: number | null;
  expiresVersion: number | null;
  /** JSON {charset, length} of a generated secret. */
  generator: string | null;
  auto: boolean;
  remindedDueAt: number | null;
}

/** A policy as a backup carries it (format 4): by project, env and secret name, not by id. */
export interface BackupPolicy extends Omit<PolicyRow, 'secretId'> {
  project: string;
  env: string;
  name: string;
  updatedAt: number;
}

/** A live secret with a policy, named, with its current version's time. */
export interface PolicedSecret extends PolicyRow {
  project: string;
  env: string;
  key: string;
  version: number;
  updatedAt: number;
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const toPolicy = (r: any): PolicyRow => ({
  secretId: Number(r.secret_id),
  rotateEveryMs: num(r.rotate_every_ms),
  expiresAt: num(r.expires_at),
  expiresVersion: num(r.expires_version),
  generator: r.generator ?? null,
  auto: !!r.auto,
  remindedDueAt: num(r.reminded_due_at),
});
const toPoliced = (r: any): PolicedSecret => ({
  ...toPolicy(r),
  project: r.project,
  env: r.env,
  key: r.key,
  version: Number(r.version),
  updatedAt: Number(r.updated_at),
});

const POLICY = 'secret_id, rotate_every_ms, expires_at, expires_version, generator, auto, reminded_due_at';
const POLICED =
  `select x.secret_id, x.rotate_every_ms, x.expires_at, x.expires_version, x.generator, x.auto, ` +
  `x.reminded_due_at,
    p.name as project, e.name as env, s.name as key, s.version, s.updated_at
 ` +
  ` from secret_policies x join secrets s on s.id = x.secret_id join environments e on e.id = ` +
  `s.env_id join projects p on p.id = e.project_id
  where s.deleted = false`;
/** Due: its rotation period since the current version ran out, or the current version's expiry passed. */
const DUE =
  `((x.rotate_every_ms is not null and s.updated_at + x.rotate_every_ms <= ?)
  or (x.expires_at is ` + `not null and x.expires_version = s.version and x.expires_at <= ?))`;

const Q = {
  get: query(`select ${POLICY} from secret_policies where secret_id = ?`),
  upsert: query(
    `insert into secret_policies (secret_id, rotate_every_ms, expires_at, expires_version, generator, ` +
      `auto, updated_at) values (?, ?, ?, ?, ?, ?, ?)
    on conflict (secret_id) do update set ` +
      `rotate_every_ms = excluded.rotate_every_ms, expires_at = excluded.expires_at, expires_version = ` +
      `excluded.expires_version,
    generator = excluded.generator, auto = excluded.auto, updated_at = ` +
      `excluded.updated_at`,
  ),
  remove: query('delete from secret_policies where secret_id = ?'),
  due: query(`${POLICED} and ${DUE} order by p.name, e.name, s.name limit ?`),
  countDue: query(
    `select count(*) as n from secret_policies x join secrets s on s.id = x.secret_id where ` + `s.deleted = false and ${DUE}`,
  ),
  remind: query(
    'update secret_policies set reminded_due_at = ? where secret_id = ? and (reminded_due_at is null ' + 'or reminded_due_at <> ?)',
  ),
  policed: query(`${POLICED} and s.id = ?`),
  // Deleted secrets keep their policy (it applies again when the name is written again): backed up too.
  backup: query(
    `select p.name as project, e.name as env, s.name as name, x.rotate_every_ms, x.expires_at, ` +
      `x.expires_version, x.generator, x.auto, x.reminded_due_at, x.updated_at
    from secret_policies ` +
      `x join secrets s on s.id = x.secret_id join environments e on e.id = s.env_id join projects p on ` +
      `p.id = e.project_id
    order by p.name collate_c, e.name collate_c, s.name collate_c`,
  ),
  restore: query(
    `insert into secret_policies (secret_id, rotate_every_ms, expires_at, expires_version, generator, ` +
      `auto, reminded_due_at, updated_at)
    select s.id, ?, ?, ?, ?, ?, ?, ? from secrets s join ` +
      `environments e on e.id = s.env_id join projects p on p.id = e.project_id
    where p.name = ? ` +
      `and e.name = ? and s.name = ?`,
  ),
};

export function policyStoreFactory(db: Db) {
  return {
    async get(secretId: number, tx?: Tx): Promise<PolicyRow | null> {
      const r = await sql(db, tx).get(Q.get, secretId);
      return r ? toPolicy(r) : null;
    },
    async set(p: Omit<PolicyRow, 'remindedDueAt'>, tx: Tx): Promise<void> {
      await sql(db, tx).run(Q.upsert, p.secretId, p.rotateEveryMs, p.expiresAt, p.expiresVersion, p.generator, p.auto, Date.now());
    },
    async remove(secretId: number, tx: Tx): Promise<void> {
      await sql(db, tx).run(Q.remove, secretId);
    },
    /** The live secret `secretId` with its policy, or null (no policy, or deleted). */
    async policed(secretId: number, tx?: Tx): Promise<PolicedSecret | null> {
      const r = await sql(db, tx).get(Q.policed, secretId);
      return r ? toPoliced(r) : null;
    },
    /** Live secrets overdue at `now`, by project, env and name. */
    async due(now: number, limit: number, tx?: Tx): Promise<PolicedSecret[]> {
      return (await sql(db, tx).all(Q.due, now, now, limit)).map(toPoliced);
    },
    /** Every policy, in byte-wise name order on both engines (backups). */
    async forBackup(tx: Tx): Promise<BackupPolicy[]> {
      return (await sql(db, tx).all(Q.backup)).map((r) => {
        const { secretId: _, ...rest } = toPolicy({ ...r, secret_id: 0 });
        return { project: r.project, env: r.env, name: r.name, ...rest, updatedAt: Number(r.updated_at) };
      });
    },
    /** Restores one policy onto the secret of that name; false when there is no such secret. */
    async restore(p: BackupPolicy, tx: Tx): Promise<boolean> {
      return (
        (await sql(db, tx).run(
          Q.restore,
          p.rotateEveryMs,
          p.expiresAt,
          p.expiresVersion,
          p.generator,
          p.auto,
          p.remindedDueAt,
          p.updatedAt,
          p.project,
          p.env,
          p.name,
        )) === 1
      );
    },
    async countDue(now: number, tx?: Tx): Promise<number> {
      return Number((await sql(db, tx).get<{ n: number }>(Q.countDue, now, now))?.n ?? 0);
    },
    /** Notes that the reminder for due time `dueAt` was sent; false when it already was (by this or another server). */
    async markReminded(secretId: number, dueAt: number, tx: Tx): Promise<boolean> {
      return (await sql(db, tx).run(Q.remind, dueAt, secretId, dueAt)) === 1;
    },
  };
}
export type PolicyStore = ReturnType<typeof policyStoreFactory>;
