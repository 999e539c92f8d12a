import { existsSync } from 'node:fs';
import { ensureDataDir } from './data-dir.js';

export { ensureDataDir };
import { FileExistsError, writeSecretFile as writeFile0600 } from '../common/files.js';
import { join } from 'node:path';
import type { Config } from './config.js';
import { generateMasterKeyBase64, masterKeyFromBase64, masterKeyFromFile, randomBytes, type MasterKey } from './crypto/keyring.js';
import { AlreadyInitializedError, ConfigError, NotInitializedError } from './errors.js';
import { generateMasterKey, sealWithPassphrase, sealWithShares, type SealRecord, type SealType, type UnsealKey } from './crypto/seal.js';
import { writeSealRecord } from './services/seal/seal-service.js';
import { hasSchema, migrate, openDb, storageKind, transaction, type Db, type StorageKind } from './store/db.js';
import { keyStoreFactory, metaStoreFactory } from './store/key-store.js';
import { keyServiceFactory, type MasterKeySource as KeySource } from './services/key/key-service.js';
import { auditServiceFactory, SYSTEM_CONTEXT } from './services/audit/audit-service.js';
import { auditStoreFactory } from './store/audit-store.js';
import { tokenServiceFactory } from './services/token/token-service.js';
import { tokenStoreFactory } from './store/token-store.js';
import { authFailLimitFactory } from './services/limits/auth-fail-limit.js';
import type { FastifyBaseLogger } from 'fastify';

export const DEV_KEY_FILE = 'master.key';

export function databaseUrl(config: Readonly<Config>): string {
  return config.databaseUrl ?? `sqlite:${join(config.dataDir, 'hush.db')}`;
}

/** common/files.ts's writeSecretFile; an existing file under `exclusive` is an AlreadyInitializedError (409 already_initialized). */
export function writeSecretFile(path: string, content: string | Buffer, opts: { exclusive?: boolean } = {}): void {
  try {
    writeFile0600(path, content, opts);
  } catch (e) {
    throw e instanceof FileExistsError ? new AlreadyInitializedError(e.message) : e;
  }
}

export type MasterKeySource = 'env' | 'file' | 'data-dir' | 'generated';

/** Finds the master key: explicit key > key file > data-dir master.key. Null when none. */
export async function resolveMasterKey(
  config: Readonly<Config>,
): Promise<{ key: MasterKey; source: MasterKeySource; file: string | null } | null> {
  if (config.masterKey) return { key: await masterKeyFromBase64(config.masterKey, 'HUSH_MASTER_KEY'), source: 'env', file: null };
  if (config.masterKeyFile) return { key: await masterKeyFromFile(config.masterKeyFile), source: 'file', file: config.masterKeyFile };
  const dev = join(config.dataDir, DEV_KEY_FILE);
  if (existsSync(dev)) return { key: await masterKeyFromFile(dev), source: 'data-dir', file: dev };
  return null;
}

/**
 * The master key source a running server reads again when another server
 * has rotated the vault's key: the key file (HUSH_MASTER_KEY_FILE, or the
 * data dir's master.key); a key given in HUSH_MASTER_KEY / --master-key
 * cannot change while the process runs.
 */
export function masterKeySource(config: Readonly<Config>, resolved: { source: MasterKeySource; file: string | null }): KeySource {
  const file = resolved.file;
  if (resolved.source === 'env' || file === null) {
    return {
      where: 'HUSH_MASTER_KEY (or --master-key)',
      rereadable: false,
      load: () => masterKeyFromBase64(config.masterKey ?? '', 'HUSH_MASTER_KEY'),
    };
  }
  return { where: file, rereadable: true, load: () => masterKeyFromFile(file) };
}

export interface OpenedDb {
  db: Db;
  storage: StorageKind;
  url: string;
}

export function openConfiguredDb(config: Readonly<Config>, poolMax?: number): OpenedDb {
  const url = databaseUrl(config);
  const storage = storageKind(url);
  if (storage === 'sqlite' && !config.databaseUrl) ensureDataDir(config.dataDir);
  return { db: openDb({ url, sqliteSynchronous: config.sqliteSynchronous, poolMax: poolMax ?? config.databasePoolMax }), storage, url };
}

/** Is there an initialised vault in this database? Reads only; never writes. */
export async function isInitialised(db: Db): Promise<boolean> {
  if (!(await hasSchema(db))) return false;
  return (await keyStoreFactory(db).get('check', 'vault', 1)) !== null;
}

export interface InitResult {
  rootToken: string;
  rootTokenId: string;
  masterKeyFile: string | null;
  masterKeySource: MasterKeySource | 'sealed';
  vaultId: string;
  /** A shamir seal: the unseal shares, shown once. */
  seal?: { type: SealType; shares: string[]; threshold: number };
}

/** How `operator init` keeps the master key: a file (today's default), unseal shares, or a passphrase. */
export type InitSeal =
  { type: 'file' } | { type: 'shamir'; shares: number; threshold: number } | { type: 'passphrase'; passphrase: string };

/**
 * Initialises an empty vault: schema, key-check row, token pepper, audit
 * MAC key and chain head, and a root token (returned once). Refuses a vault
 * that is already initialised; nothing is changed then.
 */
export async function initVault(
  config: Readonly<Config>,
  opened: OpenedDb,
  log: FastifyBaseLogger,
  sealAs: InitSeal = { type: 'file' },
): Promise<InitResult> {
  const { db } = opened;
  if (await isInitialised(db))
    throw new AlreadyInitializedError(
      `the vault at ${opened.storage === 'sqlite' ? opened.url.replace(/^sqlite:/, '') : 'this database'} is already initialised; nothing was changed`,
    );
  let resolved: { key: MasterKey; source: MasterKeySource; file: string | null } | null;
  let sealed: { record: SealRecord; key: UnsealKey; shares: string[] } | null = null;
  if (sealAs.type === 'file') {
    resolved = await resolveMasterKey(config);
  } else {
    if (config.masterKey || config.masterKeyFile)
      throw new ConfigError(
        `--seal ${sealAs.type} makes its own master key and never writes it down: do not give --master-key or --master-key-file`,
      );
    const mk = await generateMasterKey();
    const made =
      sealAs.type === 'shamir'
        ? await sealWithShares(mk, sealAs.shares, sealAs.threshold)
        : { ...(await sealWithPassphrase(mk, sealAs.passphrase)), shareTexts: [] };
    sealed = { record: made.record, key: made.key, shares: made.shareTexts };
    resolved = { key: mk, source: 'env', file: null };
  }
  let masterKeyFile: string | null = resolved?.file ?? null;
  let source: MasterKeySource = resolved?.source ?? 'generated';
  if (!resolved) {
    ensureDataDir(config.dataDir);
    masterKeyFile = join(config.dataDir, DEV_KEY_FILE);
    writeSecretFile(masterKeyFile, (await generateMasterKeyBase64()) + '\n', { exclusive: true });
    resolved = { key: await masterKeyFromFile(masterKeyFile), source: 'generated', file: masterKeyFile };
    source = 'generated';
  }
  await migrate(db);
  const keys = keyServiceFactory({ keyStore: keyStoreFactory(db), masterKey: resolved.key });
  const audit = auditServiceFactory({ db, auditStore: auditStoreFactory(db), keys, log, auditFile: config.auditFile });
  // Init creates the root token only; nothing authenticates here.
  const failLimit = authFailLimitFactory({ limit: config.authFailLimit, windowMs: config.authFailWindowMs, store: null, log });
  const tokens = tokenServiceFactory({
    tokenStore: tokenStoreFactory(db),
    keys,
    audit,
    log,
    failLimit,
    defaultTtlMs: config.tokenDefaultTtlMs,
    maxTtlMs: config.tokenMaxTtlMs,
  });
  const vaultId = (await randomBytes(16)).toString('hex');
  const meta = metaStoreFactory(db);
  const root = await transaction(db, async (tx) => {
    // A second initialiser racing this one fails on the unique key rows.
    await keys.initialise(tx);
    await audit.initialise(tx);
    await meta.set('vault_id', vaultId, tx);
    await meta.set('created_at', new Date().toISOString(), tx);
    if (sealed) await writeSealRecord(meta, sealed.record, tx);
    return tokens.createRoot(tx);
  });
  const detail = sealed
    ? { vaultId, rootTokenId: root.id, seal: sealed.record.type, shares: sealed.record.shares, threshold: sealed.record.threshold }
    : { vaultId, rootTokenId: root.id, masterKeySource: source };
  await audit.record(SYSTEM_CONTEXT, { action: 'vault.init', outcome: 'ok', detail });
  if (sealed) {
    await audit.close();
    keys.drop();
    sealed.key.wipe();
    return {
      rootToken: root.token,
      rootTokenId: root.id,
      masterKeyFile: null,
      masterKeySource: 'sealed',
      vaultId,
      seal: { type: sealed.record.type, shares: sealed.shares, threshold: sealed.record.threshold },
    };
  }
  return { rootToken: root.token, rootTokenId: root.id, masterKeyFile, masterKeySource: source, vaultId };
}

/**
 * The master key of an initialised, file-sealed vault, from its configured
 * source. Nothing is checked or written here: the runtime (runtime.ts open)
 * checks it against the key-check row BEFORE it migrates or writes anything.
 */
export async function openVault(
  config: Readonly<Config>,
  opened: OpenedDb,
): Promise<{ masterKey: MasterKey; source: MasterKeySource; keySource: KeySource }> {
  if (!(await isInitialised(opened.db)))
    throw new NotInitializedError('vault is not initialised: run `hush init` or start `hush server` on an empty data dir');
  const resolved = await resolveMasterKey(config);
  if (!resolved) throw new ConfigError("no master key: set HUSH_MASTER_KEY_FILE (or --master-key-file) to the vault's key file");
  return { masterKey: resolved.key, source: resolved.source, keySource: masterKeySource(config, resolved) };
}
