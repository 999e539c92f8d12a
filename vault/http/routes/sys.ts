import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Container } from '../../container.js';
import { ErrorRef, withErrors, typed } from '../schemas.js';
import { InvalidRequestError, NotSealedError } from '../../errors.js';
import type { AuditContext } from '../../services/audit/audit-service.js';
import type { SealStatus } from '../../services/seal/seal-service.js';

import { VERSION } from '../../../common/version.js';

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
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** What the HTTP layer may ask of the seal (vault/runtime.ts). */
export interface SealControl {
  readonly epoch: number;
  readonly sealed: boolean;
  status(): SealStatus;
  unseal(ctx: AuditContext, input: { share?: string; passphrase?: string }): Promise<SealStatus & { unsealed?: boolean }>;
  /** Forgets the shares given so far. */
  reset(): void;
  /** Reads the seal record again (a rekey made meanwhile). */
  refresh(): Promise<void>;
  /** Resolves once an unseal that is opening the vault has finished. */
  settled(): Promise<void>;
  /** Called at the moment of a seal, before the seal call returns. */
  onSeal(fn: () => void): void;
  seal(ctx: AuditContext, opts?: { cluster?: 'all' | 'followed' }): Promise<{ sealed: true; already: boolean }>;
}

/** Unseal submissions per address per minute: enough for a quorum typed by hand and its typos, too few to guess. */
export const UNSEAL_RATE_LIMIT = 30;

/** The fields Vault clients read from /v1/sys/health (docs/vault-compat.md); `sealed` and `version` are Hush's own. */
const VAULT_HEALTH = {
  initialized: Type.Boolean(),
  standby: Type.Boolean(),
  performance_standby: Type.Boolean(),
  server_time_utc: Type.Number(),
};
const vaultHealth = () => ({
  initialized: true,
  standby: false,
  performance_standby: false,
  server_time_utc: Math.floor(Date.now() / 1000),
});

const SealStatusSchema = Type.Object({
  sealed: Type.Boolean(),
  type: Type.String({ description: 'file, shamir or passphrase' }),
  progress: Type.Number({ description: 'shares given so far' }),
  threshold: Type.Number({ description: 'shares needed (1 for a passphrase, 0 for a file seal)' }),
});

export function sysRoutes(base: FastifyInstance, c: Container, seal: SealControl | null = null) {
  const app = typed(base);
  app.get(
    '/v1/sys/health',
    {
      // Load-balancer probes from one address must never be rate-limited into "unhealthy".
      config: { auth: 'none', rateLimit: false, whileSealed: true },
      schema: {
        summary: 'Liveness, version, storage kind and seal status (no auth); 503 when sealed or when the database ' + 'is unreachable',
        response: {
          // A URL with %00 is refused on every route before it runs (app.ts).
          400: ErrorRef,
          200: Type.Object({
            status: Type.String(),
            version: Type.String(),
            storage: Type.String(),
            sealed: Type.Boolean(),
            seal: Type.String(),
            lastBackupAt: Type.Union([Type.String(), Type.Null()]),
            lastBackupError: Type.Union([Type.String(), Type.Null()]),
            overdueSecrets: Type.Number({ description: 'live secrets past their rotation period or expiry (docs/lifecycle.md)' }),
            ...VAULT_HEALTH,
          }),
          503: Type.Object({
            status: Type.String(),
            version: Type.String(),
            storage: Type.String(),
            sealed: Type.Boolean(),
            seal: Type.Optional(Type.String()),
            ...VAULT_HEALTH,
            progress: Type.Optional(Type.Number()),
            threshold: Type.Optional(Type.Number()),
            error: Type.Object({ code: Type.String(), message: Type.String(), requestId: Type.String() }),
          }),
        },
      },
    },
    async (_req, reply) => {
      // Sealed: the record read again (a rekey meanwhile), bounded like the storage check below, so a database
      // that hangs never hangs a balancer's probe. Open: it is read together with the storage check.
      if (seal?.sealed) await within(seal.refresh(), HEALTH_STORAGE_TIMEOUT_MS).catch(() => undefined);
      const st = seal?.status() ?? { sealed: false, type: 'file', progress: 0, threshold: 0 };
      if (st.sealed) {
        return reply.status(503).send({
          status: 'sealed',
          version: VERSION,
          storage: c.storage,
          sealed: true,
          ...vaultHealth(),
          seal: st.type,
          progress: st.progress,
          threshold: st.threshold,
          error: {
            code: 'sealed',
            message:
              st.type === 'file'
                ? 'the vault is sealed: restart the server to open it with its key file'
                : `the vault is sealed: ${st.progress} of ${st.threshold} ` +
                  `${st.type === 'passphrase' ? 'passphrase' : 'unseal shares'} given`,
            requestId: _req.id,
          },
        });
      }
      let lastBackupAt: string | null;
      let lastBackupError: string | null;
      let overdueSecrets: number;
      try {
        ({ lastBackupAt, lastBackupError, overdueSecrets } = await within(
          (async () => {
            const facts = await c.health.facts();
            await seal?.refresh();
            return facts;
          })(),
          HEALTH_STORAGE_TIMEOUT_MS,
        ));
      } catch {
        return reply.status(503).send({
          status: 'unavailable',
          version: VERSION,
          storage: c.storage,
          sealed: false,
          ...vaultHealth(),
          seal: st.type,
          error: { code: 'storage_unavailable', message: 'the database is unavailable right now', requestId: _req.id },
        });
      }
      return {
        status: 'ok',
        version: VERSION,
        storage: c.storage,
        sealed: false,
        seal: seal?.status().type ?? 'file',
        lastBackupAt,
        lastBackupError,
        overdueSecrets,
        ...vaultHealth(),
      };
    },
  );

  app.get(
    '/v1/sys/seal-status',
    {
      config: { auth: 'none', rateLimit: false, whileSealed: true },
      schema: {
        summary: 'Whether this server is sealed, and the unseal progress (no auth); always 200',
        response: withErrors({ 200: SealStatusSchema }),
      },
    },
    async () => {
      if (seal) await within(seal.refresh(), HEALTH_STORAGE_TIMEOUT_MS).catch(() => undefined);
      return seal?.status() ?? { sealed: false, type: 'file', progress: 0, threshold: 0 };
    },
  );

  app.post(
    '/v1/sys/unseal',
    {
      config: { auth: 'none', whileSealed: true, unsealSubmission: true, rateLimit: { max: UNSEAL_RATE_LIMIT, timeWindow: 60_000 } },
      schema: {
        summary: 'Give one unseal share, or the passphrase (no auth); reports progress. `reset` forgets the shares ' + 'given so far.',
        body: Type.Object(
          {
            share: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
            passphrase: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
            reset: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: withErrors({ 200: SealStatusSchema }),
      },
    },
    async (req, reply) => {
      const b = req.body;
      if (!seal) throw new NotSealedError('this server has no seal');
      const given = (b.share !== undefined ? 1 : 0) + (b.passphrase !== undefined ? 1 : 0);
      if (b.reset) {
        if (given) throw new InvalidRequestError('give reset alone, without a share or passphrase');
        seal.reset();
        return seal.status();
      }
      if (given !== 1) throw new InvalidRequestError('give exactly one of share or passphrase');
      const st = seal.status();
      if (!st.sealed) return st;
      if (st.type === 'file')
        throw new InvalidRequestError("this vault's master key comes from a file or HUSH_MASTER_KEY: restart the server to open it");
      try {
        const { unsealed: _u, ...out } = await seal.unseal(req.auditCtx, b);
        return out;
      } catch (e) {
        if ((e as { code?: string }).code === 'rate_limited') reply.header('retry-after', '2');
        throw e;
      }
    },
  );

  app.post(
    '/v1/sys/seal',
    {
      // Not rate-limited: an incident is when it is needed most, and it takes root. An unseal finishing
      // right now is waited for (awaitOpen), so the seal applies to it instead of answering "sealed".
      config: { auth: () => ({ kind: 'root' }), action: 'vault.seal', whileSealed: true, awaitOpen: true, rateLimit: false },
      schema: {
        summary:
          'Seal this server now (root): it drops its keys and answers 503 sealed until unsealed. `{"all": ' +
          'true}` seals every server sharing the database within 1 s. The body may be empty.',
        response: withErrors({ 200: Type.Object({ sealed: Type.Boolean(), already: Type.Boolean(), all: Type.Boolean() }) }),
      },
    },
    async (req) => {
      if (!seal) throw new NotSealedError('this server has no seal');
      const b = req.body;
      if (
        b !== undefined &&
        b !== null &&
        (typeof b !== 'object' ||
          Array.isArray(b) ||
          Object.keys(b).some((k) => k !== 'all') ||
          ((b as { all?: unknown }).all !== undefined && typeof (b as { all?: unknown }).all !== 'boolean'))
      ) {
        throw new InvalidRequestError('the body is empty, or {"all": true|false}');
      }
      const all = !!(b as { all?: boolean } | undefined)?.all;
      const r = await seal.seal(req.auditCtx, all ? { cluster: 'all' } : {});
      return { ...r, all };
    },
  );

  app.post(
    '/v1/sys/rotate-master',
    {
      config: { auth: () => ({ kind: 'root' }), action: 'key.rotate_master' },
      schema: {
        summary:
          'Rewrap every wrapped key under a new master key (root): the key given (newKey), or, for a vault ' +
          'sealed with shares or a passphrase, one made on the server ({"generate": true}) that never ' +
          'leaves it',
        body: Type.Object(
          {
            newKey: Type.Optional(Type.String({ minLength: 40, maxLength: 64, description: 'base64 of 32 random bytes' })),
            generate: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: withErrors({
          200: Type.Object({ rewrapped: Type.Number(), from: Type.String(), to: Type.String(), unchanged: Type.Boolean() }),
        }),
      },
    },
    async (req) => {
      const b = req.body;
      if ((b.newKey !== undefined) === !!b.generate) throw new InvalidRequestError('give exactly one of newKey and generate');
      if (b.generate) return c.rotation.rotateMasterGenerated(req.auditCtx);
      const { masterKeyFromBase64 } = await import('../../crypto/keyring.js');
      const newMk = await masterKeyFromBase64(b.newKey!, 'newKey').catch(() => {
        throw new InvalidRequestError('newKey must be the base64 encoding of 32 bytes');
      });
      return c.rotation.rotateMaster(newMk, req.auditCtx);
    },
  );
}
