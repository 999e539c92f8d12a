import type { Db, Tx } from './db.js';
import { isPostgres } from './db.js';
import { fastSql, fastTx } from './sqlite-fast.js';

export interface ProjectRow { id: number; name: string; dekVersion: number; createdAt: number }
export interface EnvRow { id: number; projectId: number; name: string; revision: number; createdAt: number }

const toProject = (r: any): ProjectRow => ({ id: r.id, name: r.name, dekVersion: r.dek_version, createdAt: Number(r.created_at) });
const toEnv = (r: any): EnvRow => ({ id: r.id, projectId: r.project_id, name: r.name, revision: Number(r.revision), createdAt: Number(r.created_at) });

const PROJECT_ENV_SQL = `select p.id as p_id, p.name as p_name, p.dek_version, p.created_at as p_created_at, e.id as e_id, e.name as e_name, e.revision, e.created_at as e_created_at
  from projects p left join environments e on e.project_id = p.id and e.name = ? where p.name = ?`;

export function projectStoreFactory(db: Db) {
  return {
    async listProjects(tx?: Tx): Promise<ProjectRow[]> {
      return (await (tx ?? db)('projects').orderBy('name')).map(toProject);
    },
    async getProject(name: string, tx?: Tx): Promise<ProjectRow | null> {
      const f = fastSql(db, tx);
      const r = f ? f.get('select * from projects where name = ?', name) : await (tx ?? db)('projects').where({ name }).first();
      return r ? toProject(r) : null;
    },
    async getProjectById(id: number, tx?: Tx): Promise<ProjectRow | null> {
      const r = await (tx ?? db)('projects').where({ id }).first();
      return r ? toProject(r) : null;
    },
    /** Returns null when the name is taken. */
    async createProject(name: string, tx: Tx): Promise<ProjectRow | null> {
      const rows = await tx('projects').insert({ name, dek_version: 1, created_at: Date.now() }).onConflict('name').ignore().returning('*');
      return rows.length ? toProject(rows[0]) : null;
    },
    async deleteProject(id: number, tx: Tx): Promise<void> {
      await tx('projects').where({ id }).del();
    },
    async setDekVersion(id: number, version: number, tx: Tx): Promise<void> {
      await tx('projects').where({ id }).update({ dek_version: version });
    },
    async listEnvs(projectId: number, tx?: Tx): Promise<EnvRow[]> {
      return (await (tx ?? db)('environments').where({ project_id: projectId }).orderBy('name')).map(toEnv);
    },
    async getEnv(projectId: number, name: string, tx?: Tx): Promise<EnvRow | null> {
      const f = fastSql(db, tx);
      const r = f ? f.get('select * from environments where project_id = ? and name = ?', projectId, name) : await (tx ?? db)('environments').where({ project_id: projectId, name }).first();
      return r ? toEnv(r) : null;
    },
    /** A project and one of its environments by name, in one query (either may be null). */
    async getProjectEnv(projectName: string, envName: string, tx?: Tx): Promise<{ project: ProjectRow | null; env: EnvRow | null }> {
      const f = fastSql(db, tx);
      const r: any = f
        ? f.get(PROJECT_ENV_SQL, envName, projectName)
        : await (tx ?? db)('projects as p')
          .leftJoin('environments as e', function () { this.on('e.project_id', '=', 'p.id').andOnVal('e.name', '=', envName); })
          .where('p.name', projectName)
          .first('p.id as p_id', 'p.name as p_name', 'p.dek_version', 'p.created_at as p_created_at', 'e.id as e_id', 'e.name as e_name', 'e.revision', 'e.created_at as e_created_at');
      if (!r) return { project: null, env: null };
      const project = toProject({ id: r.p_id, name: r.p_name, dek_version: r.dek_version, created_at: r.p_created_at });
      const env = r.e_id == null ? null : toEnv({ id: r.e_id, project_id: r.p_id, name: r.e_name, revision: r.revision, created_at: r.e_created_at });
      return { project, env };
    },
    async createEnv(projectId: number, name: string, tx: Tx): Promise<EnvRow | null> {
      const rows = await tx('environments').insert({ project_id: projectId, name, revision: 0, created_at: Date.now() }).onConflict(['project_id', 'name']).ignore().returning('*');
      return rows.length ? toEnv(rows[0]) : null;
    },
    async deleteEnv(id: number, tx: Tx): Promise<void> {
      await tx('environments').where({ id }).del();
    },
    /**
     * Bumps the env revision and returns the new value. On PostgreSQL the row
     * lock this takes serialises writers of one env until commit; do it first
     * in every write transaction.
     */
    async bumpRevision(envId: number, tx: Tx): Promise<number> {
      const f = fastTx(tx);
      if (f) return Number(f.get<{ revision: number }>('update environments set revision = revision + 1 where id = ? returning revision', envId)!.revision);
      const rows = await tx('environments').where({ id: envId }).increment('revision', 1).returning(['revision']);
      return Number(rows[0].revision);
    },
    /**
     * The env's revision now (null when it is gone). With 'share', PostgreSQL
     * also takes a FOR SHARE row lock: it waits for a writer of the env to
     * commit and keeps the next one out until this transaction ends.
     */
    async revisionOf(envId: number, tx: Tx, lock?: 'share'): Promise<number | null> {
      const f = fastTx(tx);
      if (f) {
        const r = f.get<{ revision: number }>('select revision from environments where id = ?', envId);
        return r ? Number(r.revision) : null;
      }
      const q = tx('environments').where({ id: envId }).first('revision');
      if (lock === 'share' && isPostgres(tx)) q.forShare();
      const r = await q;
      return r ? Number(r.revision) : null;
    },
    /** Locks the env row (PostgreSQL) without changing it. */
    async lockEnv(envId: number, tx: Tx): Promise<void> {
      if (isPostgres(tx)) await tx.raw('select id from environments where id = ? for update', [envId]);
    },
  };
}
export type ProjectStore = ReturnType<typeof projectStoreFactory>;
