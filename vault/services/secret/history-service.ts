import type { SecretService } from './secret-service.js';
import { InvalidRequestError, RevisionNotFoundError, SecretNotFoundError } from '../../errors.js';
import type { Tx } from '../../store/db.js';
import type { HistoryStore } from '../../store/history-store.js';
import type { EnvRow, ProjectRow } from '../../store/project-store.js';
import type { AuditContext, AuditInput, AuditService } from '../audit/audit-service.js';
import type { EnvWriter } from './env-writer.js';
import { sameValue } from './env-writer.js';
import { diffMaps, withVersions } from './history-fns.js';
import { envLock } from './secret-service.js';
import { assertKeyName } from './names.js';
import { dict } from '../../../common/dict.js';

export interface HistoryServiceDeps {
  historyStore: HistoryStore;
  writer: EnvWriter;
  audit: Pick<AuditService, 'run'>;
  /** Checks the references a rollback or a copy writes, as native writes are checked (docs/lifecycle.md#references). */
  references?: Pick<SecretService, 'checkWrittenReferences'>;
}

/** One side of a diff: an environment at a revision (its current one when absent). */
export interface EnvAt {
  project: string;
  env: string;
  revision?: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Env history (docs/history.md): every revision of an environment can be
 * rebuilt, since each version records the revision that wrote it. History,
 * diff, rollback and copy; the KV v2 routes read through `valuesAt` too.
 */
export function historyServiceFactory({ historyStore, writer, audit, references }: HistoryServiceDeps) {
  function checkRevision(e: EnvRow, where: string, revision: number): void {
    if (!Number.isSafeInteger(revision) || revision < 0 || revision > e.revision) {
      throw new RevisionNotFoundError(`${where} has no revision ${revision}; its current revision is ${e.revision}`);
    }
  }

  /** The values of an env at a revision (default: its current one), decrypted. Older revisions never change, so no re-check is needed. */
  async function valuesAt(p: ProjectRow, e: EnvRow, revision: number, tx: Tx): Promise<Record<string, string>> {
    return writer.decryptAll(p, e, await historyStore.valuesAt(e.id, revision, tx), tx);
  }

  /** Token names of the actors of history entries (ids that are no token, such as "system", stay as they are). */
  async function actorNames(ids: string[], tx: Tx) {
    const names = await historyStore.tokenNames([...new Set(ids)], tx);
    return (id: string) => ({ id, name: names.get(id) ?? id });
  }

  async function side(s: EnvAt, tx: Tx) {
    const { p, e } = await writer.env(s.project, s.env, tx);
    const revision = s.revision ?? e.revision;
    checkRevision(e, `environment ${s.project}/${s.env}`, revision);
    return { p, e, revision, values: await valuesAt(p, e, revision, tx) };
  }

  return {
    valuesAt,
    checkRevision,

    /** Revisions of an env, newest first, with who changed which names. `before`: only revisions below it (paging). */
    async history(project: string, env: string, opts: { limit: number; before?: number }, ctx: AuditContext) {
      return audit.run(
        ctx,
        async (tx, record) => {
          const { e } = await writer.env(project, env, tx);
          const found = await historyStore.revisions(e.id, e.revision, opts.before ?? e.revision + 1, opts.limit + 1, tx);
          const page = found.slice(0, opts.limit);
          const entries = page.length
            ? withVersions(page, await historyStore.versionsIn(e.id, page[page.length - 1].revision, page[0].revision, tx))
            : [];
          const who = await actorNames(
            entries.flatMap((x) => x.actorIds),
            tx,
          );
          await record({ action: 'secrets.history', outcome: 'ok', project, env, detail: { count: entries.length } });
          return {
            revision: e.revision,
            revisions: entries.map((x) => ({
              revision: x.revision,
              createdAt: iso(x.createdAt),
              actors: x.actorIds.map(who),
              live: x.live,
              changes: x.changes.map((c) => ({
                key: c.key,
                version: c.version,
                action: c.deleted ? ('deleted' as const) : ('set' as const),
              })),
            })),
            more: found.length > page.length,
          };
        },
        { readOnly: true },
      );
    },

    /**
     * What changed from `from` to `to` (two revisions of one env, or two
     * envs). Names only unless `values`; with values each side's read is
     * audited as a read (secret.read), else one secrets.diff event.
     */
    async diff(from: EnvAt, to: EnvAt, values: boolean, ctx: AuditContext) {
      return audit.run(
        ctx,
        async (tx, record) => {
          const a = await side(from, tx);
          const b = await side(to, tx);
          const d = diffMaps(a.values, b.values, sameValue);
          const ref = (s: typeof a, x: EnvAt) => ({ project: x.project, env: x.env, revision: s.revision });
          if (values) {
            for (const [s, x, names] of [
              [a, from, [...d.removed, ...d.changed]],
              [b, to, [...d.added, ...d.changed]],
            ] as const) {
              await record({
                action: 'secret.read',
                outcome: 'ok',
                project: x.project,
                env: x.env,
                target: { keys: [...names].sort() },
                detail: { count: names.length, revision: s.revision, diff: true },
              });
            }
          } else {
            const input: AuditInput = {
              action: 'secrets.diff',
              outcome: 'ok',
              project: to.project,
              env: to.env,
              target: { from: ref(a, from), to: ref(b, to) },
              detail: { added: d.added.length, removed: d.removed.length, changed: d.changed.length },
            };
            await record(input);
          }
          const out: {
            from: ReturnType<typeof ref>;
            to: ReturnType<typeof ref>;
            added: string[];
            removed: string[];
            changed: string[];
            unchanged: number;
            values?: Record<string, { from: string | null; to: string | null }>;
          } = { from: ref(a, from), to: ref(b, to), ...d };
          if (values) {
            const v = dict<{ from: string | null; to: string | null }>();
            for (const k of d.added) v[k] = { from: null, to: b.values[k] };
            for (const k of d.removed) v[k] = { from: a.values[k], to: null };
            for (const k of d.changed) v[k] = { from: a.values[k], to: b.values[k] };
            out.values = v;
          }
          return out;
        },
        { readOnly: true },
      );
    },

    /** A new revision whose values equal revision `to`'s (none when they already do). */
    async rollback(project: string, env: string, to: number, ctx: AuditContext) {
      return audit.run(
        ctx,
        async (tx, record) => {
          const { p, e } = await writer.env(project, env, tx);
          checkRevision(e, `environment ${project}/${env}`, to);
          const target = await valuesAt(p, e, to, tx);
          const r = await writer.apply(project, env, { set: target, delete: [], replace: true }, ctx.actorId, tx);
          await references?.checkWrittenReferences(
            r.p,
            r.e,
            Object.fromEntries([...r.added, ...r.changed].map((n) => [n, target[n]])),
            r.deleted,
            ctx,
            tx,
          );
          await record({
            action: 'secrets.rollback',
            outcome: 'ok',
            project,
            env,
            target: { added: r.added, changed: r.changed, deleted: r.deleted },
            detail: { toRevision: to, revision: r.revision, unchanged: r.unchanged.length },
          });
          return { revision: r.revision, toRevision: to, added: r.added, changed: r.changed, deleted: r.deleted, unchanged: r.unchanged };
        },
        { lockKey: envLock(project, env) },
      );
    },

    /** Promotes values from one env to another (all, or the names in `only`); names only in the target stay. */
    async copy(
      from: { project: string; env: string },
      to: { project: string; env: string },
      only: string[] | undefined,
      ctx: AuditContext,
    ) {
      if (from.project === to.project && from.env === to.env) throw new InvalidRequestError('copy needs two different environments');
      if (only) {
        for (const n of only) assertKeyName(n);
        if (only.length === 0) throw new InvalidRequestError('"only" is empty');
      }
      return audit.run(
        ctx,
        async (tx, record) => {
          const { p, e } = await writer.env(from.project, from.env, tx);
          const all = await valuesAt(p, e, e.revision, tx);
          const set = dict<string>();
          for (const n of only ?? Object.keys(all)) {
            if (!Object.prototype.hasOwnProperty.call(all, n))
              throw new SecretNotFoundError(`secret ${n} not found in ${from.project}/${from.env}; nothing was copied`);
            set[n] = all[n];
          }
          const names = Object.keys(set).sort();
          await record({
            action: 'secret.read',
            outcome: 'ok',
            project: from.project,
            env: from.env,
            target: { keys: names },
            detail: { count: names.length, revision: e.revision, copyTo: `${to.project}/${to.env}` },
          });
          const r = await writer.apply(to.project, to.env, { set, delete: [] }, ctx.actorId, tx);
          await references?.checkWrittenReferences(
            r.p,
            r.e,
            Object.fromEntries([...r.added, ...r.changed].map((n) => [n, set[n]])),
            r.deleted,
            ctx,
            tx,
          );
          await record({
            action: 'secrets.copy',
            outcome: 'ok',
            project: to.project,
            env: to.env,
            target: { added: r.added, changed: r.changed },
            detail: { from: `${from.project}/${from.env}`, fromRevision: e.revision, revision: r.revision, unchanged: r.unchanged.length },
          });
          return {
            from: { ...from, revision: e.revision },
            revision: r.revision,
            added: r.added,
            changed: r.changed,
            unchanged: r.unchanged,
          };
        },
        { lockKey: envLock(to.project, to.env) },
      );
    },
  };
}
export type HistoryService = ReturnType<typeof historyServiceFactory>;
