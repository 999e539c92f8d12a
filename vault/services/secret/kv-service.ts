import { InvalidRequestError, SecretNotFoundError } from '../../errors.js';
import type { HistoryStore } from '../../store/history-store.js';
import type { ProjectStore } from '../../store/project-store.js';
import type { AuditContext, AuditService } from '../audit/audit-service.js';
import type { Principal } from '../token/token-service.js';
import { seesEnv, seesProject } from '../token/grants.js';
import type { EnvWriter } from './env-writer.js';
import type { HistoryService } from './history-service.js';
import { envLock, type SecretService } from './secret-service.js';
import { dict } from '../../../common/dict.js';

export interface KvServiceDeps {
  projectStore: Pick<ProjectStore, 'listProjects' | 'getProject' | 'listEnvs'>;
  historyStore: HistoryStore;
  history: Pick<HistoryService, 'valuesAt' | 'checkRevision'>;
  writer: EnvWriter;
  audit: Pick<AuditService, 'run'>;
  /** `${...}` references in values read here resolve as on the native routes (docs/lifecycle.md#references). */
  references: Pick<SecretService, 'resolveReferences' | 'keepReferences' | 'checkWrittenReferences'>;
}

/** Vault's metadata of one version. Hush keeps every version, so none is ever destroyed. */
export interface KvVersionMeta {
  created_time: string;
  custom_metadata: null;
  deletion_time: string;
  destroyed: false;
  version: number;
}

const iso = (ms: number) => new Date(ms).toISOString();
const VIA = 'kv-v2';
/** Most revisions a metadata answer lists (the newest). */
const MAX_REVISIONS = 100_000;

/**
 * The Vault KV v2 view of environments (docs/vault-compat.md): the secret
 * at `<project>/<env>` is the env's whole map, and its versions are the
 * env's revisions. A revision whose map is empty reads as deleted.
 */
export function kvServiceFactory({ projectStore, historyStore, history, writer, audit, references: refs }: KvServiceDeps) {
  function toValues(data: Record<string, unknown>, allowNull: boolean): { set: Record<string, string>; del: string[] } {
    const set = dict<string>();
    const del: string[] = [];
    for (const [k, v] of Object.entries(data)) {
      if (v === null && allowNull) del.push(k);
      else if (typeof v === 'string') set[k] = v;
      else
        throw new InvalidRequestError(
          `value of ${k.slice(0, 256)} must be a string: Hush stores environment variables (send numbers and booleans as strings)`,
        );
    }
    writer.assertChange(set, del);
    return { set, del };
  }

  const meta = (revision: number, createdAt: number, deleted: boolean): KvVersionMeta => ({
    created_time: iso(createdAt),
    custom_metadata: null,
    deletion_time: deleted ? iso(createdAt) : '',
    destroyed: false,
    version: revision,
  });

  async function write(
    project: string,
    env: string,
    mode: 'replace' | 'merge' | 'delete',
    data: Record<string, unknown>,
    cas: number | undefined,
    ctx: AuditContext,
  ) {
    const { set, del } = mode === 'delete' ? { set: dict<string>(), del: [] } : toValues(data, mode === 'merge');
    return audit.run(
      ctx,
      async (tx, record) => {
        if (mode === 'merge') {
          // Vault answers a patch of a secret that does not exist (or is deleted) with 404.
          const { e } = await writer.env(project, env, tx);
          if ((await historyStore.valuesAt(e.id, e.revision, tx)).length === 0)
            throw new SecretNotFoundError(`${project}/${env} holds no data to patch`);
        }
        // References: kept through a read-modify-write (hvac's patch sends resolved values back), checked as native writes check them.
        await refs.keepReferences(project, env, set, ctx, tx);
        const r = await writer.apply(
          project,
          env,
          { set, delete: del, replace: mode !== 'merge', cas, deleteMissingOk: true },
          ctx.actorId,
          tx,
        );
        await refs.checkWrittenReferences(
          r.p,
          r.e,
          Object.fromEntries([...r.added, ...r.changed].map((n) => [n, set[n]])),
          r.deleted,
          ctx,
          tx,
        );
        await record({
          action: 'secrets.bulk',
          outcome: 'ok',
          project,
          env,
          target: { added: r.added, changed: r.changed, deleted: r.deleted },
          detail: { unchanged: r.unchanged.length, revision: r.revision, via: VIA, mode, ...(cas !== undefined ? { cas } : {}) },
        });
        return meta(r.revision, Date.now(), mode === 'delete');
      },
      { lockKey: envLock(project, env) },
    );
  }

  return {
    /** The env's map at a revision (its current one by default); empty maps and unknown revisions are not found. */
    async read(project: string, env: string, version: number | undefined, ctx: AuditContext) {
      return audit.run(
        ctx,
        async (tx, record) => {
          const { p, e } = await writer.env(project, env, tx);
          const revision = version ?? e.revision;
          history.checkRevision(e, `${project}/${env}`, revision);
          const data = await history.valuesAt(p, e, revision, tx);
          const names = Object.keys(data);
          if (names.length === 0) throw new SecretNotFoundError(`${project}/${env} holds no data at version ${revision}`);
          const [at] = await historyStore.revisions(e.id, revision, revision + 1, 1, tx);
          const { values, references } = await refs.resolveReferences(project, env, data, ctx, tx);
          await record({
            action: 'secret.read',
            outcome: 'ok',
            project,
            env,
            target: { keys: names },
            detail: { count: names.length, revision, via: VIA, ...(references ? { references } : {}) },
          });
          return { data: values, metadata: meta(revision, at?.createdAt ?? e.createdAt, false) };
        },
        { readOnly: true },
      );
    },

    write: (project: string, env: string, data: Record<string, unknown>, cas: number | undefined, ctx: AuditContext) =>
      write(project, env, 'replace', data, cas, ctx),
    patch: (project: string, env: string, data: Record<string, unknown>, cas: number | undefined, ctx: AuditContext) =>
      write(project, env, 'merge', data, cas, ctx),
    remove: (project: string, env: string, ctx: AuditContext) => write(project, env, 'delete', {}, undefined, ctx),

    /** The versions map: one entry per revision that wrote anything. */
    async metadata(project: string, env: string, ctx: AuditContext) {
      return audit.run(
        ctx,
        async (tx, record) => {
          const { e } = await writer.env(project, env, tx);
          // Oldest first; one row per revision (Hush keeps them all, as a KV v2 mount with max_versions 0 would).
          const entries = (await historyStore.revisions(e.id, e.revision, e.revision + 1, MAX_REVISIONS, tx)).reverse();
          const versions: Record<string, Omit<KvVersionMeta, 'custom_metadata' | 'version'>> = {};
          for (const x of entries)
            versions[String(x.revision)] = {
              created_time: iso(x.createdAt),
              deletion_time: x.live === 0 ? iso(x.createdAt) : '',
              destroyed: false,
            };
          await record({ action: 'secret.versions', outcome: 'ok', project, env, detail: { count: entries.length, via: VIA } });
          return {
            cas_required: false,
            created_time: iso(e.createdAt),
            current_version: e.revision,
            custom_metadata: null,
            delete_version_after: '0s',
            max_versions: 0,
            oldest_version: entries[0]?.revision ?? 0,
            updated_time: iso(entries.at(-1)?.createdAt ?? e.createdAt),
            versions,
          };
        },
        { readOnly: true },
      );
    },

    /** Folders and leaves under a path, as Vault lists them: projects as "name/", envs as "name". Only what the token can see. */
    async list(pr: Principal, project: string | null): Promise<string[]> {
      if (project === null) {
        return (await projectStore.listProjects()).filter((p) => seesProject(pr.grants, p.name)).map((p) => `${p.name}/`);
      }
      const p = await projectStore.getProject(project);
      if (!p || !seesProject(pr.grants, p.name)) return [];
      return (await projectStore.listEnvs(p.id)).filter((e) => seesEnv(pr.grants, p.name, e.name)).map((e) => e.name);
    },
  };
}
export type KvService = ReturnType<typeof kvServiceFactory>;
