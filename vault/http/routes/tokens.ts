import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Container } from '../../container.js';
import { paramsOf, Token, typed, withErrors } from '../schemas.js';

const TokenIdParams = Type.Object({ id: Type.String({ pattern: '^tok_[0-9A-Za-z]{1,40}$' }) }, { additionalProperties: false });

export function tokenRoutes(base: FastifyInstance, c: Container) {
  const app = typed(base);
  app.post(
    '/v1/tokens',
    {
      config: {
        auth: 'any',
        action: 'token.create',
        // A refused create records what was asked for (the scopes, CIDRs and TTL), never a token.
        auditFailure: (req) => {
          const b = (req.body ?? {}) as { name?: unknown; scopes?: unknown; cidrs?: unknown; ttl?: unknown };
          const strings = (v: unknown) =>
            Array.isArray(v)
              ? v
                  .filter((x): x is string => typeof x === 'string')
                  .slice(0, 100)
                  .map((x) => x.slice(0, 200))
              : undefined;
          return {
            target: typeof b.name === 'string' ? { name: b.name.slice(0, 128) } : {},
            detail: {
              requestedScopes: strings(b.scopes) ?? [],
              ...(b.cidrs !== undefined ? { requestedCidrs: strings(b.cidrs) ?? [] } : {}),
              ...(typeof b.ttl === 'string' ? { requestedTtl: b.ttl.slice(0, 32) } : {}),
            },
          };
        },
      },
      schema: {
        summary: "Create a child token within the caller's grants and remaining TTL. The token string is returned once.",
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f]+$' }),
            scopes: Type.Array(Type.String({ maxLength: 200 }), { minItems: 1, maxItems: 100 }),
            ttl: Type.Optional(Type.String({ maxLength: 32 })),
            cidrs: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 100 })),
            description: Type.Optional(Type.String({ maxLength: 1024 })),
          },
          { additionalProperties: false },
        ),
        response: withErrors({ 201: Type.Intersect([Token, Type.Object({ token: Type.String() })]) }),
      },
    },
    async (req, reply) => reply.status(201).send(await c.tokens.create(req.principal!, req.body, req.auditCtx)),
  );

  app.get(
    '/v1/tokens',
    {
      config: { auth: 'any' },
      schema: {
        summary: 'Tokens visible to the caller (itself and its descendants; root sees all). No secrets.',
        querystring: Type.Object(
          {
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
            includeRevoked: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
          },
          { additionalProperties: false },
        ),
        response: withErrors({ 200: Type.Object({ tokens: Type.Array(Token) }) }),
      },
    },
    async (req) => {
      const q = req.query;
      return { tokens: await c.tokens.list(req.principal!, { name: q.name, includeRevoked: q.includeRevoked === 'true' }) };
    },
  );

  app.get(
    '/v1/tokens/self',
    {
      config: { auth: 'any' },
      schema: { summary: "The calling token's metadata", response: withErrors({ 200: Token }) },
    },
    async (req) => c.tokens.self(req.principal!),
  );

  app.delete(
    '/v1/tokens/:id',
    {
      config: {
        auth: 'any',
        action: 'token.revoke',
        auditFailure: (req) => ({ target: { tokenId: String(paramsOf(TokenIdParams)(req).id ?? '').slice(0, 64) } }),
      },
      schema: {
        summary: 'Revoke a token and all its descendants, effective on the next request',
        params: TokenIdParams,
        response: withErrors({ 200: Type.Object({ id: Type.String(), revoked: Type.Array(Type.String()) }) }),
      },
    },
    async (req) => c.tokens.revoke(req.principal!, req.params.id, req.auditCtx),
  );
}
