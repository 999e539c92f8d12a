import type { FastifyBaseLogger } from 'fastify';
import type { MasterKey } from './crypto/keyring.js';
import type { Config } from './config.js';
import type { Db, StorageKind } from './store/db.js';
import { keyStoreFactory, metaStoreFactory } from './store/key-store.js';
import { projectStoreFactory } from './store/project-store.js';
import { secretStoreFactory } from './store/secret-store.js';
import { tokenStoreFactory } from './store/token-store.js';
import { auditStoreFactory } from './store/audit-store.js';
import { backupStoreFactory } from './store/backup-store.js';
import { leaseStoreFactory } from './store/lease-store.js';
import { keyServiceFactory } from './services/key/key-service.js';
import { auditServiceFactory } from './services/audit/audit-service.js';
import { tokenServiceFactory } from './services/token/token-service.js';
import { secretServiceFactory } from './services/secret/secret-service.js';
import { checkpointTruncate } from './store/db.js';
import { envWriterFactory } from './services/secret/env-writer.js';
import { historyServiceFactory } from './services/secret/history-service.js';
import { kvServiceFactory } from './services/secret/kv-service.js';
import { historyStoreFactory } from './store/history-store.js';
import { rotationServiceFactory, type RotationServiceDeps } from './services/key/rotation-service.js';
import { valueCacheFactory } from './services/secret/value-cache.js';
import { limitStoreFactory } from './store/limit-store.js';
import { authFailLimitFactory } from './services/limits/auth-fail-limit.js';
import { sharedRateLimitFactory } from './services/limits/rate-limit.js';
import type { MasterKeySource } from './services/key/key-service.js';
import { SealedError } from './errors.js';
import { jwtRoleStoreFactory } from './store/jwt-role-store.js';
import { issuerKeysFactory } from './services/identity/issuer-keys.js';
import { jwtAuthServiceFactory } from './services/identity/jwt-auth-service.js';
import type { Metrics } from './services/metrics/metrics.js';
import { webhookStoreFactory } from './store/webhook-store.js';
import { webhookOutboxFactory } from './services/webhooks/outbox.js';
import { webhookServiceFactory } from './services/webhooks/webhook-service.js';
import { webhookWorkerFactory, type WebhookWorker } from './services/webhooks/delivery.js';
import { policyStoreFactory } from './store/policy-store.js';
import { healthServiceFactory } from './services/health/health-service.js';
import { lifecycleServiceFactory } from './services/secret/lifecycle-service.js';
import { sessionStoreFactory } from './store/session-store.js';
import { sessionServiceFactory } from './services/session/session-service.js';

export interface ContainerDeps {
  db: Db;
  storage: StorageKind;
  config: Readonly<Config>;
  log: FastifyBaseLogger;
  /** A server's metrics (absent for the CLI's offline commands). */
  metrics?: Metrics | null;
}

/** The parts that hold no key: the stores and the shared limits. They live as long as the process. */
export function buildBase(deps: ContainerDeps) {
  const { db, config, log } = deps;
  // PostgreSQL: several servers may share the database, so the limits are shared through it.
  const shared = deps.storage === 'postgres';
  const stores = {
    keys: keyStoreFactory(db),
    meta: metaStoreFactory(db),
    projects: projectStoreFactory(db),
    secrets: secretStoreFactory(db),
    history: historyStoreFactory(db),
    tokens: tokenStoreFactory(db, deps.metrics?.tokens ?? null),
    audit: auditStoreFactory(db),
    backup: backupStoreFactory(db),
    leases: leaseStoreFactory(db),
    limits: limitStoreFactory(db),
    jwtRoles: jwtRoleStoreFactory(db),
    webhooks: webhookStoreFactory(db),
    policies: policyStoreFactory(db),
    sessions: sessionStoreFactory(db),
  };
  const limits = {
    authFail: authFailLimitFactory({
      limit: config.authFailLimit,
      windowMs: config.authFailWindowMs,
      store: shared ? stores.limits : null,
      log,
    }),
    /** Null: @fastify/rate-limit's in-process store. */
    rate: shared
      ? sharedRateLimitFactory({
          store: stores.limits,
          lease: config.rateLimitLease ?? Math.max(1, Math.ceil(config.rateLimitMax / 100)),
          log,
        })
      : null,
  };
  // Issuer keys (JWKS) hold no secret: their cache outlives a seal.
  return {
    db,
    storage: deps.storage,
    config,
    log,
    stores,
    limits,
    issuerKeys: issuerKeysFactory(),
    metrics: deps.metrics ?? null,
    health: healthServiceFactory({ meta: stores.meta, policies: stores.policies }),
  };
}
export type Base = ReturnType<typeof buildBase>;

/** The services that need the master key: built when the vault is opened (or unsealed), dropped when it is sealed. */
export function buildKeyed(base: Base, masterKey: MasterKey, masterKeySource?: MasterKeySource, seal?: RotationServiceDeps['seal']) {
  const { db, stores, config, log, limits } = base;
  const keys = keyServiceFactory({ keyStore: stores.keys, masterKey, source: masterKeySource, log });
  // The worker is made after the audit service it writes through; the outbox only needs to wake it.
  let webhookWorker: WebhookWorker | null = null;
  const outbox = webhookOutboxFactory({ store: stores.webhooks, onCommitted: () => webhookWorker?.kick() });
  const audit = auditServiceFactory({
    db,
    auditStore: stores.audit,
    keys,
    log,
    auditFile: config.auditFile,
    checkpointIntervalMs: config.auditCheckpointIntervalMs,
    outbox,
    batches: base.metrics?.batches ?? null,
  });
  webhookWorker = webhookWorkerFactory({
    store: stores.webhooks,
    keys,
    audit,
    log,
    allowPrivate: config.allowPrivateWebhooks,
    maxBackoffMs: config.webhookMaxBackoffMs,
  });
  const worker = webhookWorker;
  const webhooks = webhookServiceFactory({
    store: stores.webhooks,
    keys,
    audit,
    allowPrivate: config.allowPrivateWebhooks,
    onEnqueued: () => worker.kick(),
  });
  const tokens = tokenServiceFactory({
    tokenStore: stores.tokens,
    keys,
    audit,
    log,
    failLimit: limits.authFail,
    defaultTtlMs: config.tokenDefaultTtlMs,
    maxTtlMs: config.tokenMaxTtlMs,
    failBurst: { threshold: Math.min(config.alertAuthFailBurst, config.authFailLimit), windowMs: config.authFailWindowMs },
  });
  const valueCache = config.valueCacheBytes > 0 ? valueCacheFactory(config.valueCacheBytes) : null;
  const writer = envWriterFactory({
    projectStore: stores.projects,
    secretStore: stores.secrets,
    historyStore: stores.history,
    keys,
    maxValueBytes: config.maxValueBytes,
    maxSecretsPerEnv: config.maxSecretsPerEnv,
    maxEnvBytes: config.maxEnvBytes,
  });
  const secrets = secretServiceFactory({
    db,
    projectStore: stores.projects,
    secretStore: stores.secrets,
    keys,
    audit,
    writer,
    historyStore: stores.history,
    maxSecretsPerEnv: config.maxSecretsPerEnv,
    maxEnvBytes: config.maxEnvBytes,
    valueCache,
    afterDelete: async () => {
      try {
        if ((await checkpointTruncate(db)) === 'busy')
          log.warn(
            'after a delete, the SQLite write-ahead log could not be truncated yet (a reader holds an older snapshot); the next checkpoint does it',
          );
      } catch (e) {
        log.warn({ err: { message: (e as Error).message } }, 'after a delete, the SQLite write-ahead log could not be checkpointed');
      }
    },
  });
  const history = historyServiceFactory({ historyStore: stores.history, writer, audit, references: secrets });
  const kv = kvServiceFactory({ projectStore: stores.projects, historyStore: stores.history, history, writer, audit, references: secrets });
  const rotation = rotationServiceFactory({ db, keys, projectStore: stores.projects, secretStore: stores.secrets, audit, seal });
  const jwtAuth = jwtAuthServiceFactory({
    roles: stores.jwtRoles,
    tokens,
    audit,
    keys: base.issuerKeys,
    log,
    maxTtlMs: config.tokenMaxTtlMs,
  });
  const lifecycle = lifecycleServiceFactory({
    projectStore: stores.projects,
    secretStore: stores.secrets,
    policyStore: stores.policies,
    leaseStore: stores.leases,
    secrets,
    audit,
  });
  const sessions = sessionServiceFactory({
    tokens,
    tokenStore: stores.tokens,
    sessionStore: stores.sessions,
    audit,
    idleMs: config.uiIdleTimeoutMs,
    maxMs: config.uiSessionTtlMs,
    tokenMaxTtlMs: config.tokenMaxTtlMs,
    log,
  });
  return { keys, audit, tokens, secrets, history, kv, rotation, jwtAuth, lifecycle, valueCache, webhooks, webhookWorker: worker, sessions };
}
export type Keyed = ReturnType<typeof buildKeyed>;

export type Container = Base &
  Omit<Keyed, 'valueCache' | 'webhookWorker'> & {
    /** True while the server holds no keys: every keyed service then throws SealedError (503 sealed). */
    readonly sealed: boolean;
  };

/** Wires stores and services for a vault whose master key is at hand (the CLI's offline commands, restore, tests). */
export function buildContainer(deps: ContainerDeps & { masterKey: MasterKey; masterKeySource?: MasterKeySource }): Container {
  const base = buildBase(deps);
  return { ...base, ...buildKeyed(base, deps.masterKey, deps.masterKeySource), sealed: false };
}

/**
 * The container a server's routes see: the base parts, and getters for the
 * keyed services of the vault as it is now. While sealed they throw
 * SealedError, so a route (or a scheduled job) that needs a key answers
 * 503 `sealed` without knowing about the seal.
 */
export function sealableContainer(base: Base, current: () => Keyed | null): Container {
  const get = <K extends keyof Keyed>(k: K): Keyed[K] => {
    const c = current();
    if (!c) throw new SealedError('the vault is sealed: unseal it with `hush operator unseal` (docs/keys.md)');
    return c[k];
  };
  return {
    ...base,
    get keys() {
      return get('keys');
    },
    get audit() {
      return get('audit');
    },
    get tokens() {
      return get('tokens');
    },
    get secrets() {
      return get('secrets');
    },
    get history() {
      return get('history');
    },
    get kv() {
      return get('kv');
    },
    get rotation() {
      return get('rotation');
    },
    get jwtAuth() {
      return get('jwtAuth');
    },
    get webhooks() {
      return get('webhooks');
    },
    get lifecycle() {
      return get('lifecycle');
    },
    get sessions() {
      return get('sessions');
    },
    get sealed() {
      return current() === null;
    },
  };
}
