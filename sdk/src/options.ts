// The options of createClient and of its calls (types only, and the default address).
import type { CallOptions } from './types.js';
import type { HushError } from './errors.js';

export { DEFAULT_ADDR } from './defaults.js';

/**
 * Retry tuning. Only idempotent calls (GET, PUT, DELETE) are retried, and
 * only after a network error, 429, 502, 503 or 504.
 *
 * @example
 * ```ts
 * createClient({ retries: { limit: 5, backoffMs: 500, maxBackoffMs: 10_000 } });
 * ```
 */
export interface RetryOptions {
  /**
   * Retries after the first attempt (default 2; 0 disables retries).
   *
   * @example
   * ```ts
   * createClient({ retries: { limit: 0 } });
   * ```
   */
  limit?: number;
  /**
   * First backoff step in milliseconds (default 250). Step n waits a random
   * time between half and all of `backoffMs * 2^n`.
   *
   * @example
   * ```ts
   * createClient({ retries: { backoffMs: 1000 } });
   * ```
   */
  backoffMs?: number;
  /**
   * Largest backoff step in milliseconds (default 5000).
   *
   * @example
   * ```ts
   * createClient({ retries: { maxBackoffMs: 30_000 } });
   * ```
   */
  maxBackoffMs?: number;
  /**
   * Longest Retry-After (from a 429) the SDK will wait before retrying, in
   * milliseconds (default 60 000). A longer one throws RateLimitedError at once.
   *
   * @example
   * ```ts
   * createClient({ retries: { maxRetryAfterMs: 5000 } });
   * ```
   */
  maxRetryAfterMs?: number;
}

/**
 * Opt-in encrypted last-known-good cache for `secrets.getAll`.
 *
 * @example
 * ```ts
 * createClient({ fallback: { path: '/var/cache/myapp/hush.cache', maxAgeMs: 6 * 3600_000 } });
 * ```
 */
export interface FallbackOptions {
  /**
   * File to keep the cache in (created mode 0600; its directory 0700 when
   * created). Use one file per token.
   *
   * @example
   * ```ts
   * createClient({ fallback: { path: `${os.homedir()}/.cache/hush/api-prod.cache` } });
   * ```
   */
  path: string;
  /**
   * Oldest cache that may be served, in milliseconds (default 24 hours;
   * `Infinity` serves any age).
   *
   * @example
   * ```ts
   * createClient({ fallback: { path: 'hush.cache', maxAgeMs: 15 * 60_000 } });
   * ```
   */
  maxAgeMs?: number;
}

/**
 * What a warning is about, passed to `onWarning` next to the message.
 * Never contains a value or a token.
 */
export interface WarningInfo {
  /** `fallback_served`, `fallback_too_old`, `fallback_unreadable` or `fallback_write_failed`. */
  kind: 'fallback_served' | 'fallback_too_old' | 'fallback_unreadable' | 'fallback_write_failed';
  project: string;
  env: string;
  /** Age of the cache in milliseconds, when known. */
  ageMs?: number;
  /** The error that made the SDK look at the cache. */
  error?: HushError | Error;
}

/**
 * Machine identity: the client logs in with a JWT instead of holding a
 * token. See {@link ClientOptions.auth}.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * createClient({ auth: { role: 'deploy', jwt: () => readFileSync('/var/run/secrets/tokens/hush', 'utf8') } });
 * ```
 */
export interface JwtAuthOptions {
  /**
   * The JWT role to log in to (created with `auth.roles.create` or
   * `hush auth roles create`).
   *
   * @example
   * ```ts
   * createClient({ auth: { role: 'ci-deploy', jwt } });
   * ```
   */
  role: string;
  /**
   * Returns the JWT to log in with. Called at every login, so a file that
   * is rotated (a Kubernetes projected token) or a token fetched on demand
   * (GitHub Actions) is read fresh each time. Surrounding whitespace is
   * ignored. An error it throws rejects the call that needed the login
   * (a HushError as it is; anything else as AuthError `jwt_unavailable`).
   *
   * @example
   * ```ts
   * import { githubActionsJwt } from 'hush-vault-sdk';
   * createClient({ auth: { role: 'deploy', jwt: () => githubActionsJwt({ audience: 'hush' }) } });
   * ```
   */
  jwt: () => string | Promise<string>;
}

/**
 * Options of {@link createClient}.
 *
 * @example
 * ```ts
 * const client = createClient({
 *   addr: 'https://vault.internal:8420',
 *   token: process.env.DEPLOY_TOKEN,
 *   timeoutMs: 5000,
 *   retries: 3,
 *   fallback: { path: '.hush-cache', maxAgeMs: 3600_000 },
 * });
 * ```
 */
export interface ClientOptions {
  /**
   * Server URL; a path prefix is kept (`https://proxy/hush`). Default:
   * HUSH_ADDR, else `http://127.0.0.1:8420`.
   *
   * @example
   * ```ts
   * createClient({ addr: 'https://vault.example.com' });
   * ```
   */
  addr?: string;
  /**
   * API token (`hush_...`). Default: HUSH_TOKEN. Its checksum is checked
   * offline when the client is created: a mistyped or truncated token throws
   * AuthError `token_malformed` without any request. Surrounding whitespace
   * (a trailing newline from a file) is ignored. `null`: no token, and
   * HUSH_TOKEN / HUSH_TOKEN_FILE are not read (for calls that need none).
   *
   * @example
   * ```ts
   * createClient({ token: readFileSync('/run/secrets/hush_token', 'utf8') });
   * ```
   */
  token?: string | null;
  /**
   * Log in with a JWT instead of using a token: the client calls
   * `POST /v1/auth/jwt/login` when a call first needs a token, keeps the
   * short-lived token it gets in memory, logs in again before it expires
   * (once less than max(30 s, 20% of its lifetime) remains, but at the
   * latest at half its lifetime) and once more when a call is answered 401,
   * retrying that call once. Concurrent calls share one login. Not
   * combinable with `token` or `tokenFile` (`invalid_config`); HUSH_TOKEN
   * and HUSH_TOKEN_FILE are then ignored. Not combinable with `fallback`,
   * whose key comes from a fixed token.
   *
   * @example
   * ```ts
   * createClient({ addr: 'https://vault.internal', auth: { role: 'deploy', jwt: () => readFileSync(jwtPath, 'utf8') } });
   * ```
   */
  auth?: JwtAuthOptions;
  /**
   * Per-attempt timeout in milliseconds (default 10 000). A timed-out call
   * throws TimeoutError and is not retried.
   *
   * @example
   * ```ts
   * createClient({ timeoutMs: 3000 });
   * ```
   */
  timeoutMs?: number;
  /**
   * Retry count (number) or tuning ({@link RetryOptions}). Default 2 retries.
   *
   * @example
   * ```ts
   * createClient({ retries: 0 }); // fail fast
   * ```
   */
  retries?: number | RetryOptions;
  /**
   * Encrypted fallback cache for `secrets.getAll` (off by default).
   *
   * @example
   * ```ts
   * createClient({ fallback: { path: '/var/cache/app/hush.cache' } });
   * ```
   */
  fallback?: FallbackOptions;
  /**
   * Receives warnings (serving from the fallback cache, a cache that could
   * not be written). Default: `console.warn(message)`.
   *
   * @example
   * ```ts
   * createClient({ onWarning: (msg, info) => logger.warn({ kind: info.kind, ageMs: info.ageMs }, msg) });
   * ```
   */
  onWarning?: (message: string, info: WarningInfo) => void;
  /**
   * The fetch implementation (default: the global fetch; with `ca`, the
   * SDK's {@link createNodeFetch}), for example one with a proxy.
   *
   * @example
   * ```ts
   * import { createNodeFetch } from 'hush-vault-sdk';
   * createClient({ fetch: createNodeFetch() }); // node:http, no undici
   * ```
   */
  fetch?: typeof fetch;
  /**
   * PEM certificate(s) of a private certificate authority to trust for an
   * `https:` server, in addition to the public roots (like Vault's
   * VAULT_CACERT). Default: the file named by HUSH_CA_FILE. Not combinable
   * with `fetch`.
   *
   * @example
   * ```ts
   * createClient({ ca: readFileSync('/etc/hush/ca.pem', 'utf8') });
   * ```
   */
  ca?: string | string[];
  /**
   * Read the CA certificate(s) from this PEM file instead (default:
   * HUSH_CA_FILE).
   *
   * @example
   * ```ts
   * createClient({ caFile: '/etc/hush/ca.pem' });
   * ```
   */
  caFile?: string;
  /**
   * Read the API token from this file, for tokens mounted as files (Docker
   * and Kubernetes secrets). `token` wins over it; it wins over HUSH_TOKEN
   * and HUSH_TOKEN_FILE.
   *
   * @example
   * ```ts
   * createClient({ tokenFile: '/run/secrets/hush_token' });
   * ```
   */
  tokenFile?: string;
}

/**
 * Options of `secrets.getAll`.
 *
 * @example
 * ```ts
 * await client.secrets.getAll('api', 'prod', { only: ['DATABASE_URL', 'REDIS_URL'] });
 * ```
 */
export interface GetAllOptions extends CallOptions {
  /**
   * Return only these names (names that do not exist are left out).
   *
   * @example
   * ```ts
   * await client.secrets.getAll('api', 'prod', { only: ['STRIPE_KEY'] });
   * ```
   */
  only?: string[];
  /**
   * Values as stored: `${KEY}`, `${env.KEY}` and `${project.env.KEY}`
   * references are not resolved, and `$${` stays as written. The fallback
   * cache is never used for raw reads.
   *
   * @example
   * ```ts
   * const { secrets } = await client.secrets.getAll('api', 'prod', { raw: true });
   * ```
   */
  raw?: boolean;
  /**
   * ETag of a previous read. When nothing changed the call resolves
   * `{ notModified: true }` (HTTP 304) instead of the values. The fallback
   * cache is never used for conditional reads.
   *
   * @example
   * ```ts
   * const next = await client.secrets.getAll('api', 'prod', { ifNoneMatch: first.etag! });
   * if (!next.notModified) reload(next.secrets);
   * ```
   */
  ifNoneMatch?: string;
  /**
   * With `ifNoneMatch`: let the server hold the request up to this many
   * seconds (max 60) until the revision changes (long-poll). Raise
   * `timeoutMs` above it.
   *
   * @example
   * ```ts
   * await client.secrets.getAll('api', 'prod', { ifNoneMatch: etag, wait: 25, timeoutMs: 40_000 });
   * ```
   */
  wait?: number;
  /**
   * Set false to skip the client's fallback cache for this call (neither
   * read nor written).
   *
   * @example
   * ```ts
   * await client.secrets.getAll('api', 'prod', { fallback: false });
   * ```
   */
  fallback?: boolean;
}

/**
 * Options of `audit.iterate`.
 *
 * @example
 * ```ts
 * for await (const ev of client.audit.iterate({ outcome: 'denied' }, { follow: true, pollMs: 2000 })) console.log(ev.seq, ev.action);
 * ```
 */
export interface AuditVerifyOptions extends CallOptions {
  /** An event's seq and hex hash recorded outside the database. */
  anchor?: { seq: number; hash: string };
}

export interface AuditIterateOptions extends CallOptions {
  /**
   * After the last page, keep polling for new events until `signal` aborts
   * (ascending order only), like `tail -f`.
   *
   * @example
   * ```ts
   * client.audit.iterate({}, { follow: true, signal: ac.signal });
   * ```
   */
  follow?: boolean;
  /**
   * Poll interval in milliseconds while following (default 2000).
   *
   * @example
   * ```ts
   * client.audit.iterate({}, { follow: true, pollMs: 500 });
   * ```
   */
  pollMs?: number;
}

/** HTTP methods the API uses. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * Options of the low-level {@link HushClient.request}.
 *
 * @example
 * ```ts
 * await client.request('GET', '/v1/openapi.json', { auth: false });
 * ```
 */
export interface RawRequestOptions extends CallOptions {
  /** JSON body. */
  body?: unknown;
  /** Query parameters; undefined values are skipped. */
  query?: Record<string, string | number | boolean | undefined>;
  /** Send the token (default true). */
  auth?: boolean;
}
