import type { Db, Tx } from './db.js';
import { insertRows, query, rowsInsert, sql } from './sql.js';

/** A webhook subscription as stored (services/webhooks decides what it means). */
export interface WebhookRow {
  id: string;
  /** Null: every project (root only). */
  project: string | null;
  url: string;
  events: string[];
  description: string | null;
  /** Hex; with the vault's webhook key it derives the signing secret (crypto/webhook-signing.ts). */
  salt: string;
  createdAt: number;
  createdBy: string;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface DeliveryRow {
  id: number;
  webhookId: string;
  eventId: string;
  eventType: string;
  payload: string;
  createdAt: number;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number;
  lastStatus: number | null;
  lastError: string | null;
  lastAttemptAt: number | null;
  deliveredAt: number | null;
}

/** A delivery to make now: claimed under a lease by one server. */
export interface ClaimedDelivery extends DeliveryRow {
  url: string;
  salt: string;
}

const W_COLS = 'id, project, url, events, description, salt, created_at, created_by';
const D_COLS =
  'id, webhook_id, event_id, event_type, payload, created_at, status, attempts, next_attempt_at, last_status, last_error, last_attempt_at, delivered_at';

const toWebhook = (r: any): WebhookRow => ({
  id: r.id,
  project: r.project ?? null,
  url: r.url,
  events: JSON.parse(r.events),
  description: r.description ?? null,
  salt: r.salt,
  createdAt: Number(r.created_at),
  createdBy: r.created_by,
});
const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const toDelivery = (r: any): DeliveryRow => ({
  id: Number(r.id),
  webhookId: r.webhook_id,
  eventId: r.event_id,
  eventType: r.event_type,
  payload: r.payload,
  createdAt: Number(r.created_at),
  status: r.status,
  attempts: Number(r.attempts),
  nextAttemptAt: Number(r.next_attempt_at),
  lastStatus: num(r.last_status),
  lastError: r.last_error ?? null,
  lastAttemptAt: num(r.last_attempt_at),
  deliveredAt: num(r.delivered_at),
});

const Q = {
  insert: query(`insert into webhooks (${W_COLS}) values (?, ?, ?, ?, ?, ?, ?, ?)`),
  get: query(`select ${W_COLS} from webhooks where id = ?`),
  list: query(`select ${W_COLS} from webhooks order by created_at, id collate_c`),
  delete: query('delete from webhooks where id = ?'),
  /** The subscriptions an event of `project` (null: a vault-wide event) may reach: one statement per append that has events. */
  candidates: query(`select ${W_COLS} from webhooks where project is null or project in json_text_list(?)`),
  /**
   * Claims up to `limit` due deliveries for `holder` until `leaseUntil`.
   * PostgreSQL skips rows another server is claiming at the same moment;
   * a lease that ran out (its server died mid-delivery) is claimable again.
   * Params: holder, leaseUntil, now, now, limit.
   */
  claim: query(`update webhook_deliveries set lease_holder = ?, lease_until = ?
    where id in (select id from webhook_deliveries where status = 'pending' and next_attempt_at <= ? and (lease_until is null or lease_until < ?)
      order by next_attempt_at, id limit ? for_update_skip_locked)
    returning ${D_COLS}`),
  urlsOf: query(`select id, url, salt from webhooks where id in json_text_list(?)`),
  /** Params: status, attempts, nextAttemptAt, lastStatus, lastError, lastAttemptAt, deliveredAt, id, holder. Only while the lease is this server's. */
  settle:
    query(`update webhook_deliveries set status = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?, last_attempt_at = ?, delivered_at = ?,
    lease_holder = null, lease_until = null where id = ? and lease_holder = ?`),
  deliveries: query(
    `select ${D_COLS} from webhook_deliveries where webhook_id = ? and (? = '' or status = ?) and id < ? order by id desc limit ?`,
  ),
  delivery: query(`select ${D_COLS} from webhook_deliveries where id = ?`),
  redeliver: query(
    `update webhook_deliveries set status = 'pending', next_attempt_at = ?, lease_holder = null, lease_until = null where id = ?`,
  ),
  nextDue: query(`select min(next_attempt_at) as due from webhook_deliveries where status = 'pending'`),
};

const DELIVERY_INSERT = rowsInsert(
  'webhook_deliveries',
  ['webhook_id', 'event_id', 'event_type', 'payload', 'created_at', 'status', 'attempts', 'next_attempt_at'],
  [50, 10, 1],
);

export interface NewDelivery {
  webhookId: string;
  eventId: string;
  eventType: string;
  payload: string;
  createdAt: number;
}

export function webhookStoreFactory(db: Db) {
  return {
    async insert(w: WebhookRow, tx: Tx): Promise<void> {
      await sql(db, tx).run(Q.insert, w.id, w.project, w.url, JSON.stringify(w.events), w.description, w.salt, w.createdAt, w.createdBy);
    },
    async get(id: string, tx?: Tx): Promise<WebhookRow | null> {
      const r = await sql(db, tx).get(Q.get, id);
      return r ? toWebhook(r) : null;
    },
    async list(tx?: Tx): Promise<WebhookRow[]> {
      return (await sql(db, tx).all(Q.list)).map(toWebhook);
    },
    async delete(id: string, tx: Tx): Promise<boolean> {
      return (await sql(db, tx).run(Q.delete, id)) > 0;
    },
    /** Webhooks that may want an event of these projects (vault-wide ones always). Read in the append's transaction. */
    async candidates(projects: string[], tx?: Tx): Promise<WebhookRow[]> {
      return (await sql(db, tx).all(Q.candidates, JSON.stringify(projects))).map(toWebhook);
    },
    /** The outbox: deliveries written in the transaction of the events they announce. */
    async enqueue(rows: NewDelivery[], tx: Tx): Promise<void> {
      await insertRows(
        sql(db, tx),
        DELIVERY_INSERT,
        rows.map((d) => [d.webhookId, d.eventId, d.eventType, d.payload, d.createdAt, 'pending', 0, d.createdAt]),
      );
    },
    async claim(holder: string, now: number, leaseMs: number, limit: number, tx: Tx): Promise<ClaimedDelivery[]> {
      const rows = (await sql(db, tx).all(Q.claim, holder, now + leaseMs, now, now, limit)).map(toDelivery);
      if (rows.length === 0) return [];
      const hooks = new Map(
        (await sql(db, tx).all(Q.urlsOf, JSON.stringify([...new Set(rows.map((r) => r.webhookId))]))).map((h) => [h.id as string, h]),
      );
      return rows.flatMap((r) => {
        const h = hooks.get(r.webhookId);
        return h ? [{ ...r, url: h.url as string, salt: h.salt as string }] : [];
      });
    },
    /** Records an attempt's outcome; false when the lease was lost meanwhile (another server owns the row now). */
    async settle(
      d: Pick<DeliveryRow, 'id' | 'status' | 'attempts' | 'nextAttemptAt' | 'lastStatus' | 'lastError' | 'lastAttemptAt' | 'deliveredAt'>,
      holder: string,
      tx: Tx,
    ): Promise<boolean> {
      return (
        (await sql(db, tx).run(
          Q.settle,
          d.status,
          d.attempts,
          d.nextAttemptAt,
          d.lastStatus,
          d.lastError,
          d.lastAttemptAt,
          d.deliveredAt,
          d.id,
          holder,
        )) > 0
      );
    },
    /** Newest first, before `beforeId`. */
    async deliveries(webhookId: string, status: DeliveryStatus | null, beforeId: number, limit: number, tx?: Tx): Promise<DeliveryRow[]> {
      return (await sql(db, tx).all(Q.deliveries, webhookId, status ?? '', status ?? '', beforeId, limit)).map(toDelivery);
    },
    async delivery(id: number, tx?: Tx): Promise<DeliveryRow | null> {
      const r = await sql(db, tx).get(Q.delivery, id);
      return r ? toDelivery(r) : null;
    },
    async redeliver(id: number, now: number, tx: Tx): Promise<boolean> {
      return (await sql(db, tx).run(Q.redeliver, now, id)) > 0;
    },
    /** When the earliest pending delivery is due (null: none pending). */
    async nextDue(tx?: Tx): Promise<number | null> {
      const r = await sql(db, tx).get(Q.nextDue);
      return r?.due == null ? null : Number(r.due);
    },
  };
}
export type WebhookStore = ReturnType<typeof webhookStoreFactory>;
