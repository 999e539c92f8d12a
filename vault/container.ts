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
import { rotationServiceFactory } from './services/key/rotation-service.js';
import { valueCacheFactory } from './services/secret/value-cache.js';
import { limitStoreFactory } from './store/limit-store.js';
import { authFailLimitFactory } from './services/limits/auth-fail-limit.js';
import { sharedRateLimitFactory } from './services/limits/rate-limit.js';
import type { MasterKeySource } from './services/key/key-service.js';

/** Wires stores and services, grouped by domain. The only place that knows every factory. */
export function buildContainer(deps: { db: Db; storage: StorageKind; masterKey: MasterKey; masterKeySource?: MasterKeySource; config: Readonly<Config>; log: FastifyBaseLogger }) {
  const { db, masterKey, config, log } = deps;
  // PostgreSQL: several servers may share the database, so the limits are shared through it.
  const shared = deps.storage === 'postgres';
  const stores = {
    keys: keyStoreFactory(db),
    meta: metaStoreFactory(db),
    projects: projectStoreFactory(db),
    secrets: secretStoreFactory(db),
    tokens: tokenStoreFactory(db),
    audit: auditStoreFactory(db),
    backup: backupStoreFactory(db),
    leases: leaseStoreFactory(db),
    limits: limitStoreFactory(db),
  };
  const keys = keyServiceFactory({ keyStore: stores.keys, masterKey, source: deps.masterKeySource, log });
  const limits = {
    authFail: authFailLimitFactory({ limit: config.authFailLimit, windowMs: config.authFailWindowMs, store: shared ? stores.limits : null, log }),
    /** Null: @fastify/rate-limit's in-process store. */
    rate: shared ? sharedRateLimitFactory({ store: stores.limits, lease: config.rateLimitLease ?? Math.max(1, Math.ceil(config.rateLimitMax / 100)), log }) : null,
  };
  const audit = auditServiceFactory({ db, auditStore: stores.audit, keys, log, auditFile: config.auditFile, checkpointIntervalMs: config.auditCheckpointIntervalMs });
  const tokens = tokenServiceFactory({ tokenStore: stores.tokens, keys, audit, log, failLimit: limits.authFail, defaultTtlMs: config.tokenDefaultTtlMs, maxTtlMs: config.tokenMaxTtlMs });
  const secrets = secretServiceFactory({
    db, projectStore: stores.projects, secretStore: stores.secrets, keys, audit, maxValueBytes: config.maxValueBytes, maxSecretsPerEnv: config.maxSecretsPerEnv,
    valueCache: config.valueCacheBytes > 0 ? valueCacheFactory(config.valueCacheBytes) : null,
  });
  const rotation = rotationServiceFactory({ db, keys, projectStore: stores.projects, secretStore: stores.secrets, audit });
  return { db, storage: deps.storage, config, log, stores, keys, audit, tokens, secrets, rotation, limits };
}
export type Container = ReturnType<typeof buildContainer>;
