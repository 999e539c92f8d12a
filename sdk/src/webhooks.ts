import type { HttpRequest } from './http.js';
import type { CallOptions } from './types.js';

/** Event types a webhook may subscribe to (docs/webhooks.md#events). */
export type WebhookEventType =
  | 'secret.changed'
  | 'secret.rotation_due'
  | 'token.created'
  | 'token.revoked'
  | 'auth.fail_burst'
  | 'root.used'
  | 'audit.verify_failed'
  | 'backup.failed';

export interface Webhook {
  id: string;
  /** Null: the whole vault (root's). */
  project: string | null;
  url: string;
  events: WebhookEventType[];
  description: string | null;
  createdAt: string;
  createdBy: string;
}

export interface WebhookCreateInput {
  /** https://… (http:// only on a server started with --allow-private-webhooks). */
  url: string;
  events: WebhookEventType[];
  /** A project you administer; absent: the whole vault (root only). */
  project?: string;
  description?: string;
}

export interface WebhookCreated {
  webhook: Webhook;
  /** The signing secret (`whsec_…`): shown in this answer only. */
  secret: string;
}

export interface WebhookDelivery {
  id: number;
  webhookId: string;
  eventId: string;
  eventType: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string | null;
  lastAttemptAt: string | null;
  deliveredAt: string | null;
  nextAttemptAt: string | null;
}

export interface WebhookDeliveryQuery extends CallOptions {
  status?: 'pending' | 'delivered' | 'failed';
  /** The `nextCursor` of the page before. */
  before?: string;
  /** 1-500, default 50. */
  limit?: number;
}

/**
 * Webhooks: signed notifications of vault events (docs/webhooks.md).
 *
 * @example
 * ```ts
 * const { webhook, secret } = await client.webhooks.create({ url: 'https://hooks.example.com/hush', events: ['secret.changed'], project: 'api' });
 * ```
 */
export interface WebhooksApi {
  /** Creates a webhook. The signing secret is in the answer only. Root, or admin of its project. */
  create(input: WebhookCreateInput, options?: CallOptions): Promise<WebhookCreated>;
  /** The webhooks the caller may manage. */
  list(options?: CallOptions): Promise<Webhook[]>;
  get(id: string, options?: CallOptions): Promise<Webhook>;
  delete(id: string, options?: CallOptions): Promise<{ id: string; deleted: boolean }>;
  /** The delivery log, newest first. */
  deliveries(id: string, query?: WebhookDeliveryQuery): Promise<{ deliveries: WebhookDelivery[]; nextCursor: string | null }>;
  /** Sends a delivery again now, with the same event id. */
  redeliver(id: string, deliveryId: number, options?: CallOptions): Promise<WebhookDelivery>;
  /** Queues a `webhook.test` event for this webhook only. */
  test(id: string, options?: CallOptions): Promise<{ eventId: string }>;
}

type Call = <T>(req: HttpRequest) => Promise<T>;
const seg = encodeURIComponent;

export function webhooksApi(call: Call, opts: (o: CallOptions | undefined) => Pick<HttpRequest, 'signal' | 'timeoutMs'>): WebhooksApi {
  return {
    create: (input, o) => call({ method: 'POST', path: '/v1/webhooks', body: input, retry: 'never', ...opts(o) }),
    list: async (o) => (await call<{ webhooks: Webhook[] }>({ method: 'GET', path: '/v1/webhooks', ...opts(o) })).webhooks,
    get: (id, o) => call({ method: 'GET', path: `/v1/webhooks/${seg(id)}`, ...opts(o) }),
    delete: (id, o) => call({ method: 'DELETE', path: `/v1/webhooks/${seg(id)}`, ...opts(o) }),
    deliveries: (id, q) =>
      call({
        method: 'GET',
        path: `/v1/webhooks/${seg(id)}/deliveries`,
        ...opts(q),
        query: { status: q?.status, before: q?.before, limit: q?.limit === undefined ? undefined : String(q.limit) },
      }),
    redeliver: (id, deliveryId, o) =>
      call({ method: 'POST', path: `/v1/webhooks/${seg(id)}/deliveries/${seg(String(deliveryId))}/redeliver`, body: {}, ...opts(o) }),
    test: (id, o) => call({ method: 'POST', path: `/v1/webhooks/${seg(id)}/test`, body: {}, ...opts(o) }),
  };
}
