import { generateValue, entropyBits, generatorSpec, type GeneratorSpec } from '../../crypto/generate.js';
import { formatDuration, parseDuration } from '../../../common/duration.js';
import { EnvNotFoundError, InvalidRequestError, ProjectNotFoundError, SecretNotFoundError } from '../../errors.js';
import type { LeaseStore } from '../../store/lease-store.js';
import type { PolicedSecret, PolicyRow, PolicyStore } from '../../store/policy-store.js';
import type { ProjectStore } from '../../store/project-store.js';
import type { SecretStore } from '../../store/secret-store.js';
import type { AuditContext, AuditService } from '../audit/audit-service.js';
import { SYSTEM_CONTEXT } from '../audit/audit-service.js';
import { allows, type Grant } from '../token/grants.js';
import { envLock, type SecretService } from './secret-service.js';

/**
 * Generated secrets and rotation policies (docs/lifecycle.md).
 *
 * Audit events (the webhook outbox is filled from them):
 * - a generated value, by a caller or by auto-rotation, is a `secret.write`
 *   like any other write; auto-rotation's has actor `system` and
 *   detail.rotation = 'auto';
 * - a due reminder is `secret.rotation_due`, project, env, target
 *   { key, version, dueAt, reason: 'rotation' | 'expiry' }, written once
 *   per due time per secret, whichever server sees it first;
 * - a policy change is `secret.policy`.
 */
export interface LifecycleServiceDeps {
  projectStore: Pick<ProjectStore, 'getProjectEnv'>;
  secretStore: Pick<SecretStore, 'get'>;
  policyStore: PolicyStore;
  leaseStore: Pick<LeaseStore, 'claim' | 'dropExpired'>;
  secrets: Pick<SecretService, 'writeIn' | 'assertWritable'>;
  audit: Pick<AuditService, 'run'>;
}

export interface GenerateInput {
  charset: string;
  length?: number;
  rotateEvery?: string | null;
  expiresAt?: string | null;
  auto?: boolean;
  /** Return the value in the answer (the CLI's --show). */
  show?: boolean;
}
export interface PolicyInput {
  rotateEvery?: string | null;
  expiresAt?: string | null;
  auto?: boolean;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
/** Longest rotation period: 10 years. Shortest: 1 minute (the scheduler's default check interval). */
const MIN_EVERY = 60_000;
const MAX_EVERY = 3650 * 86_400_000;
/** Due secrets handled per scheduler tick; the rest on the next. */
const TICK_BATCH = 500;

function parseEvery(v: string | null | undefined): number | null | undefined {
  if (v === undefined || v === null) return v;
  const ms = parseDuration(v);
  if (ms === null || ms < MIN_EVERY || ms > MAX_EVERY)
    throw new InvalidRequestError(
      `rotateEvery must be a duration from 1m to 3650d, such as 90d, 12h or 2w (got ${JSON.stringify(String(v).slice(0, 40))})`,
    );
  return ms;
}

function parseExpiry(v: string | null | undefined): number | null | undefined {
  if (v === undefined || v === null) return v;
  const ms = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(v) ? Date.parse(v) : NaN;
  if (!Number.isFinite(ms))
    throw new InvalidRequestError(
      `expiresAt must be an ISO 8601 date or time, such as 2027-01-31 or 2027-01-31T12:00:00Z (got ${JSON.stringify(String(v).slice(0, 40))})`,
    );
  return ms;
}

/** When a policed secret is (or was) due, and why; null when nothing applies. */
export function dueOf(
  s: Pick<PolicedSecret, 'rotateEveryMs' | 'expiresAt' | 'expiresVersion' | 'version' | 'updatedAt'>,
): { dueAt: number; reason: 'rotation' | 'expiry' } | null {
  const rot = s.rotateEveryMs !== null ? s.updatedAt + s.rotateEveryMs : null;
  const exp = s.expiresAt !== null && s.expiresVersion === s.version ? s.expiresAt : null;
  if (rot === null && exp === null) return null;
  if (exp !== null && (rot === null || exp <= rot)) return { dueAt: exp, reason: 'expiry' };
  return { dueAt: rot!, reason: 'rotation' };
}

function describe(p: Omit<PolicyRow, 'secretId' | 'remindedDueAt'> | null) {
  const gen = p?.generator ? (JSON.parse(p.generator) as GeneratorSpec) : null;
  return {
    rotateEvery: p?.rotateEveryMs ? formatDuration(p.rotateEveryMs) : null,
    expiresAt: iso(p?.expiresAt ?? null),
    auto: !!p?.auto,
    generated: gen,
  };
}

export function lifecycleServiceFactory({ projectStore, secretStore, policyStore, leaseStore, secrets, audit }: LifecycleServiceDeps) {
  async function secretOf(projectName: string, envName: string, key: string, tx?: Parameters<PolicyStore['get']>[1]) {
    const { project, env } = await projectStore.getProjectEnv(projectName, envName, tx);
    if (!project) throw new ProjectNotFoundError(`project ${projectName} not found`);
    if (!env) throw new EnvNotFoundError(`environment ${projectName}/${envName} not found`);
    const s = await secretStore.get(env.id, key, tx);
    if (!s || s.deleted) throw new SecretNotFoundError(`secret ${key} not found in ${projectName}/${envName}`);
    return s;
  }

  /** The policy after applying `input` to `old` (fields not given are kept). `version`: the current version (expiresAt binds it). */
  function merged(old: PolicyRow | null, input: PolicyInput, version: number, generator: string | null) {
    const every = parseEvery(input.rotateEvery);
    const expires = parseExpiry(input.expiresAt);
    const expiresAt = expires === undefined ? (old?.expiresVersion === version ? old.expiresAt : null) : expires;
    const next = {
      rotateEveryMs: every === undefined ? (old?.rotateEveryMs ?? null) : every,
      expiresAt,
      expiresVersion: expiresAt === null ? null : version,
      generator,
      auto: input.auto ?? old?.auto ?? false,
    };
    if (next.auto && !next.generator)
      throw new InvalidRequestError('auto-rotation needs a generated secret: make it with hush secrets generate KEY --auto');
    if (next.auto && next.rotateEveryMs === null) throw new InvalidRequestError('auto-rotation needs rotateEvery (such as 90d)');
    return next;
  }

  /** Rotates or reminds one due secret; exactly one server acts per due time. */
  async function handleDue(s: PolicedSecret, now: number, holder: string): Promise<'rotated' | 'reminded' | null> {
    const due = dueOf(s);
    if (!due || due.dueAt > now) return null;
    if (s.auto && s.generator) {
      const stored = JSON.parse(s.generator) as Partial<GeneratorSpec>;
      const spec = generatorSpec(stored.charset, stored.length);
      const value = await generateValue(spec);
      const done = await audit.run(
        SYSTEM_CONTEXT,
        async (tx, record) => {
          if (!(await leaseStore.claim(`secret-rotation:${s.secretId}:${due.dueAt}`, holder, now + 86_400_000, tx))) return false;
          // Still the version that was due? (Another server, or a person, may have written one meanwhile.)
          const cur = await policyStore.policed(s.secretId, tx);
          const again = cur && dueOf(cur);
          if (!cur || !cur.auto || cur.version !== s.version || !again || again.dueAt !== due.dueAt) return false;
          await secrets.writeIn(tx, record, s.project, s.env, s.key, value, s.version, SYSTEM_CONTEXT, {
            rotation: 'auto',
            dueAt: iso(due.dueAt),
            generated: spec,
          });
          return true;
        },
        { lockKey: envLock(s.project, s.env) },
      );
      return done ? 'rotated' : null;
    }
    if (s.remindedDueAt === due.dueAt) return null;
    const done = await audit.run(SYSTEM_CONTEXT, async (tx, record) => {
      if (!(await policyStore.markReminded(s.secretId, due.dueAt, tx))) return false;
      await record({
        action: 'secret.rotation_due',
        outcome: 'ok',
        project: s.project,
        env: s.env,
        target: { key: s.key, version: s.version, dueAt: iso(due.dueAt), reason: due.reason },
        detail: { rotateEvery: s.rotateEveryMs ? formatDuration(s.rotateEveryMs) : null, expiresAt: iso(s.expiresAt) },
      });
      return true;
    });
    return done ? 'reminded' : null;
  }

  return {
    async generate(projectName: string, envName: string, key: string, input: GenerateInput, ctx: AuditContext) {
      const spec = generatorSpec(input.charset, input.length);
      const value = await generateValue(spec);
      secrets.assertWritable(key, value);
      parseEvery(input.rotateEvery);
      parseExpiry(input.expiresAt);
      const r = await audit.run(
        ctx,
        async (tx, record) => {
          const existing = await projectStore
            .getProjectEnv(projectName, envName, tx)
            .then(async ({ env }) => (env ? secretStore.get(env.id, key, tx) : null));
          const old = existing && !existing.deleted ? await policyStore.get(existing.id, tx) : null;
          const w = await secrets.writeIn(tx, record, projectName, envName, key, value, undefined, ctx, { generated: spec });
          const next = merged(old, input, w.version, JSON.stringify(spec));
          await policyStore.set({ secretId: w.secretId, ...next }, tx);
          return { key, version: w.version, revision: w.revision, policy: describe(next) };
        },
        { lockKey: envLock(projectName, envName) },
      );
      return { ...r, charset: spec.charset, length: spec.length, bits: await entropyBits(spec), ...(input.show ? { value } : {}) };
    },

    async getPolicy(projectName: string, envName: string, key: string) {
      const s = await secretOf(projectName, envName, key);
      const p = await policyStore.get(s.id);
      const due = p ? dueOf({ ...p, version: s.version, updatedAt: s.updatedAt }) : null;
      return { key, version: s.version, ...describe(p), dueAt: iso(due?.dueAt ?? null) };
    },

    /** Fields not given are kept; null clears one. A secret that is not generated cannot be auto. */
    async setPolicy(projectName: string, envName: string, key: string, input: PolicyInput, ctx: AuditContext) {
      parseEvery(input.rotateEvery);
      parseExpiry(input.expiresAt);
      return audit.run(
        ctx,
        async (tx, record) => {
          const s = await secretOf(projectName, envName, key, tx);
          const old = await policyStore.get(s.id, tx);
          const next = merged(old, input, s.version, old?.generator ?? null);
          if (next.rotateEveryMs === null && next.expiresAt === null && !next.generator) await policyStore.remove(s.id, tx);
          else await policyStore.set({ secretId: s.id, ...next }, tx);
          const shown = describe(next);
          await record({
            action: 'secret.policy',
            outcome: 'ok',
            project: projectName,
            env: envName,
            target: { key },
            detail: { rotateEvery: shown.rotateEvery, expiresAt: shown.expiresAt, auto: shown.auto },
          });
          const due = dueOf({ ...next, version: s.version, updatedAt: s.updatedAt });
          return { key, version: s.version, ...shown, dueAt: iso(due?.dueAt ?? null) };
        },
        { lockKey: envLock(projectName, envName) },
      );
    },

    /** Overdue secrets in the envs these grants may list (names and times only), oldest due first. */
    async stale(grants: readonly Grant[], now = Date.now(), limit = 10_000) {
      const rows = await policyStore.due(now, limit);
      return rows
        .filter((s) => allows(grants, { kind: 'list', project: s.project, env: s.env }))
        .map((s) => {
          const due = dueOf(s)!;
          return {
            project: s.project,
            env: s.env,
            key: s.key,
            version: s.version,
            updatedAt: iso(s.updatedAt)!,
            ...describe(s),
            dueAt: iso(due.dueAt)!,
            reason: due.reason,
            overdueMs: now - due.dueAt,
          };
        })
        .sort((a, b) => b.overdueMs - a.overdueMs);
    },

    /**
     * One scheduler pass (rotation-scheduler.ts): auto secrets that are due
     * get a new generated version, the others one secret.rotation_due event
     * per due time. Safe to run on every server at once.
     */
    async tick(now: number, holder: string) {
      let rotated = 0;
      let reminded = 0;
      let failed = 0;
      for (const s of await policyStore.due(now, TICK_BATCH)) {
        try {
          const r = await handleDue(s, now, holder);
          if (r === 'rotated') rotated++;
          else if (r === 'reminded') reminded++;
        } catch {
          failed++; // e.g. the env was deleted meanwhile; the next tick tries again
        }
      }
      await leaseStore.dropExpired('secret-rotation:', now).catch(() => undefined);
      return { rotated, reminded, failed };
    },
  };
}
export type LifecycleService = ReturnType<typeof lifecycleServiceFactory>;

/**
 * The number of live secrets overdue now (rotation period run out, or the
 * current version expired), across the whole vault. Needs no key: health
 * reports it, and the Prometheus metrics can call it
 * (`overdueSecretCount(container.stores.policies)`).
 */
export function overdueSecretCount(policies: Pick<PolicyStore, 'countDue'>, now = Date.now()): Promise<number> {
  return policies.countDue(now);
}
