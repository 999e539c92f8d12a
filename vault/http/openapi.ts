import type { FastifyInstance, RouteOptions } from 'fastify';
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import { ErrorSchema } from './schemas.js';

/**
 * The OpenAPI document (GET /v1/openapi.json) and what makes it lint clean
 * (`redocly lint`, test/core/openapi.test.ts): every operation gets an
 * operationId derived from its method and path pattern, shared schemas are
 * components, and the document names its license and server.
 */

const VERB: Record<string, string> = {
  GET: 'get',
  HEAD: 'head',
  POST: 'post',
  PUT: 'put',
  PATCH: 'patch',
  DELETE: 'delete',
  OPTIONS: 'options',
};
const pascal = (s: string) =>
  s
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
/** projects -> project: a collection followed by one member's parameter. */
const singular = (s: string) => (s.endsWith('s') && !s.endsWith('ss') ? s.slice(0, -1) : s);

/**
 * operationId from method and path, stable as long as the route is:
 * `GET /v1/projects/:p/envs/:e/secrets/:key/versions` is
 * getProjectEnvSecretVersions. The version prefix is dropped, a plural
 * segment followed by a parameter is made singular, any other parameter
 * reads `By<Name>`, a wildcard reads `Path`, and a trailing slash
 * `Folder`. A route may set its own operationId instead.
 */
export function operationIdFor(method: string, url: string): string {
  const parts = url.split('/').filter(Boolean);
  if (/^v\d+$/.test(parts[0] ?? '')) parts.shift();
  const words: string[] = [];
  parts.forEach((seg, i) => {
    if (seg === '*') words.push('Path');
    else if (seg.startsWith(':')) {
      // Named by the segment before it when that reads as one member (projects/:p: Project); otherwise By<Name> (metadata/:p).
      const prev = parts[i - 1];
      if (i === 0 || prev.startsWith(':') || prev === '*' || singular(prev) === prev) words.push(`By${pascal(seg.slice(1))}`);
    } else words.push(pascal(parts[i + 1]?.startsWith(':') ? singular(seg) : seg));
  });
  // A trailing slash is a route of its own (a Vault folder: /metadata/ beside /metadata).
  if (url.length > 1 && url.endsWith('/')) words.push('Folder');
  return `${VERB[method.toUpperCase()] ?? method.toLowerCase()}${words.join('') || 'Root'}`;
}

/**
 * Gives every route registered from now on (this app's, the backup plugin's,
 * any added later) its operationId, and refuses a second route with the same
 * one: the document must stay unambiguous for generated clients.
 */
export function operationIds(app: FastifyInstance): void {
  const seen = new Map<string, string>();
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = (route.schema ?? {}) as { operationId?: string; hide?: boolean };
    if (schema.hide) return;
    for (const m of ([] as string[]).concat(route.method)) {
      // The HEAD twin Fastify adds to a GET route arrives with the GET's schema (and operationId).
      const id = m === 'HEAD' ? operationIdFor(m, route.url) : (schema.operationId ?? operationIdFor(m, route.url));
      const other = seen.get(id);
      if (other !== undefined && other !== `${m} ${route.url}`)
        throw new Error(`operationId ${id} of ${m} ${route.url} is already ${other}'s: give one of them its own schema.operationId`);
      seen.set(id, `${m} ${route.url}`);
      if (([] as string[]).concat(route.method).length === 1) route.schema = { ...schema, operationId: id };
    }
  });
  // The error shape every route answers with: one component, referred to by every response.
  app.addSchema({
    $id: 'Error',
    title: 'Error',
    description: 'The JSON error shape of every 4xx and 5xx (docs/errors.md)',
    ...ErrorSchema,
  });
}

export function swaggerOptions(version: string): FastifyDynamicSwaggerOptions {
  return {
    openapi: {
      info: {
        title: 'Hush API',
        version,
        description: 'Self-hosted secrets vault',
        license: { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' },
      },
      servers: [{ url: '/', description: 'the server that serves this document' }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    // Shared schemas (app.addSchema) become components named by their $id, not def-0, def-1...
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  };
}
