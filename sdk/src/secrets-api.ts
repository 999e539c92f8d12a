// The secrets part of the client's typed API surface (types only): client.secrets.
import type {
  GenerateInput,
  GeneratedSecret,
  SecretPolicy,
  SecretPolicyInput,
  StaleSecret,
  BulkChange,
  BulkResult,
  CallOptions,
  NotModified,
  SecretDeleted,
  SecretNames,
  EnvHistory,
  EnvDiff,
  RollbackResult,
  CopyResult,
  SecretsSnapshot,
  SecretValue,
  SecretVersions,
  SecretWritten,
} from './types.js';
import type { GetAllOptions } from './options.js';

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
  diff(
    project: string,
    env: string,
    options: CallOptions & { fromRevision?: number; toRevision?: number; other?: { project: string; env: string }; values?: boolean },
  ): Promise<EnvDiff>;
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
  copy(
    from: { project: string; env: string },
    to: { project: string; env: string },
    options?: CallOptions & { only?: string[] },
  ): Promise<CopyResult>;
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
