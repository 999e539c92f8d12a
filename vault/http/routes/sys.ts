import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Container } from '../../container.js';
import { withErrors } from '../schemas.js';
import { InvalidRequestError } from '../../errors.js';

export const VERSION = '0.1.0';

/**
 * How long the health check waits for the database before it answers 503
 * storage_unavailable. Far below the pool's 10 s acquire timeout, so a load
 * balancer's check (docs/scaling.md: `timeout check 3s`) gets an answer from
 * a node whose database hangs; long enough for a pool connection under load.
 */
export const HEALTH_STORAGE_TIMEOUT_MS = 2000;

/** `p`, or a rejection once `ms` have passed (p's own later outcome is then ignored). */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

export function sysRoutes(app: FastifyInstance, c: Container) {
  app.get('/v1/sys/health', {
    // Load-balancer probes from one address must never be rate-limited into "unhealthy".
    config: { auth: 'none', rateLimit: false },
    schema: {
      summary: 'Liveness, version and storage kind (no auth)',
      response: { 200: Type.Object({ status: Type.String(), version: Type.String(), storage: Type.String(), sealed: Type.Boolean(), lastBackupAt: Type.Union([Type.String(), Type.Null()]), lastBackupError: Type.Union([Type.String(), Type.Null()]) }), 503: Type.Object({ status: Type.String(), version: Type.String(), storage: Type.String(), sealed: Type.Boolean(), error: Type.Object({ code: Type.String(), message: Type.String(), requestId: Type.String() }) }) },
    },
  }, async (_req, reply) => {
    let lastBackupAt: string | null;
    let lastBackupError: string | null;
    try {
      // Read from the database, so every server sharing it reports the same
      // backup state, and a node that cannot reach it reports itself unhealthy.
      [lastBackupAt, lastBackupError] = await within((async () => [
        await c.stores.meta.get('backup_last_success'),
        await c.stores.meta.get('backup_last_error'),
      ])(), HEALTH_STORAGE_TIMEOUT_MS);
    } catch {
      return reply.status(503).send({ status: 'unavailable', version: VERSION, storage: c.storage, sealed: false, error: { code: 'storage_unavailable', message: 'the database is unavailable right now', requestId: _req.id } });
    }
    return { status: 'ok', version: VERSION, storage: c.storage, sealed: false, lastBackupAt, lastBackupError };
  });

  app.post('/v1/sys/rotate-master', {
    config: { auth: () => ({ kind: 'root' }), action: 'key.rotate_master' },
    schema: {
      summary: 'Rewrap every wrapped key under a new master key (root)',
      body: Type.Object({ newKey: Type.String({ minLength: 40, maxLength: 64, description: 'base64 of 32 random bytes' }) }, { additionalProperties: false }),
      response: withErrors({ 200: Type.Object({ rewrapped: Type.Number(), from: Type.String(), to: Type.String(), unchanged: Type.Boolean() }) }),
    },
  }, async (req) => {
    const { masterKeyFromBase64 } = await import('../../crypto/keyring.js');
    const newMk = await masterKeyFromBase64((req.body as { newKey: string }).newKey, 'newKey').catch(() => {
      throw new InvalidRequestError('newKey must be the base64 encoding of 32 bytes');
    });
    return c.rotation.rotateMaster(newMk, req.auditCtx);
  });
}
