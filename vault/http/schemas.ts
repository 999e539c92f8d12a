import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** The app with route types taken from the TypeBox schemas: a handler's req.params, body and query are what its schema says. */
export const typed = (app: FastifyInstance) => app.withTypeProvider<TypeBoxTypeProvider>();

/**
 * The validated URL parameters, as `schema` types them, for a route's config callbacks (auth, prefetch,
 * auditFailure): Fastify types those with a plain FastifyRequest, not the route's schema. The auth callback
 * runs in preHandler, after validation; prefetch and auditFailure read strings only.
 */
export const paramsOf =
  <S extends TSchema>(_schema: S) =>
  (req: FastifyRequest): Static<S> =>
    req.params;
/** The validated query string, as `schema` types it, for a route's auth callback (preHandler: after validation). */
export const queryOf =
  <S extends TSchema>(_schema: S) =>
  (req: FastifyRequest): Static<S> =>
    req.query;
/** The validated body, as `schema` types it, for a route's auth callback (preHandler: after validation). */
export const bodyOf =
  <S extends TSchema>(_schema: S) =>
  (req: FastifyRequest): Static<S> =>
    req.body;

export const projectOf = paramsOf(Type.Object({ p: Type.String() }));
export const envOf = paramsOf(Type.Object({ p: Type.String(), e: Type.String() }));

export const ProjectName = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,62}$', description: 'project name' });
export const EnvName = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,62}$', description: 'environment name' });
export const KeyName = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 256, description: 'variable name' });

export const ProjectParams = Type.Object({ p: ProjectName }, { additionalProperties: false });
export const EnvParams = Type.Object({ p: ProjectName, e: EnvName }, { additionalProperties: false });
export const KeyParams = Type.Object({ p: ProjectName, e: EnvName, key: KeyName }, { additionalProperties: false });

export const ErrorSchema = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    requestId: Type.String(),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  }),
});

/** The error shape, as the shared schema (components/schemas/Error) that http/openapi.ts registers. */
export const ErrorRef = { $ref: 'Error#' } as unknown as TSchema;

/** Standard error responses added to every route's response schema. */
export function withErrors(ok: Record<number, TSchema>): Record<number, TSchema> {
  return { ...ok, 400: ErrorRef, 401: ErrorRef, 403: ErrorRef, 404: ErrorRef, 409: ErrorRef, 413: ErrorRef, 429: ErrorRef, 503: ErrorRef };
}

export const Project = Type.Object({ name: Type.String(), createdAt: Type.String() });
export const Env = Type.Object({ name: Type.String(), revision: Type.Number(), createdAt: Type.String() });
export const Token = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.String(),
  scopes: Type.Array(Type.String()),
  parentId: Type.Union([Type.String(), Type.Null()]),
  cidrs: Type.Array(Type.String()),
  createdAt: Type.String(),
  expiresAt: Type.Union([Type.String(), Type.Null()]),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
  lastUsedAt: Type.Union([Type.String(), Type.Null()]),
});
