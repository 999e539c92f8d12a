import { constantTimeEqual, secretAd } from '../../crypto/keyring.js';
import {
  CasConflictError,
  EnvNotFoundError,
  InvalidRequestError,
  ProjectNotFoundError,
  SecretNotFoundError,
  TooManySecretsError,
  ValueTooLargeError,
} from '../../errors.js';
import type { Tx } from '../../store/db.js';
import type { HistoryStore } from '../../store/history-store.js';
import type { EnvRow, ProjectRow, ProjectStore } from '../../store/project-store.js';
import type { SecretRow, SecretStore, StoredValue } from '../../store/secret-store.js';
import type { KeyService } from '../key/key-service.js';
import { assertKeyName } from './names.js';
import { envSizeGuard } from './env-size.js';
import { dict } from '../../../common/dict.js';

/**
 * A change to an environment's map. `replace`: `set` is the whole new map
 * (names it leaves out are deleted). `cas`: the revision the caller last saw.
 * `deleteMissingOk`: a name in `delete` that is not live is skipped instead
 * of failing the change.
 */
export interface EnvChange {
  set: Record<string, string>;
  delete: string[];
  replace?: boolean;
  cas?: number;
  deleteMissingOk?: boolean;
}
export interface EnvChangeResult {
  p: ProjectRow;
  e: EnvRow;
  revision: number;
  changedAnything: boolean;
  added: string[];
  changed: string[];
  unchanged: string[];
  deleted: string[];
}

export interface EnvWriterDeps {
  projectStore: ProjectStore;
  secretStore: SecretStore;
  historyStore: HistoryStore;
  keys: Pick<KeyService, 'cipher'>;
  maxValueBytes: number;
  maxSecretsPerEnv: number;
  /** Largest total of an env's names and values, in bytes (env-size.ts). */
  maxEnvBytes: number;
}

/** Equality of two values without an early exit on the first differing byte. */
export function sameValue(a: string, b: string): boolean {
  return constantTimeEqual(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Writes to an environment's map: the one path every change of several
 * values takes (bulk, rollback, copy, the KV v2 routes), so each makes one
 * revision, or none when nothing changes.
 */
export function envWriterFactory({
  projectStore,
  secretStore,
  historyStore,
  keys,
  maxValueBytes,
  maxSecretsPerEnv,
  maxEnvBytes,
}: EnvWriterDeps) {
  const envSize = envSizeGuard(secretStore, maxEnvBytes);
  function assertValue(name: string, value: unknown): asserts value is string {
    if (typeof value !== 'string') throw new InvalidRequestError(`value of ${name} must be a string`);
    if (!value.isWellFormed()) throw new InvalidRequestError(`value of ${name} is not valid UTF-8 (lone surrogate)`);
    if (value.includes('\u0000'))
      throw new InvalidRequestError(`value of ${name} contains a NUL character, which an environment variable cannot hold`);
    const size = Buffer.byteLength(value, 'utf8');
    if (size > maxValueBytes) throw new ValueTooLargeError(`value of ${name} is ${size} bytes; the limit is ${maxValueBytes}`);
  }

  /** Names and values of a change, checked before any transaction. */
  function assertChange(set: Record<string, string>, del: string[]): void {
    for (const n of Object.keys(set)) {
      assertKeyName(n);
      assertValue(n, set[n]);
    }
    for (const n of del) assertKeyName(n);
    const both = del.find((n) => Object.prototype.hasOwnProperty.call(set, n));
    if (both) throw new InvalidRequestError(`${both} is both set and deleted`);
    if (new Set(del).size !== del.length) throw new InvalidRequestError('"delete" lists a name twice');
  }

  async function env(projectName: string, envName: string, tx?: Tx): Promise<{ p: ProjectRow; e: EnvRow }> {
    const { project: p, env: e } = await projectStore.getProjectEnv(projectName, envName, tx);
    if (!p) throw new ProjectNotFoundError(`project ${projectName} not found`);
    if (!e) throw new EnvNotFoundError(`environment ${projectName}/${envName} not found`);
    return { p, e };
  }

  /** Values of stored rows, in a prototype-free map (names such as "constructor" are plain keys). */
  async function decryptAll(p: ProjectRow, e: EnvRow, rows: StoredValue[], tx: Tx): Promise<Record<string, string>> {
    const out = dict<string>();
    for (const r of rows) {
      const c = await keys.cipher(p.id, r.dekVersion, tx);
      out[r.name] = c.decrypt(
        r.nonce,
        r.ciphertext,
        secretAd(p.id, e.id, r.name, r.version),
        `${p.name}/${e.name}/${r.name} v${r.version}`,
      );
    }
    return out;
  }

  async function encryptVersion(p: ProjectRow, e: EnvRow, name: string, version: number, value: string, tx: Tx) {
    const c = await keys.cipher(p.id, p.dekVersion, tx);
    const { nonce, ciphertext } = c.encrypt(value, secretAd(p.id, e.id, name, version));
    return { nonce, ciphertext, dekVersion: c.version };
  }

  /** A write's project and environment, its revision moved by one (the new revision is e.revision). Locks the env row first. */
  async function bumped(projectName: string, envName: string, tx: Tx): Promise<{ p: ProjectRow; e: EnvRow }> {
    const r = await projectStore.bumpRevisionByName(projectName, envName, tx);
    if (r) return { p: r.project, e: r.env };
    await env(projectName, envName, tx); // throws the not-found error that applies
    throw new EnvNotFoundError(`environment ${projectName}/${envName} not found`);
  }

  /** All of a change or none (the caller's transaction). Checked input only (assertChange). */
  async function apply(projectName: string, envName: string, change: EnvChange, actorId: string, tx: Tx): Promise<EnvChangeResult> {
    const { p, e } = await bumped(projectName, envName, tx);
    const revision = e.revision;
    const previous = revision - 1;
    if (change.cas !== undefined && change.cas !== previous) {
      throw new CasConflictError(
        `check-and-set failed for ${projectName}/${envName}: expected revision ${change.cas}, current is ${previous}`,
        { details: { current: previous } },
      );
    }
    const set = change.set;
    const setNames = Object.keys(set);
    const existing = new Map<string, SecretRow>(
      (await secretStore.getMany(e.id, [...setNames, ...change.delete], tx)).map((s) => [s.name, s]),
    );
    let del = change.delete;
    if (change.replace) {
      del = [];
      for (const s of await secretStore.listLive(e.id, tx)) {
        if (!Object.prototype.hasOwnProperty.call(set, s.name)) {
          del.push(s.name);
          existing.set(s.name, s);
        }
      }
    }
    const isLive = (n: string) => {
      const s = existing.get(n);
      return !!s && !s.deleted;
    };
    if (change.deleteMissingOk) del = del.filter(isLive);
    const missing = del.find((n) => !isLive(n));
    if (missing) throw new SecretNotFoundError(`secret ${missing} not found in ${projectName}/${envName}; nothing was changed`);
    const liveSet = setNames.filter(isLive);
    const current = liveSet.length ? await decryptAll(p, e, await secretStore.liveValues(e.id, liveSet, tx), tx) : dict<string>();
    const added: string[] = [];
    const changed: string[] = [];
    const unchanged: string[] = [];
    for (const n of setNames) {
      if (!Object.prototype.hasOwnProperty.call(current, n)) added.push(n);
      else if (sameValue(current[n], set[n])) unchanged.push(n);
      else changed.push(n);
    }
    if (added.length + changed.length + del.length === 0) {
      // Nothing to write: the revision goes back (this transaction still holds the row), so it counts changes only.
      await historyStore.setRevision(e.id, previous, tx);
      return { p, e: { ...e, revision: previous }, revision: previous, changedAnything: false, added, changed, unchanged, deleted: [] };
    }
    const live = await secretStore.countLive(e.id, tx);
    if (live + added.length - del.length > maxSecretsPerEnv) {
      throw new TooManySecretsError(
        `environment ${projectName}/${envName} would hold ${live + added.length - del.length} secrets; the limit is ${maxSecretsPerEnv}`,
      );
    }
    await envSize.checkWrite(`${projectName}/${envName}`, e.id, set, del, tx);
    for (const n of [...added, ...changed]) {
      const s = existing.get(n) ?? (await secretStore.createSecret(e.id, n, tx));
      const version = s.version + 1;
      await secretStore.writeVersion(s.id, version, await encryptVersion(p, e, n, version, set[n], tx), actorId, revision, tx);
    }
    for (const n of del) {
      const s = existing.get(n)!;
      await secretStore.writeVersion(s.id, s.version + 1, null, actorId, revision, tx);
    }
    return { p, e, revision, changedAnything: true, added, changed, unchanged, deleted: del };
  }

  // Handed out as a plain check: an assertion signature would make every caller declare the writer's type explicitly.
  const checkValue: (name: string, value: unknown) => void = assertValue;
  return { assertValue: checkValue, assertChange, env, decryptAll, encryptVersion, bumped, apply };
}
export type EnvWriter = ReturnType<typeof envWriterFactory>;
