import { Type, type Static } from '@sinclair/typebox';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Container } from '../../container.js';
import { InvalidRequestError } from '../../errors.js';
import type { Need } from '../../services/token/grants.js';
import { toErrorBody } from '../errors.js';
import { EnvName, envOf, ProjectName, typed } from '../schemas.js';
import { utf8JsonParser } from '../json.js';

const PEParams = Type.Object({ p: ProjectName, e: EnvName }, { additionalProperties: false });
const PParams = Type.Object({ p: ProjectName }, { additionalProperties: false });
const ListQuery = Type.Object({ list: Type.Optional(Type.String()) });
const Cas = Type.Object({ cas: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })) });
const WriteBody = Type.Object({
  data: Type.Record(Type.String(), Type.Unknown(), { maxProperties: 100_000 }),
  options: Type.Optional(Cas),
});

/** What every Vault-compatible route answers, for the OpenAPI document: Vault's envelope (kept whole), or Vault's error list. */
const VaultError = Type.Object(
  { errors: Type.Array(Type.String()) },
  { title: 'VaultError', description: "Vault's error shape: an empty list for not found (docs/vault-compat.md)" },
);
const VAULT_RESPONSES = {
  200: Type.Object({}, { additionalProperties: true, description: "Vault's response envelope (request_id, lease_id, data, ...)" }),
  400: VaultError,
  403: VaultError,
  404: VaultError,
  405: VaultError,
  413: VaultError,
  429: VaultError,
  503: VaultError,
};
/** Adds VAULT_RESPONSES to each route registered in this scope; a trailing-slash alias and a wildcard helper stay out of the document. */
function vaultSchemas(scope: FastifyInstance): void {
  scope.addHook('onRoute', (r) => {
    const schema = (r.schema ?? {}) as Record<string, unknown>;
    const alias = r.url.length > 1 && r.url.endsWith('/');
    r.schema = {
      ...schema,
      response: { ...VAULT_RESPONSES, ...(schema.response as object | undefined) },
      ...(alias || r.url.includes('*') ? { hide: true } : {}),
    };
  });
}

/** Vault's fixed envelope around `data`. */
const envelope = (req: FastifyRequest, data: unknown) => ({
  request_id: req.id,
  lease_id: '',
  renewable: false,
  lease_duration: 0,
  data,
  wrap_info: null,
  warnings: null,
  auth: null,
});

const MESSAGES: Record<string, string> = {
  cas_conflict: 'check-and-set parameter did not match the current version',
};

/**
 * Errors in Vault's shape, {"errors": [...]}, with the statuses Vault's
 * clients expect: 404 has an empty list, a cas mismatch is 400, and a
 * missing or invalid token is 403 "permission denied" as in Vault.
 */
export function vaultErrorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  const { status, body } = toErrorBody(err, req.id);
  if (
    status >= 500 &&
    body.error.code !== 'sealed' &&
    body.error.code !== 'storage_unavailable' &&
    body.error.code !== 'audit_unavailable'
  ) {
    req.log.error(
      {
        err: {
          type: err?.name,
          code: (err as { code?: string })?.code,
          message: String(err?.message ?? '').slice(0, 500),
          stack: err?.stack,
        },
        errorCode: body.error.code,
      },
      'request failed',
    );
  }
  if (status === 429 && !reply.hasHeader('retry-after')) reply.header('retry-after', '60');
  if (status === 404) return reply.status(404).send({ errors: [] });
  if (body.error.code === 'cas_conflict') return reply.status(400).send({ errors: [MESSAGES.cas_conflict] });
  if (status === 401 || status === 403) return reply.status(403).send({ errors: [`permission denied: ${body.error.message}`] });
  return reply.status(status).send({ errors: [body.error.message] });
}

// Vault reads the flag as Go's ParseBool does.
const isList = (flag: string | undefined) => ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(flag ?? '');

/**
 * The Vault KV v2-compatible API under /v1/<mount>/ (docs/vault-compat.md):
 * the secret at <project>/<env> is the environment's whole map, its
 * versions are the env's revisions. The same grants as the native routes
 * and the same audit events (with detail.via "kv-v2").
 */
export function kvRoutes(base: FastifyInstance, c: Container, mount: string) {
  const need =
    (kind: 'read' | 'list' | 'write') =>
    (req: FastifyRequest): Need => ({ kind, project: envOf(req).p, env: envOf(req).e });

  base.register(
    (kvBase, _opts, done) => {
      const kv = typed(kvBase);
      vaultSchemas(kv);
      kv.setErrorHandler(vaultErrorHandler);
      kv.setNotFoundHandler((_req, reply) => {
        reply.status(404).send({ errors: [] });
      });
      kv.addContentTypeParser('application/merge-patch+json', { parseAs: 'buffer' }, utf8JsonParser(kv));

      const dataRoute = `/data/:p/:e`;
      kv.get(
        dataRoute,
        {
          config: { auth: need('read'), action: 'secret.read' },
          schema: {
            summary: "Vault KV v2: read an environment's map; ?version=N reads revision N (read:P/E)",
            params: PEParams,
            querystring: Type.Object({ version: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })) }),
          },
        },
        async (req) => {
          const { p, e } = req.params;
          const v = Number(req.query.version ?? 0);
          return envelope(req, await c.kv.read(p, e, v > 0 ? v : undefined, req.auditCtx));
        },
      );

      const write = async (req: FastifyRequest<{ Params: Static<typeof PEParams>; Body: Static<typeof WriteBody> }>) => {
        const { p, e } = req.params;
        const b = req.body;
        return envelope(req, await c.kv.write(p, e, b.data, b.options?.cas, req.auditCtx));
      };
      const writeSchema = {
        summary:
          "Vault KV v2: replace an environment's map with `data` (names left out are deleted); options.cas is the revision you expect (write:P/E)",
        params: PEParams,
        body: WriteBody,
      };
      kv.post(dataRoute, { config: { auth: need('write'), action: 'secrets.bulk' }, schema: writeSchema }, write);
      kv.put(dataRoute, { config: { auth: need('write'), action: 'secrets.bulk' }, schema: writeSchema }, write);

      kv.patch(
        dataRoute,
        {
          config: { auth: need('write'), action: 'secrets.bulk' },
          schema: {
            summary: 'Vault KV v2: merge `data` into the map (JSON merge patch: null deletes a name) (write:P/E)',
            params: PEParams,
            body: WriteBody,
          },
        },
        async (req) => {
          const { p, e } = req.params;
          const b = req.body;
          return envelope(req, await c.kv.patch(p, e, b.data, b.options?.cas, req.auditCtx));
        },
      );

      kv.delete(
        dataRoute,
        {
          config: { auth: need('write'), action: 'secrets.bulk' },
          schema: {
            summary: 'Vault KV v2: delete every value of the environment, as a new revision (write:P/E); history keeps the old ones',
            params: PEParams,
          },
        },
        async (req, reply) => {
          const { p, e } = req.params;
          await c.kv.remove(p, e, req.auditCtx);
          return reply.status(204).send();
        },
      );

      // LIST arrives as GET ?list=true (http/list-method.ts rewrites the method at the connection).
      const list = async (req: FastifyRequest, flag: string | undefined, project: string | null) => {
        if (!isList(flag)) throw new InvalidRequestError('metadata of a folder: add ?list=true (or use LIST) to list it');
        const keys = await c.kv.list(req.principal!, project);
        if (keys.length === 0) return { notFound: true as const };
        return envelope(req, { keys });
      };
      const answer = (reply: FastifyReply) => (r: Awaited<ReturnType<typeof list>>) =>
        'notFound' in r ? reply.status(404).send({ errors: [] }) : r;
      for (const path of ['/metadata', '/metadata/']) {
        kv.get(
          path,
          {
            config: { auth: 'any' },
            schema: { summary: 'Vault KV v2: LIST (or ?list=true) the projects this token can see, as folders', querystring: ListQuery },
          },
          async (req, reply) => list(req, req.query.list, null).then(answer(reply)),
        );
      }
      for (const path of ['/metadata/:p', '/metadata/:p/']) {
        kv.get(
          path,
          {
            config: { auth: 'any' },
            schema: {
              summary: 'Vault KV v2: LIST (or ?list=true) the environments of a project this token can see',
              params: PParams,
              querystring: ListQuery,
            },
          },
          async (req, reply) => list(req, req.query.list, req.params.p).then(answer(reply)),
        );
      }
      for (const path of ['/metadata/:p/:e', '/metadata/:p/:e/']) {
        kv.get(
          path,
          {
            config: { auth: need('list'), action: 'secret.versions' },
            schema: {
              summary: 'Vault KV v2: the versions (revisions) of an environment (list:P/E)',
              params: PEParams,
              querystring: ListQuery,
            },
          },
          async (req, reply) => {
            // An environment is a leaf: it has nothing under it to list.
            if (isList(req.query.list)) return reply.status(404).send({ errors: [] });
            const { p, e } = req.params;
            return envelope(req, await c.kv.metadata(p, e, req.auditCtx));
          },
        );
      }

      kv.get('/config', { config: { auth: 'any' }, schema: { summary: "Vault KV v2: the engine's settings (fixed in Hush)" } }, (req) =>
        Promise.resolve(envelope(req, { cas_required: false, delete_version_after: '0s', max_versions: 0 })),
      );

      // Parts of KV v2 Hush does not have: a clear refusal instead of a silent no-op.
      const unsupported = (what: string) => () =>
        Promise.reject(new InvalidRequestError(`${what} is not supported by Hush (docs/vault-compat.md)`));
      for (const op of ['delete', 'undelete', 'destroy'])
        kv.post(`/${op}/:p/:e`, { config: { auth: 'any' }, schema: { hide: true } }, unsupported(`${op} of single versions`));
      kv.delete('/metadata/:p/:e', { config: { auth: 'any' }, schema: { hide: true } }, unsupported('deleting all versions and metadata'));
      for (const m of ['post', 'put', 'patch'] as const)
        kv[m]('/metadata/:p/:e', { config: { auth: 'any' }, schema: { hide: true } }, unsupported('custom metadata and version settings'));
      done();
    },
    { prefix: `/v1/${mount}` },
  );

  // Token and mount routes that Vault's clients call around KV.
  base.register((vBase, _opts, done) => {
    const v = typed(vBase);
    vaultSchemas(v);
    v.setErrorHandler(vaultErrorHandler);
    v.get(
      '/v1/auth/token/lookup-self',
      {
        config: { auth: 'any' },
        schema: { summary: "Vault: the calling token's metadata (no token string)" },
      },
      async (req) => {
        const t = await c.tokens.self(req.principal!);
        const now = Date.now();
        const expires = t.expiresAt ? Date.parse(t.expiresAt) : null;
        const created = Date.parse(t.createdAt);
        return envelope(req, {
          accessor: t.id,
          creation_time: Math.floor(created / 1000),
          creation_ttl: expires ? Math.round((expires - created) / 1000) : 0,
          display_name: t.name,
          entity_id: '',
          expire_time: t.expiresAt,
          explicit_max_ttl: 0,
          id: t.id,
          issue_time: t.createdAt,
          meta: null,
          num_uses: 0,
          orphan: t.parentId === null,
          path: 'auth/token/create',
          policies: t.scopes,
          renewable: false,
          ttl: expires ? Math.max(0, Math.floor((expires - now) / 1000)) : 0,
          type: 'service',
        });
      },
    );
    const mountInfo = {
      type: 'kv',
      description: 'Hush environments (Vault KV v2 compatible)',
      options: { version: '2' },
      config: { default_lease_ttl: 0, max_lease_ttl: 0 },
      local: false,
      seal_wrap: false,
      accessor: `kv_${mount}`,
    };
    v.get(
      '/v1/sys/mounts',
      { config: { auth: 'any' }, schema: { summary: 'Vault: the mounts (Hush has one, the KV v2 view of its environments)' } },
      (req) => Promise.resolve({ ...envelope(req, { [`${mount}/`]: mountInfo }), [`${mount}/`]: mountInfo }),
    );
    // The vault CLI asks which mount a path is under, and its KV version, before `vault kv get`.
    v.get(
      '/v1/sys/internal/ui/mounts/*',
      { config: { auth: 'any' }, schema: { summary: 'Vault: the mount a path is under', params: Type.Object({ '*': Type.String() }) } },
      async (req, reply) => {
        const path = req.params['*'];
        if (path !== mount && !path.startsWith(`${mount}/`)) return reply.status(404).send({ errors: [] });
        return envelope(req, { path: `${mount}/`, ...mountInfo });
      },
    );
    done();
  });
}
