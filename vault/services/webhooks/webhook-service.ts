import { randomBytes } from 'node:crypto';
import { AlreadyExistsError, ForbiddenError, HushError, InvalidRequestError } from '../../errors.js';
import type { DeliveryRow, DeliveryStatus, WebhookRow, WebhookStore } from '../../store/webhook-store.js';
import type { AuditContext, AuditService } from '../audit/audit-service.js';
import type { KeyService } from '../key/key-service.js';
import { allows } from '../token/grants.js';
import { refuseTokenText } from '../token/redact.js';
import type { Principal as TokenPrincipal } from '../token/token-service.js';
import { EVENT_TYPES, testEvent, VAULT_WIDE } from './events.js';
import { literalIp, refusedAddress } from './send.js';

export interface WebhookInput {
  url: string;
  events: string[];
  project?: string | null;
  description?: string | null;
}
type Principal = Pick<TokenPrincipal, 'tokenId' | 'name' | 'grants'>;

export const MAX_URL_CHARS = 2048;
/** Webhooks a vault may hold: each is a fan-out of every matching event. */
export const MAX_WEBHOOKS = 100;
const PROJECT_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export class WebhookNotFoundError extends HushError {
  constructor(message: string) {
    super('webhook_not_found', 404, message);
  }
}

/** What a caller sees of a webhook (never its secret, which is shown once by create). */
export function publicWebhook(w: WebhookRow) {
  return {
    id: w.id,
    project: w.project,
    url: w.url,
    events: w.events,
    description: w.description,
    createdAt: new Date(w.createdAt).toISOString(),
    createdBy: w.createdBy,
  };
}

export function publicDelivery(d: DeliveryRow) {
  const iso = (n: number | null) => (n === null ? null : new Date(n).toISOString());
  return {
    id: d.id,
    webhookId: d.webhookId,
    eventId: d.eventId,
    eventType: d.eventType,
    status: d.status,
    attempts: d.attempts,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    createdAt: iso(d.createdAt),
    lastAttemptAt: iso(d.lastAttemptAt),
    deliveredAt: iso(d.deliveredAt),
    nextAttemptAt: d.status === 'pending' ? iso(d.nextAttemptAt) : null,
  };
}

/** The URL's origin only: a path may hold a receiver's own credential, so events and logs record no more. */
export const urlOrigin = (url: string) => {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
};

const isUnique = (e: unknown) =>
  /unique|23505|SQLITE_CONSTRAINT/i.test(`${(e as { code?: string })?.code ?? ''} ${(e as Error)?.message ?? ''}`);

/** Webhook subscriptions: who may manage which, and what a valid one is (docs/webhooks.md). */
export function webhookServiceFactory(deps: {
  store: WebhookStore;
  keys: Pick<KeyService, 'webhookSigner'>;
  audit: Pick<AuditService, 'run'>;
  allowPrivate: boolean;
  onEnqueued: () => void;
}) {
  const { store, keys, audit, allowPrivate } = deps;

  /** Root manages every webhook; admin of a project manages that project's. */
  const mayManage = (p: Principal, project: string | null) =>
    project === null ? allows(p.grants, { kind: 'root' }) : allows(p.grants, { kind: 'admin', project });

  function validateUrl(raw: string): string {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new InvalidRequestError('url is not a valid absolute URL, such as https://hooks.example.com/hush');
    }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && allowPrivate)) {
      throw new InvalidRequestError(`url must use https:// (http:// is accepted only on a server started with --allow-private-webhooks)`);
    }
    if (u.username || u.password)
      throw new InvalidRequestError('url must not carry a user name or password: the receiver checks the Hush-Signature header instead');
    if (u.hash) throw new InvalidRequestError('url must not have a #fragment');
    const ip = literalIp(u.hostname);
    if (!allowPrivate) {
      const why = ip ? refusedAddress(ip) : /^(localhost|.*\.localhost|.*\.local|.*\.internal)$/i.test(u.hostname) ? 'local name' : null;
      if (why)
        throw new InvalidRequestError(
          `url points to a ${why}: private, loopback and link-local targets are refused unless the server runs with --allow-private-webhooks`,
        );
    }
    return u.toString();
  }

  function validateEvents(events: string[], project: string | null): string[] {
    const out = [...new Set(events)];
    if (out.length === 0) throw new InvalidRequestError('events must name at least one event type');
    for (const e of out) {
      if (!(EVENT_TYPES as readonly string[]).includes(e) || e === 'webhook.test') {
        throw new InvalidRequestError(
          `unknown event type "${String(e).slice(0, 40)}": use ${EVENT_TYPES.filter((t) => t !== 'webhook.test').join(', ')}`,
        );
      }
      if (project !== null && VAULT_WIDE.has(e))
        throw new InvalidRequestError(
          `${e} is an event of the whole vault: only a webhook without a project (created by root) receives it`,
        );
    }
    return out.sort();
  }

  async function visible(p: Principal, id: string): Promise<WebhookRow> {
    const w = /^wh_[0-9a-f]{16}$/.test(id) ? await store.get(id) : null;
    if (!w || !mayManage(p, w.project)) throw new WebhookNotFoundError(`webhook ${id.slice(0, 40)} not found`);
    return w;
  }

  return {
    /** Creates a webhook; the signing secret is in the answer, and never again. */
    async create(p: Principal, input: WebhookInput, ctx: AuditContext) {
      const project = input.project ?? null;
      if (project !== null && !PROJECT_RE.test(project))
        throw new InvalidRequestError('project must be a project name (lower-case letters, digits, ".", "_" and "-")');
      if (!mayManage(p, project)) {
        throw new ForbiddenError(
          project === null
            ? 'a webhook for the whole vault needs root; give --project for a project you administer'
            : `a webhook for project ${project} needs admin:${project}`,
        );
      }
      if (typeof input.url !== 'string' || input.url.length > MAX_URL_CHARS)
        throw new InvalidRequestError(`url must be at most ${MAX_URL_CHARS} characters`);
      refuseTokenText('url', input.url);
      refuseTokenText('description', input.description);
      const url = validateUrl(input.url);
      const events = validateEvents(input.events, project);
      const row: WebhookRow = {
        id: `wh_${randomBytes(8).toString('hex')}`,
        project,
        url,
        events,
        description: input.description ?? null,
        salt: randomBytes(16).toString('hex'),
        createdAt: Date.now(),
        createdBy: p.tokenId,
      };
      const attempt = () =>
        audit.run(ctx, async (tx, record) => {
          if ((await store.list(tx)).length >= MAX_WEBHOOKS)
            throw new HushError('too_many_webhooks', 409, `a vault holds at most ${MAX_WEBHOOKS} webhooks: delete one first`);
          const signer = await keys.webhookSigner(tx, true);
          await store.insert(row, tx);
          await record({
            action: 'webhook.create',
            outcome: 'ok',
            project,
            target: { webhookId: row.id },
            detail: { origin: urlOrigin(url), events },
          });
          return signer.secret(row.id, row.salt);
        });
      let secret: string;
      try {
        secret = await attempt();
      } catch (e) {
        // Two servers making the vault's first webhook at once: one wrote the webhook key, the other goes again.
        if (!isUnique(e)) throw e;
        secret = await attempt().catch((e2) => {
          throw isUnique(e2) ? new AlreadyExistsError('the webhook could not be created (a conflicting write); try again') : e2;
        });
      }
      return { webhook: publicWebhook(row), secret };
    },

    async list(p: Principal) {
      return (await store.list()).filter((w) => mayManage(p, w.project)).map(publicWebhook);
    },

    async get(p: Principal, id: string) {
      return publicWebhook(await visible(p, id));
    },

    async delete(p: Principal, id: string, ctx: AuditContext) {
      const w = await visible(p, id);
      await audit.run(ctx, async (tx, record) => {
        if (!(await store.delete(id, tx))) throw new WebhookNotFoundError(`webhook ${id} not found`);
        await record({
          action: 'webhook.delete',
          outcome: 'ok',
          project: w.project,
          target: { webhookId: id },
          detail: { origin: urlOrigin(w.url) },
        });
      });
      return { id, deleted: true };
    },

    async deliveries(p: Principal, id: string, q: { status?: DeliveryStatus; before?: number; limit?: number }) {
      await visible(p, id);
      const limit = Math.min(Math.max(q.limit ?? 50, 1), 500);
      const rows = await store.deliveries(id, q.status ?? null, q.before ?? Number.MAX_SAFE_INTEGER, limit);
      return { deliveries: rows.map(publicDelivery), nextCursor: rows.length === limit ? String(rows[rows.length - 1].id) : null };
    },

    /** Sends a delivery again (pending now), whatever became of it; the event id stays, so receivers can tell a repeat. */
    async redeliver(p: Principal, id: string, deliveryId: number, ctx: AuditContext) {
      const w = await visible(p, id);
      const d = await store.delivery(deliveryId);
      if (!d || d.webhookId !== id) throw new HushError('delivery_not_found', 404, `delivery ${deliveryId} of webhook ${id} not found`);
      await audit.run(ctx, async (tx, record) => {
        await store.redeliver(deliveryId, Date.now(), tx);
        await record({
          action: 'webhook.redeliver',
          outcome: 'ok',
          project: w.project,
          target: { webhookId: id, deliveryId, eventId: d.eventId },
        });
      });
      deps.onEnqueued();
      return publicDelivery((await store.delivery(deliveryId))!);
    },

    /** Queues a `webhook.test` event for this webhook only. */
    async test(p: Principal, id: string, ctx: AuditContext) {
      const w = await visible(p, id);
      const ev = testEvent(id, `evt_test_${randomBytes(8).toString('hex')}`, Date.now(), { id: p.tokenId, name: p.name });
      await audit.run(ctx, async (tx, record) => {
        await store.enqueue([{ webhookId: id, eventId: ev.id, eventType: ev.type, payload: ev.payload, createdAt: ev.at }], tx);
        await record({ action: 'webhook.test', outcome: 'ok', project: w.project, target: { webhookId: id, eventId: ev.id } });
      });
      deps.onEnqueued();
      return { eventId: ev.id };
    },
  };
}
export type WebhookService = ReturnType<typeof webhookServiceFactory>;
