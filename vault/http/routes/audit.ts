import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Container } from '../../container.js';
import { InvalidRequestError } from '../../errors.js';
import { withErrors, typed } from '../schemas.js';

const Event = Type.Object({
  seq: Type.Number(),
  ts: Type.String(),
  actor: Type.Object({ id: Type.String(), name: Type.String() }),
  action: Type.String(),
  project: Type.Union([Type.String(), Type.Null()]),
  env: Type.Union([Type.String(), Type.Null()]),
  target: Type.Record(Type.String(), Type.Unknown()),
  outcome: Type.String(),
  ip: Type.Union([Type.String(), Type.Null()]),
  requestId: Type.Union([Type.String(), Type.Null()]),
  detail: Type.Record(Type.String(), Type.Unknown()),
  stream: Type.Number(),
  streamSeq: Type.Number(),
  hash: Type.String(),
});

function time(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(t)) throw new InvalidRequestError(`${name} must be an ISO-8601 time or epoch milliseconds`);
  return t;
}

export function auditRoutes(base: FastifyInstance, c: Container) {
  const app = typed(base);
  app.get(
    '/v1/audit',
    {
      config: { auth: () => ({ kind: 'audit' }), action: 'audit.list' },
      schema: {
        summary: 'Audit events, filtered, with cursor pagination (audit)',
        querystring: Type.Object(
          {
            from: Type.Optional(Type.String({ maxLength: 40 })),
            to: Type.Optional(Type.String({ maxLength: 40 })),
            actor: Type.Optional(Type.String({ maxLength: 128 })),
            action: Type.Optional(Type.String({ maxLength: 64 })),
            project: Type.Optional(Type.String({ maxLength: 63 })),
            env: Type.Optional(Type.String({ maxLength: 63 })),
            outcome: Type.Optional(Type.Union([Type.Literal('ok'), Type.Literal('denied'), Type.Literal('error')])),
            cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
            limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
            order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
          },
          { additionalProperties: false },
        ),
        response: withErrors({ 200: Type.Object({ events: Type.Array(Event), nextCursor: Type.Union([Type.String(), Type.Null()]) }) }),
      },
    },
    async (req) => {
      const q = req.query;
      const limit = Math.min(Math.max(Number(q.limit ?? 100), 1), 1000);
      const order = q.order ?? 'asc';
      const cursor = q.cursor !== undefined ? Number(q.cursor) : undefined;
      const events = await c.audit.list({
        from: time(q.from, 'from'),
        to: time(q.to, 'to'),
        actor: q.actor,
        action: q.action,
        project: q.project,
        env: q.env,
        outcome: q.outcome,
        afterSeq: order === 'asc' ? cursor : undefined,
        beforeSeq: order === 'desc' ? cursor : undefined,
        limit,
        order,
      });
      return { events, nextCursor: events.length === limit ? String(events[events.length - 1].seq) : null };
    },
  );

  app.get(
    '/v1/audit/verify',
    {
      config: { auth: () => ({ kind: 'audit' }), action: 'audit.verify' },
      schema: {
        summary:
          "Recompute every stream's hash chain and the checkpoints; names the first broken seq (audit). " +
          'anchorSeq + anchorHash: also check an event hash kept outside the database; anchorCheckpoint + ' +
          'anchorCheckpointHash: a checkpoint kept outside it.',
        querystring: Type.Object(
          {
            anchorSeq: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,14}$' })),
            anchorHash: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$' })),
            anchorCheckpoint: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,14}$' })),
            anchorCheckpointHash: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$' })),
          },
          { additionalProperties: false },
        ),
        response: withErrors({
          200: Type.Object({
            ok: Type.Boolean(),
            checked: Type.Number(),
            firstBadSeq: Type.Union([Type.Number(), Type.Null()]),
            reason: Type.Union([Type.String(), Type.Null()]),
            headSeq: Type.Number(),
            headHash: Type.Union([Type.String(), Type.Null()]),
            streams: Type.Number(),
            checkpoint: Type.Union([Type.Object({ id: Type.Number(), hash: Type.String() }), Type.Null()]),
          }),
        }),
      },
    },
    async (req) => {
      const q = req.query;
      if ((q.anchorSeq === undefined) !== (q.anchorHash === undefined))
        throw new InvalidRequestError('anchorSeq and anchorHash go together');
      if ((q.anchorCheckpoint === undefined) !== (q.anchorCheckpointHash === undefined))
        throw new InvalidRequestError('anchorCheckpoint and anchorCheckpointHash go together');
      return c.audit.verify(
        q.anchorSeq !== undefined ? { seq: Number(q.anchorSeq), hash: q.anchorHash! } : undefined,
        q.anchorCheckpoint !== undefined ? { id: Number(q.anchorCheckpoint), hash: q.anchorCheckpointHash! } : undefined,
        { ctx: req.auditCtx, scheduled: false },
      );
    },
  );
}
