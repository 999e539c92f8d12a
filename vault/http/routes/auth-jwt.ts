import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Container } from '../../container.js';
import { AuthLockedOut } from '../../services/token/token-service.js';
import { withErrors, typed } from '../schemas.js';

const RoleName = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,62}$', description: 'role name' });
const ClaimName = Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f]+$' });
const ClaimPattern = Type.String({ minLength: 1, maxLength: 512, pattern: '^[^\\u0000]+$' });

const Role = Type.Object({
  name: Type.String(),
  issuer: Type.String(),
  audience: Type.String(),
  scopes: Type.Array(Type.String()),
  ttl: Type.String(),
  ttlSeconds: Type.Number(),
  boundClaims: Type.Record(Type.String(), Type.Array(Type.String())),
  boundSubject: Type.Union([Type.String(), Type.Null()]),
  requiredClaims: Type.Array(Type.String()),
  keySource: Type.String({ description: 'discovery, jwks_url, jwks or public_key' }),
  jwksUrl: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  createdBy: Type.String(),
});

/** JWT auth roles and the login that exchanges a workload's JWT for a Hush token (docs/machine-identity.md). */
export function authJwtRoutes(base: FastifyInstance, c: Container) {
  const app = typed(base);
  app.post(
    '/v1/auth/jwt/roles',
    {
      config: { auth: 'any', action: 'auth.role.create' },
      schema: {
        summary: 'Create a JWT auth role (root, or admin of every project its scopes name)',
        body: Type.Object(
          {
            name: RoleName,
            issuer: Type.String({ minLength: 1, maxLength: 512 }),
            audience: Type.String({ minLength: 1, maxLength: 512, pattern: '^[^\\u0000]+$' }),
            scopes: Type.Array(Type.String({ maxLength: 200 }), { minItems: 1, maxItems: 100 }),
            ttl: Type.String({ minLength: 1, maxLength: 32 }),
            boundClaims: Type.Optional(
              Type.Record(ClaimName, Type.Union([ClaimPattern, Type.Array(ClaimPattern, { minItems: 1, maxItems: 50 })])),
            ),
            boundSubject: Type.Optional(ClaimPattern),
            requiredClaims: Type.Optional(Type.Array(ClaimName, { maxItems: 32 })),
            jwksUrl: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
            jwks: Type.Optional(
              Type.Object(
                { keys: Type.Array(Type.Object({ kty: Type.String() }), { minItems: 1, maxItems: 100 }) },
                { additionalProperties: false },
              ),
            ),
            publicKey: Type.Optional(Type.String({ minLength: 1, maxLength: 16_384 })),
          },
          { additionalProperties: false },
        ),
        response: withErrors({ 201: Role }),
      },
    },
    async (req, reply) => reply.status(201).send(await c.jwtAuth.createRole(req.principal!, req.body, req.auditCtx)),
  );

  app.get(
    '/v1/auth/jwt/roles',
    {
      config: { auth: 'any' },
      schema: {
        summary: 'The JWT auth roles the caller may manage',
        response: withErrors({ 200: Type.Object({ roles: Type.Array(Role) }) }),
      },
    },
    async (req) => ({ roles: await c.jwtAuth.listRoles(req.principal!) }),
  );

  app.get(
    '/v1/auth/jwt/roles/:name',
    {
      config: { auth: 'any' },
      schema: {
        summary: 'One JWT auth role',
        params: Type.Object({ name: RoleName }, { additionalProperties: false }),
        response: withErrors({ 200: Role }),
      },
    },
    async (req) => c.jwtAuth.getRole(req.principal!, req.params.name),
  );

  app.delete(
    '/v1/auth/jwt/roles/:name',
    {
      config: { auth: 'any', action: 'auth.role.delete' },
      schema: {
        summary: 'Delete a JWT auth role (tokens it issued stay valid until they expire)',
        params: Type.Object({ name: RoleName }, { additionalProperties: false }),
        response: withErrors({ 200: Type.Object({ name: Type.String(), deleted: Type.Boolean() }) }),
      },
    },
    async (req) => c.jwtAuth.deleteRole(req.principal!, req.params.name, req.auditCtx),
  );

  app.post(
    '/v1/auth/jwt/login',
    {
      config: { auth: 'none' },
      schema: {
        summary: "Exchange a JWT signed by a role's issuer for a short-lived token with the role's scopes (no Authorization header)",
        body: Type.Object(
          {
            role: Type.String({ minLength: 1, maxLength: 63, pattern: '^[\\x21-\\x7e]+$' }),
            jwt: Type.String({ minLength: 1, maxLength: 16_384, pattern: '^[A-Za-z0-9_.=-]+$' }),
          },
          { additionalProperties: false },
        ),
        response: withErrors({
          200: Type.Object({
            token: Type.String(),
            id: Type.String(),
            expiresAt: Type.String(),
            scopes: Type.Array(Type.String()),
            role: Type.String(),
          }),
        }),
      },
    },
    async (req, reply) => {
      const b = req.body;
      try {
        return await c.jwtAuth.login(b.role, b.jwt, req.auditCtx);
      } catch (e) {
        if (e instanceof AuthLockedOut) reply.header('retry-after', String(e.retryAfterS));
        else if ((e as { statusCode?: number }).statusCode === 401) reply.header('www-authenticate', 'Bearer realm="hush"');
        throw e;
      }
    },
  );
}
