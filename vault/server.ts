import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { isIP } from 'node:net';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { buildBase, type Container } from './container.js';
import { vaultRuntime, type VaultRuntime } from './runtime.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './errors.js';
import { prettyDestination } from './log-format.js';
import { metricsFactory } from './services/metrics/metrics.js';
import { poolStats } from './store/db.js';
import { buildApp } from './http/app.js';
import { verifySchedulePlugin } from './services/audit/verify-schedule.js';
import { validateCron } from './services/schedule.js';
import { backupPlugin, loadBackupSchedule } from './backup/plugin.js';
import { BACKUP_STATS_KEY, parseBackupStats } from './backup/stats.js';
import { rotationSchedulerPlugin } from './services/secret/rotation-scheduler.js';
import { overdueSecretCount } from './services/secret/lifecycle-service.js';
import { VERSION } from '../common/version.js';
import { SYSTEM_CONTEXT } from './services/audit/audit-service.js';
import { redactTokens } from './services/token/redact.js';
import { DEV_KEY_FILE, initVault, isInitialised, openConfiguredDb, openVault, type InitResult } from './vault.js';

/** Paths pino blanks out in every log line, wherever they appear. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'authorization',
  'req.headers.cookie',
  'req.headers["x-vault-token"]',
  'headers["x-vault-token"]',
  '*.headers["x-vault-token"]',
  'token',
  '*.token',
  'value',
  '*.value',
  'secrets',
  '*.secrets',
  'newKey',
  '*.newKey',
  'passphrase',
  '*.passphrase',
];

/**
 * Path-based redaction covers the fields we know about; the streamWrite hook
 * is the backstop for a token pasted where no path can name it (a URL, a
 * query string, an error message): every serialised line is scrubbed of
 * token-shaped strings before it reaches the stream.
 */
export function createLogger(level: string, stream?: DestinationStream, format: Config['logFormat'] = 'json'): Logger {
  const out = stream ?? (format === 'json' ? pino.destination(1) : process.stdout);
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { svc: 'hush' },
      hooks: { streamWrite: redactTokens },
    },
    format === 'pretty' ? prettyDestination(out) : out,
  );
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}

/**
 * Refuses plain HTTP on a non-loopback address unless explicitly allowed,
 * and metrics without a token anywhere but on loopback with no proxy in
 * front (a proxy would forward anyone's scrape).
 */
export function checkTransport(cfg: Readonly<Config>): void {
  if (cfg.metricsPublic && (!isLoopback(cfg.listen.host) || cfg.trustProxy.length > 0)) {
    throw new ConfigError(
      `refusing --metrics-public ` +
        `${cfg.trustProxy.length ? 'with --trust-proxy (a proxy in front would serve the metrics to anyone)' : `on ${cfg.listen.host}`}: ` +
        `it is allowed only on a loopback --listen such as 127.0.0.1:8420; elsewhere give the scraper a ` +
        `token with the metrics grant (docs/metrics.md)`,
    );
  }
  if (!cfg.tlsCert && !isLoopback(cfg.listen.host) && !cfg.insecureHttp) {
    throw new ConfigError(
      `refusing to serve plain HTTP on ${cfg.listen.host}: give --tls-cert and --tls-key, or ` +
        `--insecure-http behind a TLS-terminating proxy (with --trust-proxy CIDR)`,
    );
  }
}

/** Reads and checks the TLS pair; a bad file is a one-line ConfigError naming the setting. */
export function loadTls(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  const read = (file: string, setting: string) => {
    try {
      return readFileSync(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ConfigError(`invalid ${setting}: ${file} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`);
    }
  };
  const pair = { cert: read(certFile, '--tls-cert'), key: read(keyFile, '--tls-key') };
  try {
    createSecureContext(pair);
  } catch (e) {
    // OpenSSL's reason, e.g. "PEM routines::no start line" or "key values mismatch"; never the key bytes.
    throw new ConfigError(
      `invalid --tls-cert/--tls-key: not a usable PEM certificate and matching private key (${String((e as Error).message).slice(0, 120)})`,
    );
  }
  return pair;
}

/** How often a server compares its master key with the vault's (docs/keys.md). */
export const MASTER_KEY_CHECK_MS = 10_000;

export interface HushServer {
  app: FastifyInstance;
  container: Container;
  /** Set when this start initialised an empty vault: the root token, shown once. */
  init: InitResult | null;
  readonly masterKeySource: string;
  runtime: VaultRuntime;
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface BuildOptions {
  logStream?: DestinationStream;
  /** Hooks for parts that live outside vault/http (backups). */
  plugins?: ((c: Container, app: FastifyInstance, server: { onClose: (fn: () => Promise<void>) => void }) => Promise<void> | void)[];
}

/** Opens (or, when empty, initialises) the vault and builds the app. Does not listen. A sealed vault starts sealed. */
export async function buildServer(cfg: Readonly<Config>, opts: BuildOptions = {}): Promise<HushServer> {
  checkTransport(cfg);
  // Before the vault is opened: a bad backup setup must not leave a freshly initialised vault (and its unseen root token) behind.
  await loadBackupSchedule(cfg);
  await validateCron(cfg.verifySchedule, '--verify-schedule', cfg.backupTimezone);
  const log = createLogger(cfg.logLevel, opts.logStream, cfg.logFormat);
  const https = cfg.tlsCert && cfg.tlsKey ? loadTls(cfg.tlsCert, cfg.tlsKey) : null;
  const opened = openConfiguredDb(cfg);
  let init: InitResult | null = null;
  const closers: (() => Promise<void>)[] = [];
  try {
    if (!(await isInitialised(opened.db))) init = await initVault(cfg, opened, log);
    const metrics = metricsFactory({ version: VERSION, storage: opened.storage });
    const base = buildBase({ db: opened.db, storage: opened.storage, config: cfg, log, metrics });
    const runtime = vaultRuntime({
      base,
      log,
      timers: {
        onOpen: [
          // A master-key rotation made through another server is picked up on the next wrap or unwrap that
          // needs the new key; this timer also catches it (and warns when the key file is not updated) when idle.
          (k) => k.keys.watch(MASTER_KEY_CHECK_MS),
          // Webhook deliveries need the webhook key: they run while the vault is open.
          (k) => k.webhookWorker.start(),
        ],
      },
    });
    let masterKeySource = 'sealed';
    const state = await runtime.start(async () => {
      const { masterKey, source, keySource } = await openVault(cfg, opened);
      masterKeySource = source;
      return { mk: masterKey, source: keySource };
    });
    if (state === 'sealed') checkSealedKeySettings(cfg, log);
    const container = runtime.container;
    metrics.setSources({
      sealed: () => runtime.sealed,
      pool: () => poolStats(opened.db),
      queued: () => (runtime.sealed ? null : container.audit.queued()),
      lastBackup: async () => parseBackupStats(await base.stores.meta.get(BACKUP_STATS_KEY)),
      overdueSecrets: () => overdueSecretCount(base.stores.policies),
    });
    const app = await buildApp(container, { logger: log, https, seal: runtime, metrics: { metrics, public: cfg.metricsPublic } });
    for (const p of [backupPlugin, verifySchedulePlugin, rotationSchedulerPlugin, ...(opts.plugins ?? [])])
      await p(container, app, { onClose: (fn) => closers.push(fn) });
    if (state === 'open')
      await container.audit.record(SYSTEM_CONTEXT, {
        action: 'server.start',
        outcome: 'ok',
        detail: { version: VERSION, storage: opened.storage, pid: process.pid },
      });
    let closed = false;
    return {
      app,
      container,
      init,
      runtime,
      get masterKeySource() {
        return masterKeySource;
      },
      async listen() {
        return app.listen({ host: cfg.listen.host, port: cfg.listen.port });
      },
      async close() {
        if (closed) return;
        closed = true;
        for (const fn of closers) await fn().catch(() => undefined);
        await app.close();
        await runtime.close();
        await opened.db.destroy();
      },
    };
  } catch (e) {
    await opened.db.destroy().catch(() => undefined);
    throw e;
  }
}

/** A sealed vault is opened by its shares or passphrase only: a configured master key is a mistake, a master.key beside it a leak. */
function checkSealedKeySettings(cfg: Readonly<Config>, log: Logger): void {
  if (cfg.masterKey || cfg.masterKeyFile) {
    throw new ConfigError(
      'this vault is sealed (shamir or passphrase): it is opened with `hush operator unseal`, not with --master-key or --master-key-file; remove that setting',
    );
  }
  const dev = join(cfg.dataDir, DEV_KEY_FILE);
  if (!cfg.databaseUrl && existsSync(dev)) {
    log.warn(
      { file: dev },
      "a master.key file lies in the data dir of a sealed vault: it is not used; if it is the vault's " +
        'old key (from before a rekey to shares or a passphrase), destroy it',
    );
  }
}
