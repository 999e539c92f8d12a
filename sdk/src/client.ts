import { closeSync, openSync, readSync } from 'node:fs';
import { createNodeFetch } from './node-fetch.js';
import { checkTokenFormat } from './token-format.js';
import { AuthError, isHushError, ValidationError, type HushError } from './errors.js';
import { createTransport, sleep, type HttpRequest, type RetryPolicy } from './http.js';
import type {
  AuditEvent, AuditPage, AuditQuery, AuditVerification, BackupDownload, BackupExportOptions, BulkChange, BulkResult, CallOptions, CreatedToken,
  Deleted, Environment, Health, MasterKeyRotation, NotModified, Project, ProjectKeyRotation, SecretDeleted, SecretNames,
  SecretsSnapshot, SecretValue, SecretVersions, SecretWritten, TokenCreateInput, TokenInfo, TokenRevoked,
} from './types.js';

/**
 * Address used when neither `addr` nor HUSH_ADDR is set: where `hush server` listens by default.
 *
 * @example
 * ```ts
 * if (createClient().addr === DEFAULT_ADDR) console.warn('HUSH_ADDR is not set; using the local server');
 * ```
 */
export const DEFAULT_ADDR = 'http://127.0.0.1:8420';

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
   * (a trailing newline from a file) is ignored.
   *
   * @example
   * ```ts
   * createClient({ token: readFileSync('/run/secrets/hush_token', 'utf8') });
   * ```
   */
  token?: string;
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

/** Projects: list, create, delete, rotate the data key. */
export interface ProjectsApi {
  /**
   * Projects the token can see.
   *
   * @example
   * ```ts
   * for (const p of await client.projects.list()) console.log(p.name);
   * ```
   */
  list(options?: CallOptions): Promise<Project[]>;
  /**
   * Creates a project (`admin:NAME` or root). Throws ConflictError `already_exists`.
   *
   * @example
   * ```ts
   * await client.projects.create('api');
   * ```
   */
  create(name: string, options?: CallOptions): Promise<Project>;
  /**
   * Deletes a project with its environments and secrets (`admin:P`).
   *
   * @example
   * ```ts
   * await client.projects.delete('old-api');
   * ```
   */
  delete(name: string, options?: CallOptions): Promise<Deleted>;
  /**
   * Starts a new data-key version for the project; `rewrap: true` also
   * re-encrypts existing values under it (`admin:P`).
   *
   * @example
   * ```ts
   * const r = await client.projects.rotateKey('api', { rewrap: true });
   * console.log(`now at key v${r.dekVersion}, ${r.rewrapped} values rewrapped`);
   * ```
   */
  rotateKey(name: string, options?: CallOptions & { rewrap?: boolean }): Promise<ProjectKeyRotation>;
}

/** Environments of a project. */
export interface EnvsApi {
  /**
   * Environments of a project the token can see.
   *
   * @example
   * ```ts
   * const envs = await client.envs.list('api'); // [{ name: 'prod', revision: 12, createdAt }]
   * ```
   */
  list(project: string, options?: CallOptions): Promise<Environment[]>;
  /**
   * Creates an environment (`admin:P`).
   *
   * @example
   * ```ts
   * await client.envs.create('api', 'staging');
   * ```
   */
  create(project: string, name: string, options?: CallOptions): Promise<Environment>;
  /**
   * Deletes an environment and its secrets (`admin:P`).
   *
   * @example
   * ```ts
   * await client.envs.delete('api', 'pr-1234');
   * ```
   */
  delete(project: string, name: string, options?: CallOptions): Promise<Deleted>;
}

/** Secret values and their history. */
export interface SecretsApi {
  /**
   * All values of an environment (`read:P/E`). With a fallback cache
   * configured, a successful read refreshes the cache, and when the server
   * is unreachable (network error, timeout, 5xx) the cached values are
   * returned with `fromCache: true` and their `ageMs`.
   *
   * @example
   * ```ts
   * const { secrets, revision } = await client.secrets.getAll('api', 'prod');
   * ```
   */
  getAll(project: string, env: string, options?: GetAllOptions & { ifNoneMatch?: undefined }): Promise<SecretsSnapshot>;
  /**
   * Conditional read (`ifNoneMatch`): resolves `{ notModified: true, etag }`
   * (HTTP 304, no values transferred) while the revision is unchanged, else
   * the values as above. With `wait` the server holds the request until a
   * change (long-poll). The fallback cache is never used here.
   *
   * @example
   * ```ts
   * const next = await client.secrets.getAll('api', 'prod', { ifNoneMatch: etag, wait: 25, timeoutMs: 40_000 });
   * if (!next.notModified) reload(next.secrets);
   * ```
   */
  getAll(project: string, env: string, options?: GetAllOptions): Promise<SecretsSnapshot | NotModified>;
  /**
   * One value with its metadata; `version` reads an older one (`read:P/E`).
   *
   * @example
   * ```ts
   * const { value } = await client.secrets.get('api', 'prod', 'DATABASE_URL');
   * const previous = await client.secrets.get('api', 'prod', 'DATABASE_URL', { version: 3 });
   * ```
   */
  get(project: string, env: string, key: string, options?: CallOptions & { version?: number }): Promise<SecretValue>;
  /**
   * Sets a value (`write:P/E`). `cas` is the version you expect to replace
   * (0: the secret must not exist yet); a mismatch throws ConflictError
   * `cas_conflict` with `details.current`.
   *
   * @example
   * ```ts
   * await client.secrets.set('api', 'prod', 'FEATURE_X', 'on');
   * await client.secrets.set('api', 'prod', 'NEW_KEY', 'v', { cas: 0 }); // create only
   * ```
   */
  set(project: string, env: string, key: string, value: string, options?: CallOptions & { cas?: number }): Promise<SecretWritten>;
  /**
   * Deletes a secret; its history is kept (`write:P/E`).
   *
   * @example
   * ```ts
   * await client.secrets.delete('api', 'prod', 'LEGACY_TOKEN');
   * ```
   */
  delete(project: string, env: string, key: string, options?: CallOptions): Promise<SecretDeleted>;
  /**
   * Sets and deletes many names in one atomic change (`write:P/E`). Never
   * retried, being a PATCH.
   *
   * @example
   * ```ts
   * const r = await client.secrets.bulk('api', 'prod', { set: { A: '1', B: '2' }, delete: ['OLD'] });
   * console.log(r.added, r.changed, r.deleted);
   * ```
   */
  bulk(project: string, env: string, change: BulkChange, options?: CallOptions): Promise<BulkResult>;
  /**
   * Version history (metadata only) of one secret, newest first (`list:P/E`).
   *
   * @example
   * ```ts
   * const h = await client.secrets.versions('api', 'prod', 'DATABASE_URL');
   * console.log(h.current, h.versions.map((v) => v.createdBy));
   * ```
   */
  versions(project: string, env: string, key: string, options?: CallOptions): Promise<SecretVersions>;
  /**
   * Names and metadata of the secrets, without values (`list:P/E`).
   *
   * @example
   * ```ts
   * const { secrets } = await client.secrets.listNames('api', 'prod');
   * console.log(secrets.map((s) => s.key));
   * ```
   */
  listNames(project: string, env: string, options?: CallOptions): Promise<SecretNames>;
}

/** API tokens. */
export interface TokensApi {
  /**
   * Creates a child token within the caller's grants and remaining TTL. The
   * token string is in the result only this once.
   *
   * @example
   * ```ts
   * const { token, id } = await client.tokens.create({ name: 'ci', scopes: ['read:api/prod'], ttl: '30d' });
   * ```
   */
  create(input: TokenCreateInput, options?: CallOptions): Promise<CreatedToken>;
  /**
   * Tokens visible to the caller (itself and its descendants; root sees all).
   *
   * @example
   * ```ts
   * const all = await client.tokens.list({ includeRevoked: true });
   * const ci = await client.tokens.list({ name: 'ci' });
   * ```
   */
  list(options?: CallOptions & { name?: string; includeRevoked?: boolean }): Promise<TokenInfo[]>;
  /**
   * The calling token's metadata (a cheap "is my token valid?" check).
   *
   * @example
   * ```ts
   * const me = await client.tokens.self();
   * console.log(me.scopes, me.expiresAt);
   * ```
   */
  self(options?: CallOptions): Promise<TokenInfo>;
  /**
   * Revokes a token and all its descendants, effective on their next request.
   *
   * @example
   * ```ts
   * const { revoked } = await client.tokens.revoke('tok_abc123');
   * ```
   */
  revoke(id: string, options?: CallOptions): Promise<TokenRevoked>;
}

/** The audit log (`audit` grant). */
export interface AuditApi {
  /**
   * One page of events. Pass `nextCursor` back as `cursor` for the next one,
   * or use {@link AuditApi.iterate}.
   *
   * @example
   * ```ts
   * const page = await client.audit.list({ project: 'api', limit: 50 });
   * ```
   */
  list(query?: AuditQuery, options?: CallOptions): Promise<AuditPage>;
  /**
   * Every matching event across all pages, fetched lazily page by page;
   * with `follow: true` it keeps waiting for new events.
   *
   * @example
   * ```ts
   * for await (const ev of client.audit.iterate({ action: 'secret.read', env: 'prod' })) {
   *   console.log(ev.ts, ev.actor.name, ev.outcome);
   * }
   * ```
   */
  iterate(query?: AuditQuery, options?: AuditIterateOptions): AsyncIterableIterator<AuditEvent>;
  /**
   * Recomputes the hash chain; names the first broken seq. With `anchor`
   * (an event's seq and hash kept outside the database: a line of the audit
   * file, the `headHash` of an earlier verify), also checks that this event
   * still exists with that hash, which catches a tail truncated together
   * with the chain head.
   *
   * @example
   * ```ts
   * const v = await client.audit.verify();
   * if (!v.ok) console.error(`audit chain broken at seq ${v.firstBadSeq}: ${v.reason}`);
   * const again = await client.audit.verify({ anchor: { seq: v.headSeq, hash: v.headHash! } });
   * ```
   */
  verify(options?: AuditVerifyOptions): Promise<AuditVerification>;
}

/** Master-key operations (root). */
export interface KeysApi {
  /**
   * Rewraps every wrapped key under a new master key (base64 of 32 random
   * bytes). Store the new key where the server reads it before restarting.
   *
   * @example
   * ```ts
   * import { randomBytes } from 'node:crypto';
   * const newKey = randomBytes(32).toString('base64');
   * const r = await client.keys.rotateMaster(newKey);
   * console.log(`${r.rewrapped} keys moved from ${r.from} to ${r.to}`);
   * ```
   */
  rotateMaster(newKeyBase64: string, options?: CallOptions): Promise<MasterKeyRotation>;
}

/** Encrypted OpenPGP backups (`backup` grant). */
export interface BackupsApi {
  /**
   * Asks the server for a backup and returns it as a stream with the file
   * name and row counts the server reports. The OpenPGP message is produced
   * while you read it, so memory use does not grow with the backup. The
   * timeout covers the response headers only; pass a `signal` to bound the
   * whole transfer. Never retried (POST). A failure mid-transfer errors the
   * stream; check a saved file with `hush backup verify`.
   *
   * @example
   * ```ts
   * import { createWriteStream } from 'node:fs';
   * import { Readable } from 'node:stream';
   * import { pipeline } from 'node:stream/promises';
   * const b = await client.backups.create({ passphrase });
   * await pipeline(Readable.fromWeb(b.body), createWriteStream(b.fileName ?? 'hush-backup.pgp', { mode: 0o600 }));
   * console.log(b.counts);
   * ```
   */
  create(options: BackupExportOptions): Promise<BackupDownload>;
  /**
   * Same as `create`, returning only the stream: the OpenPGP message
   * (binary unless `armor`), which `gpg --decrypt` (GnuPG 2.2+) opens with a
   * recipient's key or the passphrase.
   *
   * @example
   * ```ts
   * import { createWriteStream, readFileSync } from 'node:fs';
   * import { Readable } from 'node:stream';
   * import { pipeline } from 'node:stream/promises';
   * const stream = await client.backups.export({ recipients: [readFileSync('ops.asc', 'utf8')] });
   * await pipeline(Readable.fromWeb(stream), createWriteStream('hush-backup.pgp', { mode: 0o600 }));
   * ```
   */
  export(options: BackupExportOptions): Promise<ReadableStream<Uint8Array>>;
}

/**
 * A Hush API client. Create one with {@link createClient}; it holds no
 * connection state and may be shared.
 */
export interface HushClient {
  /**
   * The server URL the client talks to (normalised, no trailing slash).
   *
   * @example
   * ```ts
   * console.log(`using vault ${client.addr}`);
   * ```
   */
  readonly addr: string;
  /**
   * Server liveness and version; needs no token.
   *
   * @example
   * ```ts
   * const h = await client.health(); // { status: 'ok', version: '0.1.0', storage: 'sqlite', ... }
   * ```
   */
  health(options?: CallOptions): Promise<Health>;
  /** Projects. @example `await client.projects.list()` */
  readonly projects: ProjectsApi;
  /** Environments. @example `await client.envs.create('api', 'prod')` */
  readonly envs: EnvsApi;
  /** Secret values. @example `await client.secrets.getAll('api', 'prod')` */
  readonly secrets: SecretsApi;
  /** Tokens. @example `await client.tokens.self()` */
  readonly tokens: TokensApi;
  /** Audit log. @example `await client.audit.verify()` */
  readonly audit: AuditApi;
  /** Master key. @example `await client.keys.rotateMaster(newKey)` */
  readonly keys: KeysApi;
  /** Backups. @example `await client.backups.export({ passphrase })` */
  readonly backups: BackupsApi;
  /**
   * Low-level escape hatch for an endpoint without a method yet: same auth,
   * timeout, retries and error classes; resolves the parsed JSON body.
   *
   * @example
   * ```ts
   * const openapi = await client.request<Record<string, unknown>>('GET', '/v1/openapi.json', { auth: false });
   * ```
   */
  request<T = unknown>(method: HttpMethod, path: string, options?: RawRequestOptions): Promise<T>;
}

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v.trim() === '' ? undefined : v;
}

function normaliseAddr(raw: string): string {
  let u: URL;
  try { u = new URL(raw.trim()); } catch {
    throw new ValidationError('invalid_config', `the server address "${raw.slice(0, 200)}" is not a URL (expected e.g. https://vault.example.com:8420)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ValidationError('invalid_config', `the server address must use http or https, not ${u.protocol}`);
  if (u.username || u.password) throw new ValidationError('invalid_config', 'the server address must not contain credentials; pass the token as { token } or HUSH_TOKEN');
  if (u.search || u.hash) throw new ValidationError('invalid_config', 'the server address must not contain a query string or fragment');
  return (u.origin + u.pathname).replace(/\/+$/, '');
}

function positive(name: string, v: number | undefined, dflt: number, allowZero = false): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0 || (!allowZero && v === 0)) throw new ValidationError('invalid_config', `${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`);
  return v;
}

function retryPolicy(r: ClientOptions['retries']): RetryPolicy {
  const o: RetryOptions = typeof r === 'number' ? { limit: r } : r ?? {};
  return {
    limit: Math.floor(positive('retries.limit', o.limit, 2, true)),
    backoffMs: positive('retries.backoffMs', o.backoffMs, 250, true),
    maxBackoffMs: positive('retries.maxBackoffMs', o.maxBackoffMs, 5000, true),
    maxRetryAfterMs: positive('retries.maxRetryAfterMs', o.maxRetryAfterMs, 60_000, true),
  };
}

/** "42s", "3m 12s", "5h 2m", "2d 4h". */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

const seg = encodeURIComponent;
const envPath = (p: string, e: string) => `/v1/projects/${seg(p)}/envs/${seg(e)}`;

function timeParam(v: Date | number | string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

type FallbackModule = typeof import('./fallback.js');

const SMALL_FILE_MAX = 1_048_576;

/**
 * Reads a token or CA file, at most 1 MiB. It may be a pipe (`<(pass show
 * hush)`), so the size is what was read, not what stat says: a device or a
 * wrong path (/dev/zero, a log) fails instead of filling memory.
 */
function readSmallFile(path: string, what: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.alloc(65_536);
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      total += n;
      if (total > SMALL_FILE_MAX) throw new ValidationError('invalid_config', `${what} ${path} is larger than 1 MiB`);
      chunks.push(buf.subarray(0, n));
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch (e) {
    if (isHushError(e)) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ValidationError('invalid_config', `cannot read ${what} ${path} (${code})`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The token and where it came from: the `token` option, the `tokenFile` option, HUSH_TOKEN, HUSH_TOKEN_FILE, in that order. */
function tokenFrom(options: ClientOptions): { token: string | undefined; source: string } {
  if (options.token !== undefined) return { token: options.token, source: 'the token given to createClient' };
  if (options.tokenFile !== undefined) return { token: readSmallFile(options.tokenFile, 'the token file'), source: `the token file ${options.tokenFile}` };
  const fromEnv = env('HUSH_TOKEN');
  if (fromEnv !== undefined) return { token: fromEnv, source: 'HUSH_TOKEN' };
  const file = env('HUSH_TOKEN_FILE');
  if (file === undefined) return { token: undefined, source: 'none' };
  return { token: readSmallFile(file, 'HUSH_TOKEN_FILE'), source: `HUSH_TOKEN_FILE ${file}` };
}

/** The fetch to use: the caller's, one that trusts a private CA, or the global fetch. */
function fetchFor(options: ClientOptions): typeof fetch {
  const caFile = options.caFile ?? (options.ca === undefined ? env('HUSH_CA_FILE') : undefined);
  if (options.fetch && (options.ca !== undefined || options.caFile !== undefined)) {
    throw new ValidationError('invalid_config', 'give either { fetch } or { ca }/{ caFile }, not both: a custom fetch brings its own TLS settings');
  }
  if (options.fetch) return options.fetch;
  let ca = options.ca;
  if (caFile !== undefined) {
    const what = options.caFile !== undefined ? 'the CA file' : 'HUSH_CA_FILE';
    ca = readSmallFile(caFile, what);
    if (!/-----BEGIN CERTIFICATE-----/.test(ca)) throw new ValidationError('invalid_config', `${what} ${caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  if (ca !== undefined) {
    if (typeof ca !== 'string' && !(Array.isArray(ca) && ca.every((c) => typeof c === 'string'))) throw new ValidationError('invalid_config', 'ca must be PEM text or an array of PEM texts');
    return createNodeFetch({ ca });
  }
  return (input, init) => globalThis.fetch(input, init);
}

/**
 * Creates a client. Reads HUSH_ADDR, HUSH_TOKEN (or HUSH_TOKEN_FILE) and
 * HUSH_CA_FILE for options not given,
 * and checks the token's checksum offline: a malformed token throws
 * AuthError `token_malformed` here, before any request (the message never
 * includes the token). A client without any token can still call `health()`;
 * other calls then reject with AuthError `token_missing`.
 *
 * @example
 * ```ts
 * import { createClient } from 'hush-vault-sdk';
 *
 * const client = createClient(); // HUSH_ADDR + HUSH_TOKEN
 * const { secrets } = await client.secrets.getAll('api', 'prod');
 * ```
 */
export function createClient(options: ClientOptions = {}): HushClient {
  const addr = normaliseAddr(options.addr ?? env('HUSH_ADDR') ?? DEFAULT_ADDR);
  const { token: rawToken, source: tokenSource } = tokenFrom(options);
  const token = rawToken?.trim() || undefined;
  let tokenProblem: HushError | undefined;
  if (token === undefined) {
    tokenProblem = new AuthError('token_missing', rawToken === undefined
      ? 'no API token: pass { token } to createClient, or set HUSH_TOKEN or HUSH_TOKEN_FILE'
      : `${tokenSource} is empty`);
  } else {
    const check = checkTokenFormat(token);
    if (!check.ok) throw new AuthError('token_malformed', `${tokenSource} is not a valid Hush token: ${check.reason}`);
  }
  const timeoutMs = positive('timeoutMs', options.timeoutMs, 10_000);
  const fallback = options.fallback
    ? { path: options.fallback.path, maxAgeMs: positive('fallback.maxAgeMs', options.fallback.maxAgeMs, 24 * 3600_000) }
    : null;
  if (fallback && (typeof fallback.path !== 'string' || fallback.path === '')) throw new ValidationError('invalid_config', 'fallback.path must be a file path');
  const warn = (message: string, info: WarningInfo) => {
    try {
      if (options.onWarning) options.onWarning(message, info);
      else console.warn(message);
    } catch { /* a throwing warning handler must not change the call's outcome */ }
  };

  let fallbackModule: Promise<FallbackModule> | null = null;
  const cache = () => (fallbackModule ??= import('./fallback.js'));

  const http = createTransport({
    addr, token, tokenProblem, timeoutMs, retry: retryPolicy(options.retries),
    fetch: fetchFor(options),
    // A 401 means the token is dead for every entry: drop the whole cache.
    onError: fallback ? async (err) => {
      if (err.status === 401) await (await cache()).removeFile(fallback.path).catch(() => undefined);
    } : undefined,
  });

  const call = async <T>(req: HttpRequest): Promise<T> => (await http.request<T>(req)).data;
  const opts = (o: CallOptions | undefined) => ({ signal: o?.signal, timeoutMs: o?.timeoutMs });

  async function getAll(project: string, envName: string, o: GetAllOptions = {}): Promise<SecretsSnapshot | NotModified> {
    const conditional = o.ifNoneMatch !== undefined;
    const useCache = fallback !== null && o.fallback !== false && !conditional && token !== undefined;
    const only = o.only && o.only.length ? [...o.only] : null;
    try {
      const res = await http.request<{ secrets: Record<string, string>; revision: number }>({
        method: 'GET', path: `${envPath(project, envName)}/secrets`,
        query: { only: only?.join(','), wait: conditional && o.wait ? Math.min(60, Math.max(0, Math.floor(o.wait))) : undefined },
        headers: conditional ? { 'if-none-match': o.ifNoneMatch! } : undefined,
        allow304: conditional, ...opts(o),
      });
      if (res.status === 304) return { notModified: true, etag: res.headers.get('etag') ?? o.ifNoneMatch! };
      const snap: SecretsSnapshot = { notModified: false, secrets: res.data.secrets, revision: res.data.revision, etag: res.headers.get('etag'), fromCache: false, ageMs: 0 };
      if (useCache) {
        try {
          await (await cache()).saveEntry(fallback.path, token, addr, project, envName, { secrets: snap.secrets, revision: snap.revision, only, savedAt: Date.now() });
        } catch (err) {
          warn(`hush: could not write the fallback cache for ${project}/${envName}: ${(err as Error).message}`, { kind: 'fallback_write_failed', project, env: envName, error: err as Error });
        }
      }
      return snap;
    } catch (err) {
      if (!useCache || !isHushError(err)) throw err;
      const m = await cache();
      if (err.status === 403) {
        await m.removeEntry(fallback.path, addr, project, envName).catch(() => undefined);
        throw err;
      }
      const unreachable = (err.code === 'network_error' && err.status === undefined) || err.code === 'timeout' || (err.status !== undefined && err.status >= 500);
      if (!unreachable) throw err;
      let entry: Awaited<ReturnType<FallbackModule['loadEntry']>>;
      try {
        entry = await m.loadEntry(fallback.path, token, addr, project, envName);
      } catch (readErr) {
        const why = (readErr as NodeJS.ErrnoException).code ?? 'it was written with another token, or altered';
        warn(`hush: server unreachable (${err.code}) and the fallback cache ${fallback.path} cannot be used (${why}); not serving it`, { kind: 'fallback_unreadable', project, env: envName, error: err });
        throw err;
      }
      if (!entry) throw err;
      // A cache filtered with `only` can answer only a request for a subset of those names.
      if (entry.only && (!only || !only.every((k) => entry!.only!.includes(k)))) throw err;
      const ageMs = Math.max(0, Date.now() - entry.savedAt);
      if (ageMs > fallback.maxAgeMs) {
        warn(`hush: server unreachable (${err.code}) and the fallback cache for ${project}/${envName} is ${formatAge(ageMs)} old, older than the ${formatAge(fallback.maxAgeMs)} limit; not serving it`, { kind: 'fallback_too_old', project, env: envName, ageMs, error: err });
        throw err;
      }
      let secrets = entry.secrets;
      if (only) secrets = Object.fromEntries(Object.entries(secrets).filter(([k]) => only.includes(k)));
      warn(`hush: server unreachable (${err.code}); serving ${project}/${envName} from the fallback cache saved ${formatAge(ageMs)} ago (revision ${entry.revision})`, { kind: 'fallback_served', project, env: envName, ageMs, error: err });
      return { notModified: false, secrets, revision: entry.revision, etag: null, fromCache: true, ageMs };
    }
  }

  async function* iterateAudit(query: AuditQuery = {}, o: AuditIterateOptions = {}): AsyncIterableIterator<AuditEvent> {
    if (o.follow && query.order === 'desc') throw new ValidationError('invalid_request', 'audit.iterate with follow needs ascending order');
    let cursor = query.cursor;
    for (;;) {
      const page = await client.audit.list({ ...query, cursor }, opts(o));
      for (const ev of page.events) yield ev;
      if (page.events.length) cursor = String(page.events[page.events.length - 1].seq);
      if (page.nextCursor !== null) { cursor = page.nextCursor; continue; }
      if (!o.follow) return;
      await sleep(o.pollMs ?? 2000, o.signal);
    }
  }

  async function createBackup(o: BackupExportOptions): Promise<BackupDownload> {
    const { signal, timeoutMs: t, ...body } = o;
    const res = await http.request({
      method: 'POST', path: '/v1/backups', body, stream: true, signal, timeoutMs: t,
      headers: { accept: 'application/octet-stream, application/pgp-encrypted, application/json' },
    });
    let counts: Record<string, number> | null = null;
    try { counts = JSON.parse(res.headers.get('x-hush-backup-counts') ?? 'null') as Record<string, number> | null; } catch { counts = null; }
    const fileName = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? null;
    return { body: res.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() }), fileName, counts, contentType: res.headers.get('content-type') };
  }

  const client: HushClient = {
    addr,
    health: (o) => call({ method: 'GET', path: '/v1/sys/health', auth: false, ...opts(o) }),
    projects: {
      list: async (o) => (await call<{ projects: Project[] }>({ method: 'GET', path: '/v1/projects', ...opts(o) })).projects,
      create: (name, o) => call({ method: 'POST', path: '/v1/projects', body: { name }, ...opts(o) }),
      delete: (name, o) => call({ method: 'DELETE', path: `/v1/projects/${seg(name)}`, ...opts(o) }),
      rotateKey: (name, o) => call({ method: 'POST', path: `/v1/projects/${seg(name)}/rotate`, body: o?.rewrap !== undefined ? { rewrap: o.rewrap } : {}, ...opts(o) }),
    },
    envs: {
      list: async (p, o) => (await call<{ envs: Environment[] }>({ method: 'GET', path: `/v1/projects/${seg(p)}/envs`, ...opts(o) })).envs,
      create: (p, name, o) => call({ method: 'POST', path: `/v1/projects/${seg(p)}/envs`, body: { name }, ...opts(o) }),
      delete: (p, name, o) => call({ method: 'DELETE', path: envPath(p, name), ...opts(o) }),
    },
    secrets: {
      getAll: getAll as SecretsApi['getAll'],
      get: (p, e, key, o) => call({ method: 'GET', path: `${envPath(p, e)}/secrets/${seg(key)}`, query: { version: o?.version }, ...opts(o) }),
      set: (p, e, key, value, o) => call({
        method: 'PUT', path: `${envPath(p, e)}/secrets/${seg(key)}`, body: o?.cas !== undefined ? { value, cas: o.cas } : { value },
        retry: o?.cas !== undefined ? 'rate-limit-only' : 'idempotent', ...opts(o),
      }),
      delete: (p, e, key, o) => call({ method: 'DELETE', path: `${envPath(p, e)}/secrets/${seg(key)}`, ...opts(o) }),
      bulk: (p, e, change, o) => call({ method: 'PATCH', path: `${envPath(p, e)}/secrets`, body: { ...(change.set ? { set: change.set } : {}), ...(change.delete ? { delete: change.delete } : {}) }, ...opts(o) }),
      versions: (p, e, key, o) => call({ method: 'GET', path: `${envPath(p, e)}/secrets/${seg(key)}/versions`, ...opts(o) }),
      listNames: (p, e, o) => call({ method: 'GET', path: `${envPath(p, e)}/keys`, ...opts(o) }),
    },
    tokens: {
      create: (input, o) => call({ method: 'POST', path: '/v1/tokens', body: input, ...opts(o) }),
      list: async (o) => (await call<{ tokens: TokenInfo[] }>({
        method: 'GET', path: '/v1/tokens', query: { name: o?.name, includeRevoked: o?.includeRevoked ? 'true' : undefined }, ...opts(o),
      })).tokens,
      self: (o) => call({ method: 'GET', path: '/v1/tokens/self', ...opts(o) }),
      revoke: (id, o) => call({ method: 'DELETE', path: `/v1/tokens/${seg(id)}`, ...opts(o) }),
    },
    audit: {
      list: (q = {}, o) => call({
        method: 'GET', path: '/v1/audit',
        query: {
          from: timeParam(q.from), to: timeParam(q.to), actor: q.actor, action: q.action, project: q.project, env: q.env,
          outcome: q.outcome, cursor: q.cursor, limit: q.limit, order: q.order,
        },
        ...opts(o),
      }),
      iterate: iterateAudit,
      verify: (o) => call({
        method: 'GET', path: '/v1/audit/verify', ...opts(o),
        query: o?.anchor ? { anchorSeq: String(o.anchor.seq), anchorHash: o.anchor.hash } : undefined,
      }),
    },
    keys: {
      rotateMaster: (newKey, o) => call({ method: 'POST', path: '/v1/sys/rotate-master', body: { newKey }, ...opts(o) }),
    },
    backups: {
      create: createBackup,
      export: async (o) => (await createBackup(o)).body,
    },
    request: (method, path, o = {}) => call({ method, path, body: o.body, query: o.query, auth: o.auth, ...opts(o) }),
  };
  return client;
}
