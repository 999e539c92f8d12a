import { secretAd } from '../../crypto/keyring.js';
import {
  AlreadyExistsError,
  CasConflictError,
  EnvNotFoundError,
  InvalidRequestError,
  ProjectNotFoundError,
  SecretNotFoundError,
  TooManySecretsError,
} from '../../errors.js';
import { isPostgres, type Db, type Tx } from '../../store/db.js';
import type { EnvRow, ProjectRow, ProjectStore } from '../../store/project-store.js';
import type { SecretStore } from '../../store/secret-store.js';
import type { AuditContext, AuditService, Record_ } from '../audit/audit-service.js';
import type { KeyService } from '../key/key-service.js';
import type { Principal } from '../token/token-service.js';
import { seesEnv, seesProject } from '../token/grants.js';
import { allows } from '../token/grants.js';
import { assertKeyName, assertResourceName } from './names.js';
import { assertReferenceSyntax, needsResolving, referenceResolver } from './references.js';
import type { ValueCache } from './value-cache.js';
import { envSizeGuard } from './env-size.js';
import type { EnvWriter } from './env-writer.js';
import type { HistoryStore } from '../../store/history-store.js';
import { dict } from '../../../common/dict.js';

export interface SecretServiceDeps {
  db: Db;
  projectStore: ProjectStore;
  secretStore: SecretStore;
  keys: Pick<KeyService, 'cipher' | 'createProjectDek' | 'deleteProjectDeks'>;
  audit: Pick<AuditService, 'run'>;
  /** Checks values and writes changes of several values (env-writer.ts). */
  writer: EnvWriter;
  /** Names of the tokens that wrote versions. */
  historyStore: Pick<HistoryStore, 'tokenNames'>;
  maxSecretsPerEnv: number;
  /** Largest total of an env's names and values, in bytes (env-size.ts). */
  maxEnvBytes: number;
  /** Run after a committed delete, before it is answered: SQLite checkpoints and truncates its WAL (docs/keys.md). */
  afterDelete?: () => Promise<void>;
  /** Decrypted values of recently read envs (value-cache.ts); null: decrypt on every read. */
  valueCache?: ValueCache | null;
}

export interface BulkInput {
  set?: Record<string, string>;
  delete?: string[];
}
/** `raw`: values as stored, references not resolved (?raw=1). */
export interface ReadOptions {
  raw?: boolean;
}

const iso = (ms: number) => new Date(ms).toISOString();
/** The environment row a write locks first: batches take such locks in this key's order (unit-of-work.ts). */
export const envLock = (project: string, env: string) => `${project}\u0000${env}`;

export function secretServiceFactory({
  db,
  projectStore,
  secretStore,
  keys,
  audit,
  writer,
  historyStore,
  maxSecretsPerEnv,
  maxEnvBytes,
  valueCache = null,
  afterDelete = () => Promise.resolve(),
}: SecretServiceDeps) {
  const envSize = envSizeGuard(secretStore, maxEnvBytes);
  /** A committed delete's answer, once the deleted data has left the write-ahead log. */
  const purged = async <T>(r: T): Promise<T> => {
    await afterDelete();
    return r;
  };
  /** PostgreSQL: reads run outside the group's transaction (unit-of-work.ts). */
  const readsOutside = isPostgres(db);
  const { env, decryptAll, encryptVersion, bumped } = writer;

  async function project(name: string, tx?: Tx): Promise<ProjectRow> {
    const p = await projectStore.getProject(name, tx);
    if (!p) throw new ProjectNotFoundError(`project ${name} not found`);
    return p;
  }

  /**
   * Is the env still at the revision read at the start of this read? On
   * PostgreSQL (READ COMMITTED, several server processes) every statement
   * sees its own snapshot, so a change committed between reading the
   * revision and reading values would pair revision N with the values of
   * N+1. Reads that report a revision re-check it and, when it moved, read
   * again; from the second try on the check also takes a FOR SHARE lock, so
   * the third read cannot be overtaken. (SQLite transactions never overlap.)
   */
  async function stillAt(e: EnvRow, tx: Tx, attempt: number): Promise<boolean> {
    const now = await projectStore.revisionOf(e.id, tx, attempt > 0 ? 'share' : undefined);
    if (now === null) throw new EnvNotFoundError(`environment ${e.name} not found`);
    return now === e.revision || attempt > 2;
  }

  /** Raw values of an env, for resolving references to it; null when it does not exist. */
  async function envValues(projectName: string, envName: string, tx: Tx): Promise<Readonly<Record<string, string>> | null> {
    const { project: p, env: e } = await projectStore.getProjectEnv(projectName, envName, tx);
    if (!p || !e) return null;
    const hit = valueCache?.get(p.id, e);
    return hit ? hit.values : decryptAll(p, e, await secretStore.liveValues(e.id, null, tx), tx);
  }

  /**
   * Reference resolution with the reader's grants (ctx.grants, set by
   * http/auth.ts). The env being read is readable by definition; any
   * other needs read:P/E. `origin`: that env's values when already at hand
   * (all of them), or as they will be after a write.
   */
  function resolverFor(
    ctx: AuditContext,
    projectName: string,
    envName: string,
    tx: Tx,
    mode: 'read' | 'check',
    origin?: Readonly<Record<string, string>>,
  ) {
    const same = (p: string, e: string) => p === projectName && e === envName;
    return referenceResolver(
      {
        canRead: (p, e) => same(p, e) || (ctx.grants !== undefined && allows(ctx.grants, { kind: 'read', project: p, env: e })),
        envValues: async (p, e) => (same(p, e) && origin ? origin : envValues(p, e, tx)),
      },
      mode,
    );
  }

  /**
   * Keeps references through a read-modify-write. A client that read an
   * env (references resolved) and writes the map back (hvac's patch, an
   * export then import) sends resolved values. Where a sent value equals
   * what the stored value resolves to for this writer, the stored text is
   * kept: otherwise the write would turn `${api.prod.KEY}` into a copy of
   * api/prod's value, readable by whoever may read this env. Changes `set`.
   */
  async function keepReferences(
    projectName: string,
    envName: string,
    set: Record<string, string>,
    ctx: AuditContext,
    tx: Tx,
  ): Promise<void> {
    const names = Object.keys(set).filter((n) => !set[n].includes('${'));
    if (names.length === 0) return;
    const { project: p, env: e } = await projectStore.getProjectEnv(projectName, envName, tx);
    if (!p || !e) return;
    const raw = await decryptAll(p, e, await secretStore.liveValues(e.id, names, tx), tx);
    const withRefs = names.filter((n) => Object.prototype.hasOwnProperty.call(raw, n) && raw[n].includes('${') && raw[n] !== set[n]);
    if (withRefs.length === 0) return;
    const current = await envValues(projectName, envName, tx);
    const r = resolverFor(ctx, projectName, envName, tx, 'read', current ?? undefined);
    for (const n of withRefs) {
      try {
        const [resolved] = Object.values(await r.resolveAll(projectName, envName, { [n]: raw[n] }));
        if (resolved === set[n]) set[n] = raw[n];
      } catch {
        /* not resolvable by this writer: what it sent is not the resolved value */
      }
    }
  }

  /** Write-time check of new values: reference syntax, and cycles / depth through what the writer can read. */
  async function checkReferences(
    p: ProjectRow,
    e: EnvRow,
    set: Record<string, string>,
    del: string[],
    ctx: AuditContext,
    tx: Tx,
  ): Promise<void> {
    const withRefs = Object.keys(set).filter((n) => set[n].includes('${'));
    if (withRefs.length === 0) return;
    const after: Record<string, string> = Object.assign(
      dict<string>(),
      await decryptAll(p, e, await secretStore.liveValues(e.id, null, tx), tx),
      set,
    );
    for (const n of del) delete after[n];
    const r = resolverFor(ctx, p.name, e.name, tx, 'check', after);
    await r.resolveAll(p.name, e.name, Object.fromEntries(withRefs.map((n) => [n, set[n]])));
  }

  /** Current revision of an env, and its identity (for ETags). Not audited: it discloses no value. */
  async function revision(projectName: string, envName: string) {
    const { e } = await env(projectName, envName);
    return { envId: e.id, revision: e.revision };
  }

  /** Checks a name and value about to be written, before any transaction. */
  function assertWritable(name: string, value: string): void {
    assertKeyName(name);
    writer.assertValue(name, value);
    assertReferenceSyntax(name, value);
  }

  /**
   * One value written as a new version, with its secret.write event, inside
   * the caller's transaction (which holds envLock(projectName, envName)):
   * put, and generated values (lifecycle-service.ts). `detail` goes into
   * the event. Call assertWritable first.
   */
  async function writeIn(
    tx: Tx,
    record: Record_,
    projectName: string,
    envName: string,
    name: string,
    value: string,
    cas: number | undefined,
    ctx: AuditContext,
    detail: Record<string, unknown> = {},
  ) {
    const { p, e } = await bumped(projectName, envName, tx);
    const revision = e.revision;
    let s = await secretStore.get(e.id, name, tx);
    const current = s && !s.deleted ? s.version : 0;
    if (cas !== undefined && cas !== current) {
      throw new CasConflictError(`check-and-set failed for ${name}: expected version ${cas}, current is ${current}`, {
        details: { current },
      });
    }
    if (!s || s.deleted) {
      if ((await secretStore.countLive(e.id, tx)) >= maxSecretsPerEnv)
        throw new TooManySecretsError(`environment ${projectName}/${envName} already holds the maximum of ${maxSecretsPerEnv} secrets`);
    }
    await envSize.checkWrite(`${projectName}/${envName}`, e.id, { [name]: value }, [], tx);
    await checkReferences(p, e, { [name]: value }, [], ctx, tx);
    s ??= await secretStore.createSecret(e.id, name, tx);
    const version = s.version + 1;
    await secretStore.writeVersion(s.id, version, await encryptVersion(p, e, name, version, value, tx), ctx.actorId, revision, tx);
    await record({ action: 'secret.write', outcome: 'ok', project: projectName, env: envName, target: { key: name, version }, detail });
    return { key: name, version, revision, secretId: s.id };
  }

  return {
    revision,

    async listProjects(pr: Principal) {
      const all = await projectStore.listProjects();
      return all.filter((p) => seesProject(pr.grants, p.name)).map((p) => ({ name: p.name, createdAt: iso(p.createdAt) }));
    },

    async createProject(name: string, ctx: AuditContext) {
      assertResourceName('project', name);
      return audit.run(ctx, async (tx, record) => {
        const p = await projectStore.createProject(name, tx);
        if (!p) throw new AlreadyExistsError(`project ${name} already exists`);
        await keys.createProjectDek(p.id, 1, tx);
        await record({ action: 'project.create', outcome: 'ok', project: name });
        return { name: p.name, createdAt: iso(p.createdAt) };
      });
    },

    async deleteProject(name: string, ctx: AuditContext) {
      return audit
        .run(ctx, async (tx, record) => {
          const p = await project(name, tx);
          await projectStore.deleteProject(p.id, tx);
          await keys.deleteProjectDeks(p.id, tx);
          valueCache?.dropProject(p.id);
          await record({ action: 'project.delete', outcome: 'ok', project: name });
          return { name, deleted: true };
        })
        .then(purged);
    },

    async listEnvs(pr: Principal, projectName: string) {
      const p = await project(projectName);
      const envs = await projectStore.listEnvs(p.id);
      return envs
        .filter((e) => seesEnv(pr.grants, p.name, e.name))
        .map((e) => ({ name: e.name, revision: e.revision, createdAt: iso(e.createdAt) }));
    },

    async createEnv(projectName: string, name: string, ctx: AuditContext) {
      assertResourceName('environment', name);
      return audit.run(
        ctx,
        async (tx, record) => {
          const p = await project(projectName, tx);
          const e = await projectStore.createEnv(p.id, name, tx);
          if (!e) throw new AlreadyExistsError(`environment ${projectName}/${name} already exists`);
          await record({ action: 'env.create', outcome: 'ok', project: projectName, env: name });
          return { name: e.name, revision: e.revision, createdAt: iso(e.createdAt) };
        },
        { lockKey: envLock(projectName, name) },
      );
    },

    async deleteEnv(projectName: string, name: string, ctx: AuditContext) {
      return audit
        .run(
          ctx,
          async (tx, record) => {
            const { e } = await env(projectName, name, tx);
            await projectStore.deleteEnv(e.id, tx);
            valueCache?.dropEnv(e.id);
            await record({ action: 'env.delete', outcome: 'ok', project: projectName, env: name });
            return { name, deleted: true };
          },
          { lockKey: envLock(projectName, name) },
        )
        .then(purged);
    },

    /**
     * PostgreSQL: starts the environment lookup of a read before the
     * request is authorised (see `prefetch` in http/auth.ts), so it shares
     * its round trip with the token lookup. Null on SQLite, where the read
     * runs inside its group and the lookup is a synchronous call.
     */
    prefetchEnv(projectName: string, envName: string): Promise<{ p: ProjectRow; e: EnvRow }> | null {
      return readsOutside ? env(projectName, envName) : null;
    },

    async getAll(
      projectName: string,
      envName: string,
      ctx: AuditContext,
      only?: string[],
      prefetched?: Promise<unknown> | null,
      opts: ReadOptions = {},
    ) {
      const r = await audit.run(
        ctx,
        async (tx, record) => {
          // A prefetched lookup was made outside any transaction, after the request arrived: usable where this read also runs outside one.
          let { p, e } =
            prefetched && tx === db ? ((await prefetched) as { p: ProjectRow; e: EnvRow }) : await env(projectName, envName, tx);
          let names: readonly string[];
          let secrets: Record<string, string>;
          let fresh = false;
          for (let attempt = 0; ; attempt++) {
            const hit = valueCache?.get(p.id, e) ?? null;
            if (hit && only) {
              const want = new Set(only);
              names = hit.names.filter((n) => want.has(n));
              secrets = dict<string>();
              for (const n of names) secrets[n] = hit.values[n];
            } else if (hit) {
              ({ names, values: secrets } = hit);
            } else {
              await envSize.checkRead(`${projectName}/${envName}`, e.id, tx);
              const rows = await secretStore.liveValues(e.id, only ?? null, tx);
              secrets = await decryptAll(p, e, rows, tx);
              names = rows.map((x) => x.name);
              fresh = !only;
            }
            if (hit || (await stillAt(e, tx, attempt))) break;
            ({ p, e } = await env(projectName, envName, tx));
          }
          let out = secrets;
          let references: string[] | undefined;
          if (!opts.raw && needsResolving(secrets)) {
            const r = resolverFor(ctx, projectName, envName, tx, 'read', only ? undefined : secrets);
            out = await r.resolveAll(projectName, envName, secrets);
            if (r.envsRead.size) references = [...r.envsRead];
          }
          await record({
            action: 'secret.read',
            outcome: 'ok',
            project: projectName,
            env: envName,
            target: { keys: names },
            detail: {
              count: names.length,
              revision: e.revision,
              ...(references ? { references } : {}),
              ...(opts.raw ? { raw: true } : {}),
            },
          });
          return {
            secrets: out,
            raw: secrets,
            revision: e.revision,
            envId: e.id,
            cache: fresh ? { projectId: p.id, env: e, names } : null,
          };
        },
        { readOnly: true },
      );
      // Committed now: the values read at this revision are the ones it holds for good.
      if (r.cache && valueCache) valueCache.set(r.cache.projectId, r.cache.env, r.cache.names, r.raw);
      return { secrets: r.secrets, revision: r.revision, envId: r.envId };
    },

    /** For writes of whole maps that do not go through bulk (the KV v2 routes): see keepReferences and checkReferences. */
    keepReferences,
    async checkWrittenReferences(
      p: ProjectRow,
      e: EnvRow,
      set: Record<string, string>,
      del: string[],
      ctx: AuditContext,
      tx: Tx,
    ): Promise<void> {
      for (const n of Object.keys(set)) assertReferenceSyntax(n, set[n]);
      await checkReferences(p, e, set, del, ctx, tx);
    },

    /**
     * Resolves the references in `values`, an env's map (current or of an
     * old revision), with the reader's grants: for reads that do not go
     * through getAll (the KV v2 routes). `references`: the other envs read.
     */
    async resolveReferences(
      projectName: string,
      envName: string,
      values: Record<string, string>,
      ctx: AuditContext,
      tx: Tx,
    ): Promise<{ values: Record<string, string>; references?: string[] }> {
      if (!needsResolving(values)) return { values };
      const r = resolverFor(ctx, projectName, envName, tx, 'read', values);
      const out = await r.resolveAll(projectName, envName, values);
      return { values: out, ...(r.envsRead.size ? { references: [...r.envsRead] } : {}) };
    },

    async listNames(projectName: string, envName: string, ctx: AuditContext) {
      return audit.run(
        ctx,
        async (tx, record) => {
          const { e } = await env(projectName, envName, tx);
          const rows = await secretStore.listLive(e.id, tx);
          await record({ action: 'secret.list', outcome: 'ok', project: projectName, env: envName, detail: { count: rows.length } });
          return { secrets: rows.map((r) => ({ key: r.name, version: r.version, updatedAt: iso(r.updatedAt) })), revision: e.revision };
        },
        { readOnly: true },
      );
    },

    async get(projectName: string, envName: string, name: string, ctx: AuditContext, version?: number, opts: ReadOptions = {}) {
      return audit.run(
        ctx,
        async (tx, record) => {
          let { p, e } = await env(projectName, envName, tx);
          let s = await secretStore.get(e.id, name, tx);
          while (version === undefined && !(await stillAt(e, tx, 0))) {
            ({ p, e } = await env(projectName, envName, tx));
            s = await secretStore.get(e.id, name, tx);
            if (await stillAt(e, tx, 1)) break;
          }
          const notFound = () =>
            new SecretNotFoundError(`secret ${name} not found in ${projectName}/${envName}${version ? ` at version ${version}` : ''}`);
          if (!s) throw notFound();
          const wanted = version ?? s.version;
          const v = (await secretStore.versions(s.id, tx)).find((x) => x.version === wanted);
          if (!v || v.deleted || !v.nonce || !v.ciphertext || v.dekVersion === null || (version === undefined && s.deleted))
            throw notFound();
          const c = await keys.cipher(p.id, v.dekVersion, tx);
          let value = c.decrypt(
            v.nonce,
            v.ciphertext,
            secretAd(p.id, e.id, name, v.version),
            `${projectName}/${envName}/${name} v${v.version}`,
          );
          let references: string[] | undefined;
          if (!opts.raw && value.includes('${')) {
            const r = resolverFor(ctx, projectName, envName, tx, 'read');
            value = await r.resolveOne(projectName, envName, name, value);
            if (r.envsRead.size) references = [...r.envsRead];
          }
          await record({
            action: 'secret.read',
            outcome: 'ok',
            project: projectName,
            env: envName,
            target: { key: name, version: v.version },
            detail: { ...(references ? { references } : {}), ...(opts.raw ? { raw: true } : {}) },
          });
          return { key: name, value, version: v.version, createdAt: iso(v.createdAt), createdBy: v.createdBy, revision: e.revision };
        },
        { readOnly: true },
      );
    },

    async versions(projectName: string, envName: string, name: string, ctx: AuditContext) {
      return audit.run(
        ctx,
        async (tx, record) => {
          const { e } = await env(projectName, envName, tx);
          const s = await secretStore.get(e.id, name, tx);
          if (!s) throw new SecretNotFoundError(`secret ${name} not found in ${projectName}/${envName}`);
          const vs = await secretStore.versions(s.id, tx);
          const names = await historyStore.tokenNames([...new Set(vs.map((v) => v.createdBy))], tx);
          await record({ action: 'secret.versions', outcome: 'ok', project: projectName, env: envName, target: { key: name } });
          return {
            key: name,
            current: s.deleted ? null : s.version,
            versions: vs.map((v) => ({
              version: v.version,
              deleted: v.deleted,
              createdAt: iso(v.createdAt),
              createdBy: v.createdBy,
              createdByName: names.get(v.createdBy) ?? v.createdBy,
            })),
          };
        },
        { readOnly: true },
      );
    },

    /** `cas`: the version the caller last saw (0 = must not exist yet). */
    async put(projectName: string, envName: string, name: string, value: string, cas: number | undefined, ctx: AuditContext) {
      assertWritable(name, value);
      return audit.run(
        ctx,
        async (tx, record) => {
          const { secretId: _, ...out } = await writeIn(
            tx,
            record,
            projectName,
            envName,
            name,
            value,
            cas,
            ctx,
            cas !== undefined ? { cas } : {},
          );
          return out;
        },
        { lockKey: envLock(projectName, envName) },
      );
    },

    assertWritable,
    writeIn,

    async delete(projectName: string, envName: string, name: string, ctx: AuditContext) {
      return audit
        .run(
          ctx,
          async (tx, record) => {
            const { e } = await bumped(projectName, envName, tx);
            const revision = e.revision;
            const s = await secretStore.get(e.id, name, tx);
            if (!s || s.deleted) throw new SecretNotFoundError(`secret ${name} not found in ${projectName}/${envName}`);
            const version = s.version + 1;
            await secretStore.writeVersion(s.id, version, null, ctx.actorId, revision, tx);
            await record({ action: 'secret.delete', outcome: 'ok', project: projectName, env: envName, target: { key: name, version } });
            return { key: name, version, revision, deleted: true };
          },
          { lockKey: envLock(projectName, envName) },
        )
        .then(purged);
    },

    /**
     * All changes or none. Values equal to the current one are reported as unchanged and write no version; a change
     * with nothing to write makes no revision.
     */
    async bulk(projectName: string, envName: string, input: BulkInput, ctx: AuditContext) {
      const set = input.set ?? {};
      const del = input.delete ?? [];
      if (Object.keys(set).length === 0 && del.length === 0) throw new InvalidRequestError('nothing to do: give "set" and/or "delete"');
      writer.assertChange(set, del);
      for (const n of Object.keys(set)) assertReferenceSyntax(n, set[n]);
      return audit
        .run(
          ctx,
          async (tx, record) => {
            await keepReferences(projectName, envName, set, ctx, tx);
            const r = await writer.apply(projectName, envName, { set, delete: del }, ctx.actorId, tx);
            // References in the new values: syntax above, cycles and depth through what the writer can read here (rolled back with the write).
            await checkReferences(r.p, r.e, Object.fromEntries([...r.added, ...r.changed].map((n) => [n, set[n]])), r.deleted, ctx, tx);
            await record({
              action: 'secrets.bulk',
              outcome: 'ok',
              project: projectName,
              env: envName,
              target: { added: r.added, changed: r.changed, deleted: r.deleted },
              detail: { unchanged: r.unchanged.length, revision: r.revision },
            });
            return { revision: r.revision, added: r.added, changed: r.changed, unchanged: r.unchanged, deleted: r.deleted };
          },
          { lockKey: envLock(projectName, envName) },
        )
        .then((r) => (r.deleted.length ? purged(r) : r));
    },

    /** Long-poll helper: resolves when the env's revision differs from `seen`, or after `waitMs`. */
    async waitForChange(projectName: string, envName: string, envId: number, seen: number, waitMs: number, aborted: () => boolean) {
      const deadline = Date.now() + waitMs;
      for (;;) {
        const r = await revision(projectName, envName);
        if (r.envId !== envId || r.revision !== seen || Date.now() >= deadline || aborted()) return r;
        await new Promise((res) => setTimeout(res, Math.min(250, Math.max(0, deadline - Date.now()))));
      }
    },
  };
}
export type SecretService = ReturnType<typeof secretServiceFactory>;
