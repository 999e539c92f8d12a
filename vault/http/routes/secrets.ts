import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Container } from '../../container.js';
import type { Need } from '../../services/token/grants.js';
import { EnvParams, envOf, KeyName, KeyParams, typed, withErrors } from '../schemas.js';
import { isClosing } from '../shutdown.js';

const need =
  (kind: 'read' | 'list' | 'write') =>
  (req: FastifyRequest): Need => {
    const { p, e } = envOf(req);
    return { kind, project: p, env: e };
  };

/** ?raw=1: values as stored, references (docs/lifecycle.md) not resolved. */
export const RawFlag = Type.Optional(
  Type.String({ pattern: '^(1|0|true|false)$', description: '1: values as stored, ${...} references not resolved' }),
);
export const isRaw = (v: string | undefined) => v === '1' || v === 'true';

const etag = (envId: number, revision: number) => `"${envId}-${revision}"`;

/**
 * If-None-Match as RFC 9110 compares it: a comma-separated list of entity
 * tags, compared weakly (a W/ prefix is ignored). Proxies that compress
 * responses turn the ETag into W/"...", and clients echo that. "*" is not
 * treated as a match: it would make every long-poll (?wait=N) answer 304
 * even after the revision changed.
 */
export function etagMatches(ifNoneMatch: string, current: string): boolean {
  return ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === current);
}

/**
 * JSON of a values object. The secret service hands out the same frozen
 * object for every read of a cached env revision, so its JSON is built once
 * per object (and dropped with it) instead of once per response. The text
 * is what the response schema's serializer would produce: keys in order,
 * strings escaped as JSON.stringify escapes them.
 */
const valuesJson = new WeakMap<object, string>();
function secretsJson(secrets: Record<string, string>): string {
  if (!Object.isFrozen(secrets)) return JSON.stringify(secrets);
  let json = valuesJson.get(secrets);
  if (json === undefined) valuesJson.set(secrets, (json = JSON.stringify(secrets)));
  return json;
}

export function secretRoutes(base: FastifyInstance, c: Container) {
  const app = typed(base);
  app.get(
    '/v1/projects/:p/envs/:e/secrets',
    {
      config: {
        auth: need('read'),
        action: 'secret.read',
        // Not for a conditional request: it may long-poll, and asks for the revision itself.
        prefetch: (req) => (req.headers['if-none-match'] ? null : c.secrets.prefetchEnv(envOf(req).p, envOf(req).e)),
      },
      schema: {
        summary: 'All values of an environment. Honours If-None-Match; ?wait=30 long-polls for a change.',
        params: EnvParams,
        querystring: Type.Object(
          {
            only: Type.Optional(Type.String({ maxLength: 65536, description: 'comma-separated names' })),
            wait: Type.Optional(
              Type.String({
                pattern: '^[0-9]{1,2}$',
                description: 'seconds (max 60) to wait for a revision change when If-None-Match matches',
              }),
            ),
            raw: RawFlag,
          },
          { additionalProperties: false },
        ),
        response: withErrors({
          200: Type.Object({ secrets: Type.Record(Type.String(), Type.String()), revision: Type.Number() }),
          304: Type.Null(),
        }),
      },
    },
    async (req, reply) => {
      const { p, e } = req.params;
      const q = req.query;
      const inm = req.headers['if-none-match'];
      if (inm) {
        let r = await c.secrets.revision(p, e);
        const waitMs = Math.min(Number(q.wait ?? 0), 60) * 1000;
        if (etagMatches(inm, etag(r.envId, r.revision)) && waitMs > 0) {
          let closed = false;
          req.raw.once('close', () => {
            closed = true;
          });
          // Ends (304) as soon as the server starts closing, so a graceful shutdown does not wait out every watcher's timeout.
          r = await c.secrets.waitForChange(p, e, r.envId, r.revision, waitMs, () => closed || isClosing(app));
        }
        const current = etag(r.envId, r.revision);
        if (etagMatches(inm, current)) return reply.status(304).header('etag', current).send();
      }
      const only = q.only
        ? q.only
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : undefined;
      const r = await c.secrets.getAll(p, e, req.auditCtx, only, req.prefetched, { raw: isRaw(q.raw) });
      reply.header('etag', etag(r.envId, r.revision)).type('application/json; charset=utf-8');
      return reply.send(`{"secrets":${secretsJson(r.secrets)},"revision":${JSON.stringify(r.revision)}}`);
    },
  );

  app.get(
    '/v1/projects/:p/envs/:e/keys',
    {
      config: { auth: need('list'), action: 'secret.list' },
      schema: {
        summary: 'Names and metadata of the secrets in an environment, no values (list:P/E)',
        params: EnvParams,
        response: withErrors({
          200: Type.Object({
            secrets: Type.Array(Type.Object({ key: Type.String(), version: Type.Number(), updatedAt: Type.String() })),
            revision: Type.Number(),
          }),
        }),
      },
    },
    async (req) => c.secrets.listNames(req.params.p, req.params.e, req.auditCtx),
  );

  app.patch(
    '/v1/projects/:p/envs/:e/secrets',
    {
      config: { auth: need('write'), action: 'secrets.bulk', namesAsKeys: true },
      schema: {
        summary: 'Atomic bulk change: all of it or none (write:P/E)',
        params: EnvParams,
        body: Type.Object(
          {
            set: Type.Optional(Type.Record(Type.String(), Type.String(), { maxProperties: 100_000 })),
            delete: Type.Optional(Type.Array(KeyName, { maxItems: 100_000 })),
          },
          { additionalProperties: false },
        ),
        response: withErrors({
          200: Type.Object({
            revision: Type.Number(),
            added: Type.Array(Type.String()),
            changed: Type.Array(Type.String()),
            unchanged: Type.Array(Type.String()),
            deleted: Type.Array(Type.String()),
          }),
        }),
      },
    },
    async (req) => c.secrets.bulk(req.params.p, req.params.e, req.body, req.auditCtx),
  );

  app.get(
    '/v1/projects/:p/envs/:e/secrets/:key',
    {
      config: { auth: need('read'), action: 'secret.read' },
      schema: {
        summary: 'One value; ?version=N for an older one (read:P/E)',
        params: KeyParams,
        querystring: Type.Object(
          { version: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,8}$' })), raw: RawFlag },
          { additionalProperties: false },
        ),
        response: withErrors({
          200: Type.Object({
            key: Type.String(),
            value: Type.String(),
            version: Type.Number(),
            createdAt: Type.String(),
            createdBy: Type.String(),
            revision: Type.Number(),
          }),
        }),
      },
    },
    async (req) => {
      const { p, e, key } = req.params;
      const q = req.query;
      return c.secrets.get(p, e, key, req.auditCtx, q.version ? Number(q.version) : undefined, { raw: isRaw(q.raw) });
    },
  );

  app.put(
    '/v1/projects/:p/envs/:e/secrets/:key',
    {
      config: { auth: need('write'), action: 'secret.write' },
      schema: {
        summary: 'Set a value; "cas" is the version you expect to replace (0: must not exist) (write:P/E)',
        params: KeyParams,
        body: Type.Object(
          { value: Type.String(), cas: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 })) },
          { additionalProperties: false },
        ),
        response: withErrors({ 200: Type.Object({ key: Type.String(), version: Type.Number(), revision: Type.Number() }) }),
      },
    },
    async (req) => {
      const { p, e, key } = req.params;
      const b = req.body;
      return c.secrets.put(p, e, key, b.value, b.cas, req.auditCtx);
    },
  );

  app.delete(
    '/v1/projects/:p/envs/:e/secrets/:key',
    {
      config: { auth: need('write'), action: 'secret.delete' },
      schema: {
        summary: 'Delete a secret (history is kept) (write:P/E)',
        params: KeyParams,
        response: withErrors({
          200: Type.Object({ key: Type.String(), version: Type.Number(), revision: Type.Number(), deleted: Type.Boolean() }),
        }),
      },
    },
    async (req) => {
      const { p, e, key } = req.params;
      return c.secrets.delete(p, e, key, req.auditCtx);
    },
  );

  app.get(
    '/v1/projects/:p/envs/:e/secrets/:key/versions',
    {
      config: { auth: need('list'), action: 'secret.versions' },
      schema: {
        summary: 'Version history metadata of one secret, newest first (list:P/E)',
        params: KeyParams,
        response: withErrors({
          200: Type.Object({
            key: Type.String(),
            current: Type.Union([Type.Number(), Type.Null()]),
            versions: Type.Array(
              Type.Object({
                version: Type.Number(),
                deleted: Type.Boolean(),
                createdAt: Type.String(),
                createdBy: Type.String(),
                createdByName: Type.String(),
              }),
            ),
          }),
        }),
      },
    },
    async (req) => {
      const { p, e, key } = req.params;
      return c.secrets.versions(p, e, key, req.auditCtx);
    },
  );
}
