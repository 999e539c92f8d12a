import type { AuditRow } from '../../store/audit-store.js';

/**
 * Webhook events, and how the audit log's events become them.
 *
 * Webhooks are fed from the audit log: when a batch of audit events is
 * appended, the events below are derived from it and written to the
 * delivery outbox in the same transaction. So a webhook announces exactly
 * what the audit log recorded, nothing that rolled back, and a crash after
 * the commit still delivers (at least once). A payload names projects,
 * envs, keys and tokens, never a value.
 */
export const EVENT_TYPES = [
  'secret.changed',
  'secret.rotation_due',
  'token.created',
  'token.revoked',
  'auth.fail_burst',
  'root.used',
  'audit.verify_failed',
  'backup.failed',
  'webhook.test',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Events about the vault as a whole, not one project: only webhooks without a project (root's) receive them. */
export const VAULT_WIDE: ReadonlySet<string> = new Set([
  'token.created',
  'token.revoked',
  'auth.fail_burst',
  'root.used',
  'audit.verify_failed',
  'backup.failed',
]);

/** Audit actions that change secrets (an ok outcome). Rotation and the history commands write through these too. */
const SECRET_CHANGES = new Set([
  'secret.write',
  'secret.delete',
  'secrets.bulk',
  'secrets.import',
  'secrets.rollback',
  'secrets.copy',
  'secret.generate',
  'secret.rotate',
]);

export interface WebhookEvent {
  id: string;
  type: EventType;
  /** Epoch ms of the audit event. */
  at: number;
  project: string | null;
  env: string | null;
  /** The JSON body sent (and stored in the outbox). */
  payload: string;
}

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];

/** The key names an audit target names (a write's key, a bulk write's added/changed/deleted). */
function keysOf(target: Record<string, unknown>): string[] {
  return [
    ...new Set([
      ...strings(target.key),
      ...strings(target.keys),
      ...strings(target.added),
      ...strings(target.changed),
      ...strings(target.deleted),
    ]),
  ].sort();
}

function event(row: AuditRow, type: EventType, data: Record<string, unknown>, id = `evt_${row.seq}`): WebhookEvent {
  const body = {
    id,
    type,
    createdAt: new Date(row.ts).toISOString(),
    project: row.project,
    env: row.env,
    actor: { id: row.actorId, name: row.actorName },
    auditSeq: row.seq,
    requestId: row.requestId,
    data,
  };
  return { id, type, at: row.ts, project: row.project, env: row.env, payload: JSON.stringify(body) };
}

/**
 * The webhook events of one appended batch, in audit order: `jobs` as the
 * unit of work gave them (each job's context with its entries) and `rows`
 * the events as stored, in the same order.
 */
export function eventsOf(jobs: { inputs: unknown[] }[], rows: AuditRow[]): WebhookEvent[] {
  const out: WebhookEvent[] = [];
  let i = 0;
  for (const { inputs } of jobs) {
    for (let n = 0; n < inputs.length; n++, i++) {
      const row = rows[i];
      if (!row) continue;
      const t = row.target;
      const d = row.detail;
      if (row.outcome === 'ok' && SECRET_CHANGES.has(row.action))
        out.push(event(row, 'secret.changed', { action: row.action, keys: keysOf(t) }));
      else if (row.action === 'secret.rotation_due')
        out.push(event(row, 'secret.rotation_due', { keys: keysOf(t), ...pick(d, ['rotateEvery', 'dueAt', 'expiresAt']) }));
      else if (row.outcome === 'ok' && row.action === 'token.create')
        out.push(
          event(row, 'token.created', { tokenId: t.tokenId, name: t.name, scopes: strings(d.scopes), expiresAt: d.expiresAt ?? null }),
        );
      else if (row.outcome === 'ok' && row.action === 'auth.jwt.login') {
        out.push(
          event(row, 'token.created', {
            tokenId: t.tokenId,
            name: `jwt:${String(t.role)}`,
            role: t.role,
            scopes: strings(d.scopes),
            expiresAt: d.expiresAt ?? null,
          }),
        );
      } else if (row.outcome === 'ok' && row.action === 'token.revoke')
        out.push(event(row, 'token.revoked', { tokenId: t.tokenId, name: t.name, revoked: d.revoked ?? null }));
      else if (row.action === 'auth.fail_burst')
        out.push(event(row, 'auth.fail_burst', { ip: row.ip, ...pick(d, ['count', 'windowSeconds', 'threshold', 'reasons']) }));
      else if (row.action === 'backup.create' && row.outcome === 'error')
        out.push(event(row, 'backup.failed', pick(d, ['scheduled', 'error'])));
    }
  }
  return out;
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** An event that is no audit event of its own: a root request, a failed verify, a webhook's test. Vault-wide. */
export function directEvent(
  eventId: string,
  type: EventType,
  at: number,
  actor: { id: string; name: string },
  data: Record<string, unknown>,
  requestId: string | null = null,
): WebhookEvent {
  const body = {
    id: eventId,
    type,
    createdAt: new Date(at).toISOString(),
    project: null,
    env: null,
    actor,
    auditSeq: null,
    requestId,
    data,
  };
  return { id: eventId, type, at, project: null, env: null, payload: JSON.stringify(body) };
}

/** A test event for one webhook (`hush webhooks test`). */
export const testEvent = (webhookId: string, eventId: string, at: number, actor: { id: string; name: string }) =>
  directEvent(eventId, 'webhook.test', at, actor, { webhookId });
