// The client's typed API surface (types only): what createClient returns.
import type { WebhooksApi } from './webhooks.js';
import type { GenerateInput, GeneratedSecret, SecretPolicy, SecretPolicyInput, StaleSecret,
  AuditEvent, AuditPage, AuditQuery, AuditVerification, BackupDownload, BackupExportOptions, BulkChange, BulkResult, CallOptions, CreatedToken,
  Deleted, Environment, Health, JwtLogin, JwtRole, JwtRoleCreateInput, JwtRoleDeleted, MasterKeyRotation, SealResult, SealStatus, NotModified, Project,
  ProjectKeyRotation, SecretDeleted, SecretNames, EnvHistory, EnvDiff, RollbackResult, CopyResult,
  SecretsSnapshot, SecretValue, SecretVersions, SecretWritten, TokenCreateInput, TokenInfo, TokenRevoked,
} from './types.js';
import type { AuditIterateOptions, AuditVerifyOptions, GetAllOptions, HttpMethod, RawRequestOptions } from './options.js';

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
   * const stored = await client.secrets.get('api', 'prod', 'DATABASE_URL', { raw: true }); // ${...} references unresolved
   * ```
   */
  get(project: string, env: string, key: string, options?: CallOptions & { version?: number; raw?: boolean }): Promise<SecretValue>;
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
  /**
   * Revisions of an environment, newest first: who changed which names, no
   * values (`list:P/E`). `limit` (default 50, at most 1000) and `before` page.
   *
   * @example
   * ```ts
   * const h = await client.secrets.history('api', 'prod', { limit: 10 });
   * for (const r of h.revisions) console.log(r.revision, r.actors.map((a) => a.name), r.changes.map((c) => c.key));
   * ```
   */
  history(project: string, env: string, options?: CallOptions & { limit?: number; before?: number }): Promise<EnvHistory>;
  /**
   * What differs between two revisions of an environment (`fromRevision`,
   * `toRevision`: default current), or between it and `other`. Names only,
   * unless `values: true` (audited as a read). Needs `read` on both sides.
   *
   * @example
   * ```ts
   * const d = await client.secrets.diff('api', 'staging', { other: { project: 'api', env: 'prod' } });
   * console.log(d.added, d.removed, d.changed);
   * const r = await client.secrets.diff('api', 'prod', { fromRevision: 3 });
   * ```
   */
  diff(project: string, env: string, options: CallOptions & { fromRevision?: number; toRevision?: number; other?: { project: string; env: string }; values?: boolean }): Promise<EnvDiff>;
  /**
   * Writes a new revision whose values equal revision `toRevision`'s
   * (`write:P/E`); nothing when they already do. Never retried.
   *
   * @example
   * ```ts
   * const r = await client.secrets.rollback('api', 'prod', 7);
   * console.log(`now at revision ${r.revision}`);
   * ```
   */
  rollback(project: string, env: string, toRevision: number, options?: CallOptions): Promise<RollbackResult>;
  /**
   * Copies values from one environment into another (`read` on the source,
   * `write` on the target), all or the names in `only`. Names only in the
   * target stay. Never retried.
   *
   * @example
   * ```ts
   * await client.secrets.copy({ project: 'api', env: 'staging' }, { project: 'api', env: 'prod' }, { only: ['FEATURE_X'] });
   * ```
   */
  copy(from: { project: string; env: string }, to: { project: string; env: string }, options?: CallOptions & { only?: string[] }): Promise<CopyResult>;
  /**
   * Stores a value the server makes from a CSPRNG (`write:P/E`), optionally
   * with a rotation policy. The value is returned only with `show: true`.
   *
   * @example
   * ```ts
   * await client.secrets.generate('api', 'prod', 'SESSION_KEY', { charset: 'base64url', length: 43, rotateEvery: '30d', auto: true });
   * ```
   */
  generate(project: string, env: string, key: string, input: GenerateInput, options?: CallOptions): Promise<GeneratedSecret>;
  /**
   * The rotation policy of a secret (`list:P/E`).
   *
   * @example
   * ```ts
   * const { rotateEvery, dueAt } = await client.secrets.policy('api', 'prod', 'DB_PASS');
   * ```
   */
  policy(project: string, env: string, key: string, options?: CallOptions): Promise<SecretPolicy>;
  /**
   * Sets the rotation policy of a secret (`write:P/E`): fields left out are kept, null clears one.
   *
   * @example
   * ```ts
   * await client.secrets.setPolicy('api', 'prod', 'DB_PASS', { rotateEvery: '90d', expiresAt: '2027-01-31' });
   * ```
   */
  setPolicy(project: string, env: string, key: string, input: SecretPolicyInput, options?: CallOptions): Promise<SecretPolicy>;
  /**
   * Secrets overdue for rotation, or whose current version expired, in every env the token may list; most overdue first.
   *
   * @example
   * ```ts
   * for (const s of await client.secrets.stale()) console.log(`${s.project}/${s.env}/${s.key} due ${s.dueAt}`);
   * ```
   */
  stale(options?: CallOptions): Promise<StaleSecret[]>;
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
  /**
   * A vault sealed with unseal shares or a passphrase: the server makes the
   * new master key itself and wraps it under the unseal key; it never leaves
   * the server (no key file to store or destroy).
   *
   * @example
   * ```ts
   * await client.keys.rotateMaster(undefined);
   * ```
   */
  rotateMaster(newKeyBase64: undefined, options?: CallOptions): Promise<MasterKeyRotation>;
}

/** The seal (docs/keys.md): status and unseal need no token; seal needs root. */
export interface SysApi {
  /**
   * Whether this server is sealed, and the unseal progress. Answers 200 sealed or not.
   *
   * @example
   * ```ts
   * const s = await client.sys.sealStatus(); // { sealed: true, type: 'shamir', progress: 1, threshold: 3 }
   * ```
   */
  sealStatus(options?: CallOptions): Promise<SealStatus>;
  /**
   * Gives one unseal share, or the passphrase; `{ reset: true }` forgets the
   * shares given so far. Resolves the progress; `sealed: false` once open.
   * Never retried.
   *
   * @example
   * ```ts
   * const s = await client.sys.unseal({ share: 'hush-share-...' });
   * ```
   */
  unseal(input: { share: string } | { passphrase: string } | { reset: true }, options?: CallOptions): Promise<SealStatus>;
  /**
   * Seals the server now (root): it drops its keys and answers 503 sealed.
   * `all` seals every server sharing the database (each within about a second).
   *
   * @example
   * ```ts
   * await client.sys.seal({ all: true });
   * ```
   */
  seal(input?: { all?: boolean }, options?: CallOptions): Promise<SealResult>;
}

/**
 * JWT roles (machine identity): which JWTs may log in, and the grants and
 * lifetime of the tokens they get. Managing a role needs root, or `admin` of
 * every project its scopes name.
 */
export interface JwtRolesApi {
  /**
   * Creates a role. Give at most one key source, `jwksUrl`, `jwks` or
   * `publicKey`; with none the server uses the issuer's OIDC discovery.
   * Throws ConflictError `already_exists`. Never retried.
   *
   * @example
   * ```ts
   * await client.auth.roles.create({
   *   name: 'deploy', issuer: 'https://token.actions.githubusercontent.com', audience: 'hush',
   *   boundClaims: { repository: 'acme/api', ref: 'refs/heads/main' }, scopes: ['read:api/prod'], ttl: '15m',
   *   jwksUrl: 'https://token.actions.githubusercontent.com/.well-known/jwks',
   * });
   * ```
   */
  create(input: JwtRoleCreateInput, options?: CallOptions): Promise<JwtRole>;
  /**
   * The roles the caller may manage.
   *
   * @example
   * ```ts
   * for (const r of await client.auth.roles.list()) console.log(r.name, r.scopes);
   * ```
   */
  list(options?: CallOptions): Promise<JwtRole[]>;
  /**
   * One role. Throws NotFoundError when it does not exist (or the caller may not manage it).
   *
   * @example
   * ```ts
   * const r = await client.auth.roles.get('deploy');
   * ```
   */
  get(name: string, options?: CallOptions): Promise<JwtRole>;
  /**
   * Deletes a role; tokens it issued stay valid until they expire (revoke
   * them with `tokens.revoke`).
   *
   * @example
   * ```ts
   * await client.auth.roles.delete('deploy');
   * ```
   */
  delete(name: string, options?: CallOptions): Promise<JwtRoleDeleted>;
}

/** Machine identity: JWT login and the roles behind it (docs/machine-identity.md). */
export interface AuthApi {
  /**
   * Exchanges a JWT for a short-lived Hush token (no token needed). Every
   * failure to match a role is the same AuthError `unauthorized`, which
   * never says whether the role exists. This does not change the token the
   * client itself uses: for a client that logs in by itself, give
   * `createClient({ auth })`.
   *
   * @example
   * ```ts
   * const { token, expiresAt } = await client.auth.login('deploy', readFileSync('/var/run/secrets/tokens/hush', 'utf8').trim());
   * const deployer = createClient({ token });
   * ```
   */
  login(role: string, jwt: string, options?: CallOptions): Promise<JwtLogin>;
  /** JWT roles. @example `await client.auth.roles.list()` */
  readonly roles: JwtRolesApi;
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
  /** Seal status, unseal and seal. @example `await client.sys.sealStatus()` */
  readonly sys: SysApi;
  /** JWT login and roles. @example `await client.auth.roles.list()` */
  readonly auth: AuthApi;
  /** Webhooks and their delivery log. @example `await client.webhooks.list()` */
  readonly webhooks: WebhooksApi;
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
