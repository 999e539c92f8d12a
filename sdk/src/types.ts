/**
 * Shapes of the Hush HTTP API as the SDK returns them. Timestamps are
 * ISO-8601 strings, exactly as the server sends them.
 */

/**
 * Options every call accepts as its last argument.
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * await client.projects.list({ signal: ac.signal, timeoutMs: 2000 });
 * ```
 */
export interface CallOptions {
  /**
   * Cancels the call (and any retry wait). The promise rejects with the
   * signal's reason, not with a HushError.
   *
   * @example
   * ```ts
   * await client.secrets.getAll('api', 'prod', { signal: AbortSignal.timeout(5000) });
   * ```
   */
  signal?: AbortSignal;
  /**
   * Per-attempt timeout in milliseconds for this call, overriding the
   * client's `timeoutMs`.
   *
   * @example
   * ```ts
   * await client.keys.rotateMaster(newKey, { timeoutMs: 120_000 });
   * ```
   */
  timeoutMs?: number;
}

/** Answer of `GET /v1/sys/health`. */
export interface Health {
  status: string;
  version: string;
  storage: string;
  sealed: boolean;
  /** How the master key is kept: `file`, `shamir` or `passphrase`. */
  seal?: string;
  lastBackupAt: string | null;
  lastBackupError: string | null;
  /** Live secrets past their rotation period or expiry (servers from 0.2 on). */
  overdueSecrets?: number;
}

/** Answer of `GET /v1/sys/seal-status` and `POST /v1/sys/unseal`. */
export interface SealStatus {
  sealed: boolean;
  /** `file`, `shamir` or `passphrase`. */
  type: string;
  /** Shares given so far on this server. */
  progress: number;
  /** Shares needed (1 for a passphrase, 0 for a file seal). */
  threshold: number;
}

/** Result of `sys.seal`. */
export interface SealResult {
  sealed: boolean;
  already: boolean;
  all: boolean;
}

/** A project. */
export interface Project {
  name: string;
  createdAt: string;
}

/** An environment of a project; `revision` grows with every change. */
export interface Environment {
  name: string;
  revision: number;
  createdAt: string;
}

/** Result of deleting a project or an environment. */
export interface Deleted {
  name: string;
  deleted: boolean;
}

/** Result of `projects.rotateKey`. */
export interface ProjectKeyRotation {
  project: string;
  dekVersion: number;
  rewrapped: number;
}

/** Result of `keys.rotateMaster`. */
export interface MasterKeyRotation {
  rewrapped: number;
  from: string;
  to: string;
  unchanged: boolean;
}

/**
 * All values of an environment, as returned by `secrets.getAll`.
 */
export interface SecretsSnapshot {
  notModified: false;
  /** Variable name to value. */
  secrets: Record<string, string>;
  /** The environment's revision when read. */
  revision: number;
  /** The ETag to pass as `ifNoneMatch` (null when served from the fallback cache). */
  etag: string | null;
  /** True when the server was unreachable and the values come from the fallback cache. */
  fromCache: boolean;
  /** Age of the values in milliseconds: 0 when fresh from the server, the cache's age otherwise. */
  ageMs: number;
}

/** `secrets.getAll` with `ifNoneMatch` when nothing changed (HTTP 304). */
export interface NotModified {
  notModified: true;
  /** The (unchanged) current ETag. */
  etag: string;
}

/** One value with its metadata (`secrets.get`). */
export interface SecretValue {
  key: string;
  value: string;
  version: number;
  createdAt: string;
  createdBy: string;
  revision: number;
}

/** Result of `secrets.set`. */
export interface SecretWritten {
  key: string;
  version: number;
  revision: number;
}

/** Character set of a generated value: `words` draws from the BIP-39 English list (11 bits a word), joined by "-". */
export type GenerateCharset = 'alnum' | 'hex' | 'base64url' | 'words';

/** A rotation policy as the server states it. */
export interface SecretPolicyState {
  /** Such as `90d`; null: none. */
  rotateEvery: string | null;
  /** ISO time after which the current version is overdue; null: none. */
  expiresAt: string | null;
  /** The server writes a new generated value when it is due. */
  auto: boolean;
  /** How the value is generated; null for a value that was not generated. */
  generated: { charset: string; length: number } | null;
}

/** Input of `secrets.generate`. */
export interface GenerateInput {
  charset: GenerateCharset;
  /** Characters, or words for `words` (default 32 characters, 6 words). */
  length?: number;
  rotateEvery?: string | null;
  expiresAt?: string | null;
  /** Rotate on schedule: needs `rotateEvery`. */
  auto?: boolean;
  /** Return the value in the answer (otherwise read it with `secrets.get`). */
  show?: boolean;
}

/** Result of `secrets.generate`. `value` only with `show: true`. */
export interface GeneratedSecret extends SecretWritten {
  charset: string;
  length: number;
  /** Entropy of the value in bits. */
  bits: number;
  policy: SecretPolicyState;
  value?: string;
}

/** Input of `secrets.setPolicy`: fields left out are kept, null clears one. */
export interface SecretPolicyInput {
  rotateEvery?: string | null;
  expiresAt?: string | null;
  auto?: boolean;
}

/** Result of `secrets.policy` and `secrets.setPolicy`. */
export interface SecretPolicy extends SecretPolicyState {
  key: string;
  version: number;
  dueAt: string | null;
}

/** One entry of `secrets.stale`. */
export interface StaleSecret extends SecretPolicyState {
  project: string;
  env: string;
  key: string;
  version: number;
  updatedAt: string;
  dueAt: string;
  /** `rotation`: the period since the current version ran out; `expiry`: the current version expired. */
  reason: 'rotation' | 'expiry';
  overdueMs: number;
}

/** Result of `secrets.delete`. */
export interface SecretDeleted {
  key: string;
  version: number;
  revision: number;
  deleted: boolean;
}

/**
 * An atomic bulk change for `secrets.bulk`.
 *
 * @example
 * ```ts
 * const change: BulkChange = { set: { A: '1', B: '2' }, delete: ['OLD'] };
 * ```
 */
export interface BulkChange {
  /** Names to create or overwrite. */
  set?: Record<string, string>;
  /** Names to delete. */
  delete?: string[];
}

/** Result of `secrets.bulk`: which names fell in which bucket. */
export interface BulkResult {
  revision: number;
  added: string[];
  changed: string[];
  unchanged: string[];
  deleted: string[];
}

/** One revision of an environment in its history: who changed which names (no values). */
export interface EnvRevision {
  revision: number;
  createdAt: string;
  /** Who wrote it: token id and name (an id that is no token, such as "system", as both). */
  actors: { id: string; name: string }[];
  /** Secrets live once this revision applied. */
  live: number;
  changes: { key: string; version: number; action: 'set' | 'deleted' }[];
}

/** Result of `secrets.history`: revisions newest first. */
export interface EnvHistory {
  /** The environment's current revision. */
  revision: number;
  revisions: EnvRevision[];
  /** More, older revisions exist: ask again with `before` set to the last one's revision. */
  more: boolean;
}

/** One side of a diff: an environment at a revision. */
export interface EnvRef {
  project: string;
  env: string;
  revision: number;
}

/** Result of `secrets.diff`: names added, removed and changed going from `from` to `to`. */
export interface EnvDiff {
  from: EnvRef;
  to: EnvRef;
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: number;
  /** Only with `values: true` (audited as a read): each differing name's value on both sides (null: absent). */
  values?: Record<string, { from: string | null; to: string | null }>;
}

/** Result of `secrets.rollback`. `revision` equals the previous one when nothing had to change. */
export interface RollbackResult {
  revision: number;
  toRevision: number;
  added: string[];
  changed: string[];
  deleted: string[];
  unchanged: string[];
}

/** Result of `secrets.copy`: what the target environment gained. */
export interface CopyResult {
  from: EnvRef;
  revision: number;
  added: string[];
  changed: string[];
  unchanged: string[];
}

/** Version history of one secret, newest first. */
export interface SecretVersions {
  key: string;
  /** Current version, or null when the secret is deleted. */
  current: number | null;
  /** `createdBy` is the writing token's id; `createdByName` its name (older servers: absent). */
  versions: { version: number; deleted: boolean; createdAt: string; createdBy: string; createdByName?: string }[];
}

/** Names and metadata of an environment's secrets (`secrets.listNames`), no values. */
export interface SecretNames {
  secrets: { key: string; version: number; updatedAt: string }[];
  revision: number;
}

/** Metadata of a token. The token string itself is never returned after creation. */
export interface TokenInfo {
  id: string;
  name: string;
  description: string;
  scopes: string[];
  parentId: string | null;
  cidrs: string[];
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/** A new token: its metadata plus the token string, shown this once. */
export interface CreatedToken extends TokenInfo {
  token: string;
}

/**
 * Input of `tokens.create`.
 *
 * @example
 * ```ts
 * const input: TokenCreateInput = { name: 'deploy-api', scopes: ['read:api/prod'], ttl: '30d', cidrs: ['10.0.0.0/8'] };
 * ```
 */
export interface TokenCreateInput {
  /** Label shown in listings and audit events. */
  name: string;
  /** Grants: `read:P/E`, `list:P/E`, `write:P/E`, `admin:P`, `audit`, `backup`, `metrics`, `root`. */
  scopes: string[];
  /** Lifetime such as `1h`, `30d`, `1y`; capped by the creating token's remaining lifetime. */
  ttl?: string;
  /** CIDR allowlist, e.g. `['10.0.0.0/8']`. */
  cidrs?: string[];
  /** Free text. */
  description?: string;
}

/** Result of `tokens.revoke`: the token and every descendant revoked with it. */
export interface TokenRevoked {
  id: string;
  revoked: string[];
}

export type * from './audit-types.js';
export type * from './jwt-types.js';
