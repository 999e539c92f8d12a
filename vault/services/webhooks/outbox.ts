import type { AuditRow } from '../../store/audit-store.js';
import type { Tx } from '../../store/db.js';
import type { NewDelivery, WebhookStore } from '../../store/webhook-store.js';
import type { AuditContext, AuditInput, AuditOutbox } from '../audit/audit-service.js';
import type { JobEntries } from '../unit-of-work.js';
import { randomBytes } from 'node:crypto';
import { directEvent, eventsOf, VAULT_WIDE, type WebhookEvent } from './events.js';

/**
 * The transactional outbox: the audit service calls `enqueue` in the
 * transaction that appends a batch of events, so a delivery row exists
 * exactly when its event committed. Batches with no webhook event (reads,
 * almost always) cost nothing here; the others cost one statement to find
 * the subscriptions, and one to insert when any matches. Nothing is cached,
 * so a webhook created on another server gets the next event.
 */
export function webhookOutboxFactory(deps: { store: WebhookStore; onCommitted: () => void }): AuditOutbox {
  const { store } = deps;
  const outbox: AuditOutbox = {
    enqueue: (tx: Tx, jobs: JobEntries<AuditContext, AuditInput>[], rows: AuditRow[]) => fanOut(tx, eventsOf(jobs, rows)),
    async wants(type) {
      return (await store.candidates([])).some((h) => h.project === null && h.events.includes(type));
    },
    async announce(tx, type, data, ctx) {
      return fanOut(tx, [
        directEvent(
          `evt_${type.replace('.', '_')}_${randomBytes(6).toString('hex')}`,
          type,
          Date.now(),
          { id: ctx.actorId, name: ctx.actorName },
          data,
          ctx.requestId,
        ),
      ]);
    },
    committed: () => deps.onCommitted(),
  };

  return outbox;

  /** Writes a delivery of each event to every webhook that subscribed to it. */
  async function fanOut(tx: Tx, events: WebhookEvent[]): Promise<boolean> {
    if (events.length === 0) return false;
    const projects = [...new Set(events.map((e) => e.project).filter((p): p is string => p !== null))];
    const hooks = await store.candidates(projects, tx);
    if (hooks.length === 0) return false;
    const out: NewDelivery[] = [];
    for (const e of events) {
      for (const h of hooks) {
        if (!h.events.includes(e.type)) continue;
        if (h.project !== null && (h.project !== e.project || VAULT_WIDE.has(e.type))) continue;
        out.push({ webhookId: h.id, eventId: e.id, eventType: e.type, payload: e.payload, createdAt: e.at });
      }
    }
    if (out.length === 0) return false;
    await store.enqueue(out, tx);
    return true;
  }
}
