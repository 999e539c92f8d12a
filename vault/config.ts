import { isAbsolute, resolve } from 'node:path';
import { formatDuration } from '../common/duration.js';
import { ConfigError } from './errors.js';
import { bool, type Parser } from './config-parsers.js';
import { SETTINGS } from './settings.js';

export { parseListen } from './config-parsers.js';
export { SETTINGS } from './settings.js';

/**
 * The only module that reads process.env. Every setting has one row in
 * SETTINGS: its flag, its HUSH_* variable, its default and its parser.
 * Precedence: flags > environment > defaults. The result is validated once
 * and frozen; a bad value is a one-line ConfigError naming the setting.
 */

export interface ListenAddress {
  host: string;
  port: number;
}

export interface Config {
  dataDir: string;
  listen: ListenAddress;
  databaseUrl: string | null;
  databasePoolMax: number;
  masterKey: string | null;
  masterKeyFile: string | null;
  maxValueBytes: number;
  maxSecretsPerEnv: number;
  valueCacheBytes: number;
  bodyLimitBytes: number;
  maxEnvBytes: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnectionsPerAddress: number;
  maxConnections: number;
  responseBufferBytes: number;
  /** Mount path of the Vault KV v2-compatible routes (/v1/<mount>/...); null: off. */
  kvMount: string | null;
  logLevel: string;
  logFormat: 'json' | 'pretty';
  metricsPublic: boolean;
  sqliteSynchronous: 'normal' | 'full';
  tokenDefaultTtlMs: number;
  tokenMaxTtlMs: number;
  rateLimitMax: number;
  rateLimitWindowMs: number;
  rateLimitLease: number | null;
  authFailLimit: number;
  authFailWindowMs: number;
  tlsCert: string | null;
  tlsKey: string | null;
  insecureHttp: boolean;
  trustProxy: string[];
  auditFile: string | null;
  auditCheckpointIntervalMs: number;
  rotationCheckIntervalMs: number;
  backupSchedule: string | null;
  backupDir: string | null;
  backupRecipients: string[];
  backupPassphraseFile: string | null;
  backupKeep: number;
  backupTimezone: string;
  allowPrivateWebhooks: boolean;
  webhookMaxBackoffMs: number;
  verifySchedule: string | null;
  alertAuthFailBurst: number;
  /** The web UI at /ui/ (docs/ui.md); --no-ui turns it off. */
  ui: boolean;
  uiIdleTimeoutMs: number;
  uiSessionTtlMs: number;
}

export type Flags = Record<string, unknown>;

function rawFlag(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return v.map(String).join(',');
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** HUSH_* variables that are not server settings: the CLI's and the SDK's (one environment often serves both). */
const CLIENT_VARIABLES = new Set([
  'HUSH_ADDR',
  'HUSH_TOKEN',
  'HUSH_TOKEN_FILE',
  'HUSH_PROJECT',
  'HUSH_ENV',
  'HUSH_PROFILE',
  'HUSH_TIMEOUT',
  'HUSH_RETRIES',
]);

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/**
 * A misspelt HUSH_* variable is refused rather than ignored: a typo in
 * HUSH_MASTER_KEY_FILE would otherwise start a new vault on a generated
 * development key. HUSH_TEST_* is left to the test suite.
 */
function checkUnknownVariables(env: NodeJS.ProcessEnv): void {
  const settings = SETTINGS.map((s) => s.env);
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('HUSH_') || name.startsWith('HUSH_TEST_') || CLIENT_VARIABLES.has(name) || settings.includes(name)) continue;
    const [best] = [...settings, ...CLIENT_VARIABLES].map((k) => [k, editDistance(name, k)] as const).sort((x, y) => x[1] - y[1]);
    const hint = best && best[1] <= 3 ? `did you mean ${best[0]}? ` : '';
    throw new ConfigError(`unknown setting ${name}: ${hint}the HUSH_* variables are listed in docs/configuration.md`);
  }
}

/**
 * Builds the frozen Config. `flags` uses the kebab-case flag names
 * (as yargs gives them); `env` is normally process.env.
 */
export function loadConfig(flags: Flags = {}, env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  checkUnknownVariables(env);
  const out: Partial<Record<keyof Config, unknown>> = {};
  for (const s of SETTINGS) {
    const fromFlag = rawFlag(flags, s.flag);
    const raw = fromFlag ?? env[s.env];
    const source = fromFlag !== undefined ? `--${s.flag}` : s.env;
    if (raw === undefined || (fromFlag === undefined && raw === '')) {
      out[s.key] = s.default;
      continue;
    }
    try {
      out[s.key] = (s.parse as Parser<unknown>)(raw);
    } catch (e) {
      // The value itself is not echoed: it may be a key.
      throw new ConfigError(`invalid ${source}: ${(e as Error).message}`);
    }
  }
  const cfg = out as Config;
  if (cfg.tokenDefaultTtlMs > cfg.tokenMaxTtlMs) throw new ConfigError('invalid HUSH_TOKEN_DEFAULT_TTL: longer than HUSH_TOKEN_MAX_TTL');
  if ((cfg.tlsCert === null) !== (cfg.tlsKey === null)) throw new ConfigError('invalid --tls-cert/--tls-key: give both or neither');
  if (!isAbsolute(cfg.dataDir)) cfg.dataDir = resolve(cfg.dataDir);
  return Object.freeze(cfg);
}

/** Settings as rows, for docs/configuration.md and `hush server --help`. */
export function describeSettings(): { flag: string; env: string; default: string; doc: string; boolean: boolean }[] {
  const show = (key: keyof Config, v: unknown): string => {
    if (key === 'dataDir') return './hush-data';
    if (key === 'listen') return '127.0.0.1:8420';
    if (v === null || (Array.isArray(v) && v.length === 0)) return '(none)';
    if (key.endsWith('Ms') && typeof v === 'number') return formatDuration(v);
    return typeof v === 'string' ? v : JSON.stringify(v);
  };
  return SETTINGS.map((s) => ({
    flag: `--${s.flag}`,
    env: s.env,
    default: show(s.key, s.default),
    doc: s.doc,
    boolean: (s.parse as unknown) === bool,
  }));
}
