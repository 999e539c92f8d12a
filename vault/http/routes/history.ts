import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Container } from '../../container.js';
import { InvalidRequestError } from '../../errors.js';
import type { Need } from '../../services/token/grants.js';
import { bodyOf, EnvName, EnvParams, envOf, KeyName, ProjectName, queryOf, typed, withErrors } from '../schemas.js';

const Revision = Type.String({ pattern: '^[0-9]{1,15}$' });
const EnvRef = Type.Object({ project: ProjectName, env: EnvName }, { additionalProperties: false });
const SideRef = Type.Object({ project: Type.String(), env: Type.String(), revision: Type.Number() });
const NameList = Type.Array(Type.String());

/** "P/E" of the query string, checked like path parameters. */
function envRef(text: string): { project: string; env: string } {
  const m = /^([a-z0-9][a-z0-9._-]{0,62})\/([a-z0-9][a-z0-9._-]{0,62})$/.exec(text);
  if (!m) throw new InvalidRequestError('query parameter "other" must be PROJECT/ENV (lower-case names)');
  return { project: m[1], env: m[2] };
}

const DiffQuery = Type.Object(
  {
    fromRevision: Type.Optional(Revision),
    toRevision: Type.Optional(Revision),
    other: Type.Optional(Type.String({ maxLength: 130 })),
    values: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
  },
  { additionalProperties: false },
);
const CopyBody = Type.Object(
  { from: EnvRef, only: Type.Optional(Type.Array(KeyName, { minItems: 1, maxItems: 100_000 })) },
  { additionalProperties: false },
);

/** Env history, diff, rollback and copy (docs/history.md). */
export function historyRoutes(base: FastifyInstance, c: Container) {
  const app = typed(base);
  app.get(
    '/v1/projects/:p/envs/:e/history',
    {
      config: { auth: (req): Need => ({ kind: 'list', project: envOf(req).p, env: envOf(req).e }), action: 'secrets.history' },
      schema: {
        summary: 'Revisions of an environment, newest first: who changed which names (list:P/E). No values.',
        params: EnvParams,
        querystring: Type.Object(
          {
            limit: Type.Optional(
              Type.String({ pattern: '^[1-9][0-9]{0,3}$', description: 'at most this many revisions (default 50, max 1000)' }),
            ),
            before: Type.Optional(Revision),
          },
          { additionalProperties: false },
        ),
        response: withErrors({
          200: Type.Object({
            revision: Type.Number(),
            revisions: Type.Array(
              Type.Object({
                revision: Type.Number(),
                createdAt: Type.String(),
                live: Type.Number(),
                actors: Type.Array(Type.Object({ id: Type.String(), name: Type.String() })),
                changes: Type.Array(Type.Object({ key: Type.String(), version: Type.Number(), action: Type.String() })),
              }),
            ),
            more: Type.Boolean(),
          }),
        }),
      },
    },
    async (req) => {
      const { p, e } = req.params;
      const q = req.query;
      return c.history.history(
        p,
        e,
        { limit: Math.min(Number(q.limit ?? 50), 1000), before: q.before === undefined ? undefined : Number(q.before) },
        req.auditCtx,
      );
    },
  );

  app.get(
    '/v1/projects/:p/envs/:e/diff',
    {
      config: {
        // The diff compares values, so both sides need read, even when only names are shown.
        auth: (req): Need[] => {
          const { p, e } = envOf(req);
          const other = queryOf(DiffQuery)(req).other;
          const needs: Need[] = [{ kind: 'read', project: p, env: e }];
          if (other) {
            const o = envRef(other);
            needs.push({ kind: 'read', project: o.project, env: o.env });
          }
          return needs;
        },
        action: 'secrets.diff',
      },
      schema: {
        summary:
          'What differs between two revisions of this environment (fromRevision, toRevision: default ' +
          'current), or between it and another (other=P/E). Names only; values=true adds the values and is ' +
          'audited as a read (read:P/E on both sides).',
        params: EnvParams,
        querystring: DiffQuery,
        response: withErrors({
          200: Type.Object({
            from: SideRef,
            to: SideRef,
            added: NameList,
            removed: NameList,
            changed: NameList,
            unchanged: Type.Number(),
            values: Type.Optional(
              Type.Record(
                Type.String(),
                Type.Object({ from: Type.Union([Type.String(), Type.Null()]), to: Type.Union([Type.String(), Type.Null()]) }),
              ),
            ),
          }),
        }),
      },
    },
    async (req) => {
      const { p, e } = req.params;
      const q = req.query;
      const num = (v?: string) => (v === undefined ? undefined : Number(v));
      if (q.other !== undefined) {
        if (q.fromRevision !== undefined || q.toRevision !== undefined)
          throw new InvalidRequestError('give either "other" or revisions, not both');
        return c.history.diff({ project: p, env: e }, envRef(q.other), q.values === 'true', req.auditCtx);
      }
      if (q.fromRevision === undefined) throw new InvalidRequestError('give "fromRevision" (and optionally "toRevision"), or "other"');
      return c.history.diff(
        { project: p, env: e, revision: num(q.fromRevision) },
        { project: p, env: e, revision: num(q.toRevision) },
        q.values === 'true',
        req.auditCtx,
      );
    },
  );

  app.post(
    '/v1/projects/:p/envs/:e/rollback',
    {
      config: { auth: (req): Need => ({ kind: 'write', project: envOf(req).p, env: envOf(req).e }), action: 'secrets.rollback' },
      schema: {
        summary: "Write a new revision whose values equal revision toRevision's (write:P/E). Nothing is written " + 'when they already do.',
        params: EnvParams,
        body: Type.Object({ toRevision: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }) }, { additionalProperties: false }),
        response: withErrors({
          200: Type.Object({
            revision: Type.Number(),
            toRevision: Type.Number(),
            added: NameList,
            changed: NameList,
            deleted: NameList,
            unchanged: NameList,
          }),
        }),
      },
    },
    async (req) => c.history.rollback(req.params.p, req.params.e, req.body.toRevision, req.auditCtx),
  );

  app.post(
    '/v1/projects/:p/envs/:e/copy',
    {
      config: {
        auth: (req): Need[] => {
          const from = bodyOf(CopyBody)(req).from;
          return [
            { kind: 'read', project: from.project, env: from.env },
            { kind: 'write', project: envOf(req).p, env: envOf(req).e },
          ];
        },
        action: 'secrets.copy',
      },
      schema: {
        summary:
          'Copy values from another environment into this one (read on the source, write:P/E here); "only" ' +
          'limits the names. Names only in this environment stay.',
        params: EnvParams,
        body: CopyBody,
        response: withErrors({
          200: Type.Object({ from: SideRef, revision: Type.Number(), added: NameList, changed: NameList, unchanged: NameList }),
        }),
      },
    },
    async (req) => {
      const b = req.body;
      return c.history.copy(b.from, { project: req.params.p, env: req.params.e }, b.only, req.auditCtx);
    },
  );
}
