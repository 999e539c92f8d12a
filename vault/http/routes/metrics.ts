import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../services/metrics/metrics.js';
import { withErrors } from '../schemas.js';

/**
 * GET /v1/sys/metrics, Prometheus text format (docs/metrics.md). It needs the
 * `metrics` grant, so a sealed server answers 503 sealed like every other
 * authenticated route (the token hash key is sealed too). With
 * --metrics-public (loopback only, server.ts checkTransport) it needs no
 * token and answers while sealed, so a scraper sees hush_sealed 1.
 */
export function metricsRoutes(app: FastifyInstance, metrics: Metrics, isPublic: boolean): void {
  // Every finished request, matched or not: one observation on a cached child (metrics.ts).
  app.addHook('onResponse', (req, reply, done) => {
    const cfg = req.routeOptions.config as { url?: string; method?: string } | undefined;
    metrics.request(cfg ?? null, cfg?.method ?? req.method, cfg?.url, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  app.get(
    '/v1/sys/metrics',
    {
      config: isPublic ? { auth: 'none', whileSealed: true } : { auth: () => ({ kind: 'metrics' }), action: 'metrics.read' },
      schema: {
        summary:
          `Prometheus metrics, text exposition format 0.0.4 ` +
          `(${isPublic ? 'no auth: --metrics-public' : 'metrics'}): requests and latency by route, group ` +
          `commit, database pool, token lookups, last backup, seal state`,
        produces: ['text/plain'],
        response: withErrors({ 200: Type.String({ description: 'Prometheus text exposition format' }) }),
      },
    },
    async (_req, reply) => {
      const text = await metrics.render();
      reply.header('content-type', metrics.contentType);
      return text;
    },
  );
}
