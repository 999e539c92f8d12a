import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Container } from '../../container.js';
import { CHARSETS } from '../../crypto/generate.js';
import type { Need } from '../../services/token/grants.js';
import { envOf, KeyParams, typed, withErrors } from '../schemas.js';

const need =
  (kind: 'list' | 'write') =>
  (req: FastifyRequest): Need => {
    const { p, e } = envOf(req);
    return { kind, project: p, env: e };
  };

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));
const Every = Type.String({ maxLength: 32, description: 'a duration such as 90d, 12h or 2w (1m to 3650d); null clears it' });
const Expiry = Type.String({ maxLength: 40, description: 'ISO 8601 date or time; binds the current version only; null clears it' });
const Generated = Type.Union([Type.Object({ charset: Type.String(), length: Type.Number() }), Type.Null()]);
const Policy = {
  rotateEvery: Type.Union([Type.String(), Type.Null()]),
  expiresAt: Type.Union([Type.String(), Type.Null()]),
  auto: Type.Boolean(),
  generated: Generated,
};
const NameTimes = { key: Type.String(), version: Type.Number() };

/** Generated secrets, rotation policies and overdue secrets (docs/lifecycle.md). */
export function lifecycleRoutes(base: FastifyInstance, c: Container) {
  const app = typed(base);
  app.post(
    '/v1/projects/:p/envs/:e/secrets/:key/generate',
    {
      config: { auth: need('write'), action: 'secret.write' },
      schema: {
        summary: 'Store a new value made by the server from a CSPRNG; the value is in the answer only with "show": true (write:P/E)',
        params: KeyParams,
        body: Type.Object(
          {
            charset: Type.Union(CHARSETS.map((c) => Type.Literal(c))),
            length: Type.Optional(
              Type.Integer({
                minimum: 1,
                maximum: 4096,
                description: 'characters, or words for "words" (default 32 characters / 6 words)',
              }),
            ),
            rotateEvery: Nullable(Every),
            expiresAt: Nullable(Expiry),
            auto: Type.Optional(Type.Boolean({ description: 'the server writes a new generated value when rotateEvery runs out' })),
            show: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: withErrors({
          200: Type.Object({
            ...NameTimes,
            revision: Type.Number(),
            charset: Type.String(),
            length: Type.Number(),
            bits: Type.Number(),
            policy: Type.Object(Policy),
            value: Type.Optional(Type.String()),
          }),
        }),
      },
    },
    async (req) => {
      const { p, e, key } = req.params;
      return c.lifecycle.generate(p, e, key, req.body, req.auditCtx);
    },
  );

  const PolicyAnswer = Type.Object({ ...NameTimes, ...Policy, dueAt: Type.Union([Type.String(), Type.Null()]) });

  app.get(
    '/v1/projects/:p/envs/:e/secrets/:key/policy',
    {
      config: { auth: need('list'), action: 'secret.policy' },
      schema: { summary: 'The rotation policy of a secret (list:P/E)', params: KeyParams, response: withErrors({ 200: PolicyAnswer }) },
    },
    async (req) => {
      const { p, e, key } = req.params;
      return c.lifecycle.getPolicy(p, e, key);
    },
  );

  app.put(
    '/v1/projects/:p/envs/:e/secrets/:key/policy',
    {
      config: { auth: need('write'), action: 'secret.policy' },
      schema: {
        summary: 'Set the rotation policy of a secret; fields not given are kept, null clears one (write:P/E)',
        params: KeyParams,
        body: Type.Object(
          { rotateEvery: Nullable(Every), expiresAt: Nullable(Expiry), auto: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
        response: withErrors({ 200: PolicyAnswer }),
      },
    },
    async (req) => {
      const { p, e, key } = req.params;
      return c.lifecycle.setPolicy(p, e, key, req.body, req.auditCtx);
    },
  );

  app.get(
    '/v1/secrets/stale',
    {
      config: { auth: 'any' },
      schema: {
        summary: 'Secrets overdue for rotation, or whose current version expired, in the envs the token may list; most overdue first',
        response: withErrors({
          200: Type.Object({
            secrets: Type.Array(
              Type.Object({
                project: Type.String(),
                env: Type.String(),
                ...NameTimes,
                updatedAt: Type.String(),
                ...Policy,
                dueAt: Type.String(),
                reason: Type.String(),
                overdueMs: Type.Number(),
              }),
            ),
          }),
        }),
      },
    },
    async (req) => ({ secrets: await c.lifecycle.stale(req.principal!.grants) }),
  );
}
