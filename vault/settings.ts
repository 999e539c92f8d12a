/**
 * Every setting of `hush server`, one row each: its key in Config, its flag,
 * its HUSH_* variable, its default, its parser (config-parsers.ts) and the
 * line docs/configuration.md shows (scripts/gen-config-doc.mjs).
 */
import { resolve } from 'node:path';
import {
  BadValue,
  str,
  timeZone,
  nullableStr,
  path,
  nullablePath,
  intIn,
  bytes,
  bytesOrZero,
  timer,
  timerOrZero,
  ttl,
  bool,
  list,
  cidrs,
  parseListen,
  def,
} from './config-parsers.js';

export const SETTINGS = [
  def({
    key: 'dataDir',
    flag: 'data-dir',
    env: 'HUSH_DATA_DIR',
    default: resolve('hush-data'),
    parse: path,
    doc: 'Directory for the SQLite database and (development only) master.key. Created with mode 0700.',
  }),
  def({
    key: 'listen',
    flag: 'listen',
    env: 'HUSH_LISTEN',
    default: { host: '127.0.0.1', port: 8420 },
    parse: parseListen,
    doc: 'Address to listen on, HOST:PORT. Non-loopback addresses need TLS or --insecure-http.',
  }),
  def({
    key: 'databaseUrl',
    flag: 'database-url',
    env: 'HUSH_DATABASE_URL',
    default: null,
    parse: (v) => {
      const s = str(v);
      if (!/^postgres(ql)?:\/\//.test(s) && !/^sqlite:/.test(s)) throw new BadValue('must start with postgres:// or sqlite:');
      return s;
    },
    doc: 'postgres://user@host:5432/db for PostgreSQL, or sqlite:/path/file.db. Absent: SQLite at <data-dir>/hush.db.',
  }),
  def({
    key: 'databasePoolMax',
    flag: 'database-pool-max',
    env: 'HUSH_DATABASE_POOL_MAX',
    default: 10,
    parse: intIn(1, 1000),
    doc:
      "PostgreSQL: most connections this server opens (its pool). PostgreSQL's max_connections must " +
      "cover every server's pool (docs/scaling.md). SQLite: unused.",
  }),
  def({
    key: 'masterKey',
    flag: 'master-key',
    env: 'HUSH_MASTER_KEY',
    default: null,
    parse: nullableStr,
    doc: 'Master key, base64 of 32 bytes. Prefer HUSH_MASTER_KEY_FILE.',
  }),
  def({
    key: 'masterKeyFile',
    flag: 'master-key-file',
    env: 'HUSH_MASTER_KEY_FILE',
    default: null,
    parse: nullablePath,
    doc: 'File holding the base64 master key. Must not be readable by group or others.',
  }),
  def({
    key: 'maxValueBytes',
    flag: 'max-value-bytes',
    env: 'HUSH_MAX_VALUE_BYTES',
    default: 65536,
    parse: bytes,
    doc: 'Largest secret value accepted (UTF-8 bytes).',
  }),
  def({
    key: 'maxSecretsPerEnv',
    flag: 'max-secrets-per-env',
    env: 'HUSH_MAX_SECRETS_PER_ENV',
    default: 10000,
    parse: intIn(1, 1_000_000),
    doc: 'Most live secrets one environment may hold.',
  }),
  def({
    key: 'valueCacheBytes',
    flag: 'value-cache',
    env: 'HUSH_VALUE_CACHE',
    default: 16 * 1024 * 1024,
    parse: bytesOrZero,
    doc:
      'Memory for the decrypted values of recently read environments, checked against the environment ' +
      'revision on every read (docs/performance.md). 0 turns it off.',
  }),
  def({
    key: 'kvMount',
    flag: 'kv-mount',
    env: 'HUSH_KV_MOUNT',
    default: 'secret',
    parse: (v) => {
      if (v === 'off') return null;
      if (
        !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(v) ||
        ['sys', 'auth', 'projects', 'tokens', 'audit', 'backups', 'openapi.json', 'ui'].includes(v)
      ) {
        throw new BadValue('must be a lower-case name (letters, digits, "_", "-") that no Hush route uses, or "off"');
      }
      return v;
    },
    doc: 'Mount path of the Vault KV v2-compatible API: /v1/<mount>/data/<project>/<env> (docs/vault-compat.md). "off" turns it off.',
  }),
  def({
    key: 'bodyLimitBytes',
    flag: 'body-limit',
    env: 'HUSH_BODY_LIMIT',
    default: 8 * 1024 * 1024,
    parse: bytes,
    doc: 'Largest request body accepted; larger bodies get 413.',
  }),
  def({
    key: 'maxEnvBytes',
    flag: 'max-env-bytes',
    env: 'HUSH_MAX_ENV_BYTES',
    default: 2 * 1024 * 1024,
    parse: bytes,
    doc:
      'Largest total size of one environment: the UTF-8' +
      (' bytes of its names and' + ' values together. A write that') +
      (' would pass it gets 413' + ' (env_too_large). A process' + ' environment (execve) holds about 2 MiB at most.'),
  }),
  def({
    key: 'requestTimeoutMs',
    flag: 'request-timeout',
    env: 'HUSH_REQUEST_TIMEOUT',
    default: 60_000,
    parse: timer,
    doc:
      'Longest time a client may take to send a' +
      ' whole request, headers and body (headers' +
      (' alone: at most 20s); a slower one' + ' gets 408 and its connection is closed.'),
  }),
  def({
    key: 'keepAliveTimeoutMs',
    flag: 'keep-alive-timeout',
    env: 'HUSH_KEEP_ALIVE_TIMEOUT',
    default: 65_000,
    parse: timer,
    doc: "How long an idle keep-alive connection stays open between requests. Keep it longer than a load balancer's idle timeout in front of Hush.",
  }),
  def({
    key: 'maxConnectionsPerAddress',
    flag: 'max-connections-per-address',
    env: 'HUSH_MAX_CONNECTIONS_PER_ADDRESS',
    default: 256,
    parse: intIn(1, 1_000_000),
    doc: 'Most open connections from one client address; more are closed at once. Addresses in --trust-proxy are not counted (a proxy carries many clients).',
  }),
  def({
    key: 'maxConnections',
    flag: 'max-connections',
    env: 'HUSH_MAX_CONNECTIONS',
    default: 4096,
    parse: intIn(1, 1_000_000),
    doc:
      'Most open connections to this server in total; more' +
      (' are closed at once, before' + ' a byte is read (counted in') +
      (' hush_connections_refused_total).' +
        ' Keep it under the open-files' +
        (' limit (ulimit -n) less what' + ' the database and logs need.')),
  }),
  def({
    key: 'responseBufferBytes',
    flag: 'response-buffer-limit',
    env: 'HUSH_RESPONSE_BUFFER_LIMIT',
    default: 128 * 1024 * 1024,
    parse: bytes,
    doc:
      'Most bytes of answers held' +
      ' for clients that have not' +
      (' read them yet, all' + ' connections together; past it') +
      (' an answer of 64 KiB or more gets 503 server_busy' + (' with Retry-After' + ' (docs/security.md#slow-readers).')),
  }),
  def({
    key: 'logLevel',
    flag: 'log-level',
    env: 'HUSH_LOG_LEVEL',
    default: 'info',
    parse: (v) => {
      if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(v))
        throw new BadValue('must be one of fatal, error, warn, info, debug, trace, silent');
      return v;
    },
    doc: 'Log level.',
  }),
  def({
    key: 'logFormat',
    flag: 'log-format',
    env: 'HUSH_LOG_FORMAT',
    default: 'json',
    parse: (v) => {
      const s = v.trim().toLowerCase();
      if (s !== 'json' && s !== 'pretty') throw new BadValue('must be json or pretty');
      return s;
    },
    doc:
      'Log lines on stdout: json (one JSON object a line, for a log collector) or pretty (one readable ' +
      'line each: time, level, message, fields; for a terminal).',
  }),
  def({
    key: 'metricsPublic',
    flag: 'metrics-public',
    env: 'HUSH_METRICS_PUBLIC',
    default: false,
    parse: bool,
    doc:
      'Serve GET /v1/sys/metrics without a token (and while sealed). Only with a loopback --listen and ' +
      'no --trust-proxy; otherwise the route needs the metrics grant (docs/metrics.md).',
  }),
  def({
    key: 'sqliteSynchronous',
    flag: 'sqlite-synchronous',
    env: 'HUSH_SQLITE_SYNCHRONOUS',
    default: 'normal',
    parse: (v) => {
      const s = v.toLowerCase();
      if (s !== 'normal' && s !== 'full') throw new BadValue('must be normal or full');
      return s;
    },
    doc: 'SQLite durability. normal: acknowledged writes survive a process crash (kill -9); full: they also survive power loss.',
  }),
  def({
    key: 'tokenDefaultTtlMs',
    flag: 'token-default-ttl',
    env: 'HUSH_TOKEN_DEFAULT_TTL',
    default: 30 * 86_400_000,
    parse: ttl,
    doc: 'TTL given to a new token that asks for none.',
  }),
  def({
    key: 'tokenMaxTtlMs',
    flag: 'token-max-ttl',
    env: 'HUSH_TOKEN_MAX_TTL',
    default: 365 * 86_400_000,
    parse: ttl,
    doc: 'Longest TTL a new token may have.',
  }),
  def({
    key: 'rateLimitMax',
    flag: 'rate-limit',
    env: 'HUSH_RATE_LIMIT',
    default: 6000,
    parse: intIn(1, 10_000_000),
    doc: 'Requests per client IP per rate-limit window.',
  }),
  def({
    key: 'rateLimitWindowMs',
    flag: 'rate-limit-window',
    env: 'HUSH_RATE_LIMIT_WINDOW',
    default: 60_000,
    parse: timer,
    doc: 'Rate-limit window.',
  }),
  def({
    key: 'rateLimitLease',
    flag: 'rate-limit-lease',
    env: 'HUSH_RATE_LIMIT_LEASE',
    default: null,
    parse: intIn(1, 10_000_000),
    doc:
      'PostgreSQL: requests a server' +
      " claims at a time from an address's" +
      (' shared budget (docs/security.md#shared-limits).' + ' Servers together') +
      (' never admit more than --rate-limit; one may refuse while others' +
        (' hold up to this many unused. (none):' + ' 1% of --rate-limit, at least 1.')),
  }),
  def({
    key: 'authFailLimit',
    flag: 'auth-fail-limit',
    env: 'HUSH_AUTH_FAIL_LIMIT',
    default: 20,
    parse: intIn(1, 1_000_000),
    doc: 'Failed authentications per client IP per window before 429.',
  }),
  def({
    key: 'authFailWindowMs',
    flag: 'auth-fail-window',
    env: 'HUSH_AUTH_FAIL_WINDOW',
    default: 60_000,
    parse: timer,
    doc: 'Window for the failed-authentication limit.',
  }),
  def({
    key: 'tlsCert',
    flag: 'tls-cert',
    env: 'HUSH_TLS_CERT',
    default: null,
    parse: nullablePath,
    doc: 'PEM certificate chain; enables HTTPS (TLS 1.2+).',
  }),
  def({ key: 'tlsKey', flag: 'tls-key', env: 'HUSH_TLS_KEY', default: null, parse: nullablePath, doc: 'PEM private key for --tls-cert.' }),
  def({
    key: 'insecureHttp',
    flag: 'insecure-http',
    env: 'HUSH_INSECURE_HTTP',
    default: false,
    parse: bool,
    doc: 'Allow plain HTTP on a non-loopback address (behind a TLS-terminating proxy).',
  }),
  def({
    key: 'trustProxy',
    flag: 'trust-proxy',
    env: 'HUSH_TRUST_PROXY',
    default: [],
    parse: cidrs,
    doc: 'Comma-separated proxy CIDRs whose X-Forwarded-For is trusted.',
  }),
  def({
    key: 'auditFile',
    flag: 'audit-file',
    env: 'HUSH_AUDIT_FILE',
    default: null,
    parse: nullablePath,
    doc: 'Also append audit events as JSON lines to this file (after commit).',
  }),
  def({
    key: 'auditCheckpointIntervalMs',
    flag: 'audit-checkpoint-interval',
    env: 'HUSH_AUDIT_CHECKPOINT_INTERVAL',
    default: 60_000,
    parse: timerOrZero,
    doc:
      'How often a server writes an audit checkpoint' +
      " (a MACed record of every audit stream's" +
      (' head) when any stream moved; 0 turns the' + ' timer off (one is still written at shutdown).'),
  }),
  def({
    key: 'rotationCheckIntervalMs',
    flag: 'rotation-check-interval',
    env: 'HUSH_ROTATION_CHECK_INTERVAL',
    default: 60_000,
    parse: timerOrZero,
    doc:
      'How often a server looks for secrets due for rotation' +
      (' (docs/lifecycle.md): auto-rotated' + ' ones get a new value, the others one') +
      (' secret.rotation_due audit event.' +
        ' Every server may run it; each' +
        (' due secret is handled once. 0' + ' turns it off on this server.')),
  }),
  def({
    key: 'backupSchedule',
    flag: 'backup-schedule',
    env: 'HUSH_BACKUP_SCHEDULE',
    default: null,
    parse: nullableStr,
    doc: 'Cron expression for scheduled backups (croner syntax, seconds field optional).',
  }),
  def({
    key: 'backupDir',
    flag: 'backup-dir',
    env: 'HUSH_BACKUP_DIR',
    default: null,
    parse: nullablePath,
    doc: 'Directory for scheduled backups.',
  }),
  def({
    key: 'backupRecipients',
    flag: 'backup-recipient',
    env: 'HUSH_BACKUP_RECIPIENTS',
    default: [],
    parse: list,
    doc: 'Armored OpenPGP public key files to encrypt scheduled backups to (repeatable flag; comma-separated env).',
  }),
  def({
    key: 'backupPassphraseFile',
    flag: 'backup-passphrase-file',
    env: 'HUSH_BACKUP_PASSPHRASE_FILE',
    default: null,
    parse: nullablePath,
    doc: 'File holding a passphrase for scheduled backups.',
  }),
  def({
    key: 'backupKeep',
    flag: 'backup-keep',
    env: 'HUSH_BACKUP_KEEP',
    default: 14,
    parse: intIn(1, 100_000),
    doc: 'Scheduled backups to keep; older ones are deleted.',
  }),
  def({
    key: 'allowPrivateWebhooks',
    flag: 'allow-private-webhooks',
    env: 'HUSH_ALLOW_PRIVATE_WEBHOOKS',
    default: false,
    parse: bool,
    doc: 'Let webhooks reach loopback, private and link-local addresses, and plain http:// URLs (docs/webhooks.md#ssrf). Off: such targets are refused.',
  }),
  def({
    key: 'webhookMaxBackoffMs',
    flag: 'webhook-max-backoff',
    env: 'HUSH_WEBHOOK_MAX_BACKOFF',
    default: 3_600_000,
    parse: timer,
    doc: 'Longest wait between two attempts of a webhook delivery (retries start at 5s and double; a delivery is given up 24h after its event).',
  }),
  def({
    key: 'verifySchedule',
    flag: 'verify-schedule',
    env: 'HUSH_VERIFY_SCHEDULE',
    default: null,
    parse: nullableStr,
    doc: 'Cron expression for a scheduled `audit verify` (croner syntax); a failure is logged and sent to audit.verify_failed webhooks.',
  }),
  def({
    key: 'alertAuthFailBurst',
    flag: 'alert-auth-fail-burst',
    env: 'HUSH_ALERT_AUTH_FAIL_BURST',
    default: 20,
    parse: intIn(1, 1_000_000),
    doc: 'Failed authentications from one address within a minute that make an auth.fail_burst event (audited, and sent to its webhooks).',
  }),
  def({
    key: 'ui',
    flag: 'ui',
    env: 'HUSH_UI',
    default: true,
    parse: bool,
    doc: 'Serve the web UI at /ui/ (and redirect / there); --no-ui turns it off: those paths answer 404 and no session can be made (docs/ui.md).',
  }),
  def({
    key: 'uiIdleTimeoutMs',
    flag: 'ui-idle-timeout',
    env: 'HUSH_UI_IDLE_TIMEOUT',
    default: 15 * 60_000,
    parse: timer,
    doc: 'A web UI session unused this long ends (its token is revoked); the user logs in again.',
  }),
  def({
    key: 'uiSessionTtlMs',
    flag: 'ui-session-ttl',
    env: 'HUSH_UI_SESSION_TTL',
    default: 12 * 3_600_000,
    parse: ttl,
    doc: 'Longest life of a web UI session, however busy (never longer than the token logged in with).',
  }),
  def({
    key: 'backupTimezone',
    flag: 'backup-timezone',
    env: 'HUSH_BACKUP_TIMEZONE',
    default: 'UTC',
    parse: timeZone,
    doc: 'Time zone for the backup schedule (IANA name; backup file names stay in UTC).',
  }),
] as const;
