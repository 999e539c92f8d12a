import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Container } from '../../container.js';
import { EVENT_TYPES } from '../../services/webhooks/events.js';
import { withErrors, typed } from '../schemas.js';

const Id = Type.String({ pattern: '^wh_[0-9a-f]{16}$', description: 'webhook id' });
const Webhook = Type.Object({
  id: Type.String(),
  project: Type.Union([Type.String(), Type.Null()]),
  url: Type.String(),
  events: Type.Array(Type.String()),
  description: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  createdBy: Type.String(),
});
const Time = Type.Union([Type.String(), Type.Null()]);
const Delivery = Type.Object({
  id: Type.Number(),
  webhookId: Type.String(),
  eventId: Type.String(),
  eventType: Type.String(),
  status: Type.String(),
  attempts: Type.Number(),
  lastStatus: Type.Union([Type.Number(), Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]),
  createdAt: Time,
  lastAttemptAt: Time,
  deliveredAt: Time,
  nextAttemptAt: Time,
});
const EventName = Type.String({
  minLength: 1,
  maxLength: 40,
  description: `one of ${EVENT_TYPES.filter((t) => t !== 'webhook.test').join(', ')}`,
});

/** Webhooks: signed event notifications (docs/webhooks.md). Root manages all; admin of a project manages that project's. */
export function webhookRoutes(base: FastifyInstance, c: Container) {
  const app = typed(base);
  app.post(
    '/v1/webhooks',
    {
      config: { auth: 'any', action: 'webhook.create' },
      schema: {
        summary: 'Create a webhook; its signing secret is in this answer only (root, or admin of its project)',
        body: Type.Object(
          {
            url: Type.String({ minLength: 1, maxLength: 2048 }),
            events: Type.Array(EventName, { minItems: 1, maxItems: 20 }),
            project: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 63 }), Type.Null()])),
            description: Type.Optional(
              Type.Union([Type.String({ maxLength: 500, pattern: '^[^\\u0000-\\u0008\\u000b-\\u001f]*$' }), Type.Null()]),
            ),
          },
          { additionalProperties: false },
        ),
        response: withErrors({ 201: Type.Object({ webhook: Webhook, secret: Type.String() }) }),
      },
    },
    async (req, reply) => reply.status(201).send(await c.webhooks.create(req.principal!, req.body, req.auditCtx)),
  );

  app.get(
    '/v1/webhooks',
    {
      config: { auth: 'any' },
      schema: {
        summary: 'The webhooks the caller may manage',
        response: withErrors({ 200: Type.Object({ webhooks: Type.Array(Webhook) }) }),
      },
    },
    async (req) => ({ webhooks: await c.webhooks.list(req.principal!) }),
  );

  app.get(
    '/v1/webhooks/:id',
    {
      config: { auth: 'any' },
      schema: {
        summary: 'One webhook',
        params: Type.Object({ id: Id }, { additionalProperties: false }),
        response: withErrors({ 200: Webhook }),
      },
    },
    async (req) => c.webhooks.get(req.principal!, req.params.id),
  );

  app.delete(
    '/v1/webhooks/:id',
    {
      config: { auth: 'any', action: 'webhook.delete' },
      schema: {
        summary: 'Delete a webhook and its delivery log (pending deliveries are dropped)',
        params: Type.Object({ id: Id }, { additionalProperties: false }),
        response: withErrors({ 200: Type.Object({ id: Type.String(), deleted: Type.Boolean() }) }),
      },
    },
    async (req) => c.webhooks.delete(req.principal!, req.params.id, req.auditCtx),
  );

  app.get(
    '/v1/webhooks/:id/deliveries',
    {
      config: { auth: 'any' },
      schema: {
        summary: 'The delivery log of a webhook, newest first (status codes and errors; never a response body)',
        params: Type.Object({ id: Id }, { additionalProperties: false }),
        querystring: Type.Object(
          {
            status: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')])),
            before: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,14}$' })),
            limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,2}$', description: '1-500, default 50' })),
          },
          { additionalProperties: false },
        ),
        response: withErrors({
          200: Type.Object({ deliveries: Type.Array(Delivery), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
        }),
      },
    },
    async (req) => {
      const q = req.query;
      return c.webhooks.deliveries(req.principal!, req.params.id, {
        status: q.status,
        before: q.before === undefined ? undefined : Number(q.before),
        limit: q.limit === undefined ? undefined : Number(q.limit),
      });
    },
  );

  app.post(
    '/v1/webhooks/:id/deliveries/:delivery/redeliver',
    {
      config: { auth: 'any', action: 'webhook.redeliver' },
      schema: {
        summary: 'Send a delivery again now (same event id), whatever became of it',
        params: Type.Object({ id: Id, delivery: Type.String({ pattern: '^[1-9][0-9]{0,14}$' }) }, { additionalProperties: false }),
        response: withErrors({ 202: Delivery }),
      },
    },
    async (req, reply) => {
      const p = req.params;
      return reply.status(202).send(await c.webhooks.redeliver(req.principal!, p.id, Number(p.delivery), req.auditCtx));
    },
  );

  app.post(
    '/v1/webhooks/:id/test',
    {
      config: { auth: 'any', action: 'webhook.test' },
      schema: {
        summary: 'Queue a webhook.test event for this webhook only',
        params: Type.Object({ id: Id }, { additionalProperties: false }),
        response: withErrors({ 202: Type.Object({ eventId: Type.String() }) }),
      },
    },
    async (req, reply) => reply.status(202).send(await c.webhooks.test(req.principal!, req.params.id, req.auditCtx)),
  );
}
