import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { randomBytes } from 'node:crypto';
import type { Container } from '../container.js';
import { redactTokens } from '../services/token/redact.js';
import { registerAuth } from './auth.js';
import { errorHandler } from './errors.js';
import { auditRoutes } from './routes/audit.js';
import { projectRoutes } from './routes/projects.js';
import { secretRoutes } from './routes/secrets.js';
import { sysRoutes, VERSION } from './routes/sys.js';
import { tokenRoutes } from './routes/tokens.js';

export interface AppOptions {
  logger: FastifyServerOptions['loggerInstance'];
  https?: { cert: Buffer; key: Buffer } | null;
  trustProxy?: string[];
  /** Extra route registrations (backups) that live outside this folder. */
  extraRoutes?: ((app: FastifyInstance) => void)[];
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Builds the Fastify app around a container. Does not listen. */
export async function buildApp(c: Container, opts: AppOptions): Promise<FastifyInstance> {
  const cfg = c.config;
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: cfg.bodyLimitBytes,
    trustProxy: cfg.trustProxy.length ? cfg.trustProxy : false,
    https: opts.https ? { cert: opts.https.cert, key: opts.https.key, minVersion: 'TLSv1.2' } : null,
    genReqId: (req) => {
      const h = req.headers['x-request-id'];
      return typeof h === 'string' && REQUEST_ID.test(h) ? h : `req_${randomBytes(8).toString('hex')}`;
    },
    routerOptions: { maxParamLength: 300 },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  } as FastifyServerOptions) as unknown as FastifyInstance;

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ error: { code: 'route_not_found', message: `no route ${req.method} ${redactTokens(req.url.split('?')[0]).slice(0, 200)}`, requestId: req.id } });
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'Hush API', version: VERSION, description: 'Self-hosted secrets vault' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  await app.register(rateLimit, {
    global: true,
    max: cfg.rateLimitMax,
    timeWindow: cfg.rateLimitWindowMs,
    errorResponseBuilder: (req, ctx) => ({
      statusCode: 429,
      error: { code: 'rate_limited', message: `rate limit of ${ctx.max} requests per ${Math.round(ctx.ttl / 1000) || 1}s exceeded; retry after ${ctx.after}`, requestId: req.id },
    }),
  });

  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-request-id', req.id);
    reply.header('cache-control', 'no-store');
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    if (opts.https) reply.header('strict-transport-security', 'max-age=63072000; includeSubDomains');
    return payload;
  });

  registerAuth(app, { tokens: c.tokens, audit: c.audit, authFailLimit: cfg.authFailLimit, authFailWindowMs: cfg.authFailWindowMs });

  sysRoutes(app, c);
  projectRoutes(app, c);
  secretRoutes(app, c);
  tokenRoutes(app, c);
  auditRoutes(app, c);
  for (const r of opts.extraRoutes ?? []) r(app);

  app.get('/v1/openapi.json', { config: { auth: 'none' }, schema: { hide: true } }, async () => app.swagger());
  return app;
}
