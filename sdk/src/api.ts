// The client's typed API surface (types only): what createClient returns.
import type { WebhooksApi } from './webhooks.js';
import type { SecretsApi } from './secrets-api.js';

export type { SecretsApi } from './secrets-api.js';
import type {
  AuditEvent,
  AuditPage,
  AuditQuery,
  AuditVerification,
  BackupDownload,
  BackupExportOptions,
  CallOptions,
  CreatedToken,
  Deleted,
  Environment,
  Health,
  JwtLogin,
  JwtRole,
  JwtRoleCreateInput,
  JwtRoleDeleted,
  MasterKeyRotation,
  SealResult,
  SealStatus,
  Project,
  ProjectKeyRotation,
  TokenCreateInput,
  TokenInfo,
  TokenRevoked,
} from './types.js';
import type { AuditIterateOptions, AuditVerifyOptions, HttpMethod, RawRequestOptions } from './options.js';

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
