import { isPostgres, type Db, type Tx } from './db.js';
import { lookupBatch } from './lookup-batch.js';
import { query, sql } from './sql.js';

export interface ProjectRow {
  id: number;
  name: string;
  dekVersion: number;
  createdAt: number;
}
export interface EnvRow {
  id: number;
  projectId: number;
  name: string;
  revision: number;
  createdAt: number;
}

interface ProjectRowDb {
  id: number;
  name: string;
  dek_version: number;
  created_at: number;
}
interface EnvRowDb {
  id: number;
  project_id: number;
  name: string;
  revision: number;
  created_at: number;
}

const toProject = (r: ProjectRowDb): ProjectRow => ({ id: r.id, name: r.name, dekVersion: r.dek_version, createdAt: Number(r.created_at) });
const toEnv = (r: EnvRowDb): EnvRow => ({
  id: r.id,
  projectId: r.project_id,
  name: r.name,
  revision: Number(r.revision),
  createdAt: Number(r.created_at),
});

const PROJECT = 'id, name, dek_version, created_at';
const ENV = 'id, project_id, name, revision, created_at';

const Q = {
  listProjects: query(`select ${PROJECT} from projects order by name`),
  project: query(`select ${PROJECT} from projects where name = ?`),
  projectById: query(`select ${PROJECT} from projects where id = ?`),
  createProject: query(
    `insert into projects (name, dek_version, created_at) values (?, 1, ?) on conflict (name) do ` + `nothing returning ${PROJECT}`,
  ),
  deleteProject: query('delete from projects where id = ?'),
  setDekVersion: query('update projects set dek_version = ? where id = ?'),
  listEnvs: query(`select ${ENV} from environments where project_id = ? order by name`),
  env: query(`select ${ENV} from environments where project_id = ? and name = ?`),
  projectEnv: query(
    `select p.id as p_id, p.name as p_name, p.dek_version, p.created_at as p_created_at, e.id as ` +
      `e_id, e.name as e_name, e.revision, e.created_at as e_created_at
    from projects p left join ` +
      `environments e on e.project_id = p.id and e.name = ? where p.name = ?`,
  ),
  // PostgreSQL, outside a transaction: the lookups of concurrent requests in one statement (lookup-batch.ts).
  projectEnvMany: query(
    `select k.p as k_p, k.e as k_e, p.id as p_id, p.name as p_name, p.dek_version, p.created_at as ` +
      `p_created_at, e.id as e_id, e.name as e_name, e.revision, e.created_at as e_created_at
    from ` +
      `unnest(?::text[], ?::text[]) as k(p, e) join projects p on p.name = k.p left join environments e ` +
      `on e.project_id = p.id and e.name = k.e`,
  ),
  createEnv: query(
    `insert into environments (project_id, name, revision, created_at) values (?, ?, 0, ?) on ` +
      `conflict (project_id, name) do nothing returning ${ENV}`,
  ),
  deleteEnv: query('delete from environments where id = ?'),
  // A write's first statement: finds its project and environment and moves the revision, one round trip.
  bumpByName: query(
    `update environments set revision = revision + 1
    where project_id = (select id from projects ` +
      `where name = ?) and name = ?
    returning id as e_id, name as e_name, revision, created_at as ` +
      `e_created_at, project_id as p_id,
      (select name from projects where id = ` +
      `environments.project_id) as p_name,
      (select dek_version from projects where id = ` +
      `environments.project_id) as dek_version,
      (select created_at from projects where id = ` +
      `environments.project_id) as p_created_at`,
  ),
  revision: query('select revision from environments where id = ?'),
  revisionShared: query('select revision from environments where id = ? for_share'),
  lockEnv: query('select id from environments where id = ? for_update'),
};

type ProjectEnv = { project: ProjectRow | null; env: EnvRow | null };

function projectEnvOf(r: any): ProjectEnv {
  const project = toProject({ id: r.p_id, name: r.p_name, dek_version: r.dek_version, created_at: r.p_created_at });
  const env =
    r.e_id == null ? null : toEnv({ id: r.e_id, project_id: r.p_id, name: r.e_name, revision: r.revision, created_at: r.e_created_at });
  return { project, env };
}

const pairKey = (k: [string, string]) => `${k[0]}\u0000${k[1]}`;

export function projectStoreFactory(db: Db) {
  const batch = isPostgres(db)
    ? lookupBatch<[string, string], ProjectEnv>(async (keys) => {
        const rows = await sql(db).all(
          Q.projectEnvMany,
          keys.map((k) => k[0]),
          keys.map((k) => k[1]),
        );
        return new Map(rows.map((r) => [pairKey([r.k_p, r.k_e]), projectEnvOf(r)]));
      }, pairKey)
    : null;
  return {
    async listProjects(tx?: Tx): Promise<ProjectRow[]> {
      return (await sql(db, tx).all<ProjectRowDb>(Q.listProjects)).map(toProject);
    },
    async getProject(name: string, tx?: Tx): Promise<ProjectRow | null> {
      const r = await sql(db, tx).get<ProjectRowDb>(Q.project, name);
      return r ? toProject(r) : null;
    },
    async getProjectById(id: number, tx?: Tx): Promise<ProjectRow | null> {
      const r = await sql(db, tx).get<ProjectRowDb>(Q.projectById, id);
      return r ? toProject(r) : null;
    },
    /** Returns null when the name is taken. */
    async createProject(name: string, tx: Tx): Promise<ProjectRow | null> {
      const r = await sql(db, tx).get<ProjectRowDb>(Q.createProject, name, Date.now());
      return r ? toProject(r) : null;
    },
    async deleteProject(id: number, tx: Tx): Promise<void> {
      await sql(db, tx).run(Q.deleteProject, id);
    },
    async setDekVersion(id: number, version: number, tx: Tx): Promise<void> {
      await sql(db, tx).run(Q.setDekVersion, version, id);
    },
    async listEnvs(projectId: number, tx?: Tx): Promise<EnvRow[]> {
      return (await sql(db, tx).all<EnvRowDb>(Q.listEnvs, projectId)).map(toEnv);
    },
    async getEnv(projectId: number, name: string, tx?: Tx): Promise<EnvRow | null> {
      const r = await sql(db, tx).get<EnvRowDb>(Q.env, projectId, name);
      return r ? toEnv(r) : null;
    },
    /** A project and one of its environments by name, in one query (either may be null). */
    async getProjectEnv(projectName: string, envName: string, tx?: Tx): Promise<ProjectEnv> {
      if (batch && (tx === undefined || tx === db)) return (await batch.load([projectName, envName])) ?? { project: null, env: null };
      const r = await sql(db, tx).get(Q.projectEnv, envName, projectName);
      return r ? projectEnvOf(r) : { project: null, env: null };
    },
    async createEnv(projectId: number, name: string, tx: Tx): Promise<EnvRow | null> {
      const r = await sql(db, tx).get<EnvRowDb>(Q.createEnv, projectId, name, Date.now());
      return r ? toEnv(r) : null;
    },
    async deleteEnv(id: number, tx: Tx): Promise<void> {
      await sql(db, tx).run(Q.deleteEnv, id);
    },
    /**
     * Bumps the env revision and returns the new value. On PostgreSQL the row
     * lock this takes serialises writers of one env until commit; do it first
     * in every write transaction.
     */
    /** Moves the revision of an environment named by its project and name; the rows with the new revision, or null when either does not exist. */
    async bumpRevisionByName(projectName: string, envName: string, tx: Tx): Promise<{ project: ProjectRow; env: EnvRow } | null> {
      const r = await sql(db, tx).get(Q.bumpByName, projectName, envName);
      return r ? (projectEnvOf(r) as { project: ProjectRow; env: EnvRow }) : null;
    },
    /**
     * The env's revision now (null when it is gone). With 'share', PostgreSQL
     * also takes a FOR SHARE row lock: it waits for a writer of the env to
     * commit and keeps the next one out until this transaction ends.
     */
    async revisionOf(envId: number, tx: Tx, lock?: 'share'): Promise<number | null> {
      const r = await sql(db, tx).get<{ revision: number }>(lock === 'share' ? Q.revisionShared : Q.revision, envId);
      return r ? Number(r.revision) : null;
    },
    /** Locks the env row (PostgreSQL; SQLite's write transaction already excludes every other writer) without changing it. */
    async lockEnv(envId: number, tx: Tx): Promise<void> {
      await sql(db, tx).get(Q.lockEnv, envId);
    },
  };
}
export type ProjectStore = ReturnType<typeof projectStoreFactory>;
