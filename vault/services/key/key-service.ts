import type { FastifyBaseLogger } from 'fastify';
import {
  wipeMasterKey,
  auditMac,
  exportKeyForBackup,
  importKeyFromBackup,
  newSecretCipher,
  newWrappedKey,
  rewrapKey,
  secretCipher,
  tokenHasher,
  verifyKeyCheck,
  type AuditMacFn,
  type KeyPurpose,
  type MasterKey,
  type SecretCipher,
  type WrappedKey,
} from '../../crypto/keyring.js';
import { MasterKeyChangedError, NotInitializedError, type HushError } from '../../errors.js';
import type { Tx } from '../../store/db.js';
import type { KeyStore } from '../../store/key-store.js';
import { webhookSigner, type WebhookSigner } from '../../crypto/webhook-signing.js';

/**
 * Where this server reads its master key, so that it can read it again
 * when another server has rotated the vault's key (vault.ts).
 */
export interface MasterKeySource {
  /** A file path, or the setting the key came from: named in messages, never key material. */
  readonly where: string;
  /** False when the key cannot change while the process runs (HUSH_MASTER_KEY, --master-key). */
  readonly rereadable: boolean;
  load(): Promise<MasterKey>;
}

export interface KeyServiceDeps {
  keyStore: KeyStore;
  masterKey: MasterKey;
  /** Absent: the key cannot be read again (init, tests). */
  source?: MasterKeySource;
  log?: Pick<FastifyBaseLogger, 'info' | 'warn'>;
}

/**
 * Owns the master key for this process and the unwrapped-key caches.
 * Everything else asks it for a cipher, a hasher or a MAC function.
 *
 * Several servers may share one database, and any of them may rotate the
 * master key. A rotation rewraps the keys table only: the data keys, the
 * token pepper and the audit MAC key stay the same, so what a server has
 * already unwrapped stays valid. A server notices the rotation when it
 * wraps a new key (the key-check row names another master key), when a row
 * it must unwrap is wrapped under another master key, and on watch()'s
 * timer; it then reads its key source again and adopts the key found there
 * when the key-check row opens with it. Until it can, it keeps serving with
 * the keys it holds and answers everything else with master_key_changed,
 * which names the file to update.
 */
export function keyServiceFactory({ keyStore, masterKey, source, log }: KeyServiceDeps) {
  let mk = masterKey;
  /** Every master key this process has held (rotations): drop() wipes them all. */
  const held = new Set<MasterKey>([masterKey]);
  /** The key this process is rotating to: adopted as soon as the rotation has committed. */
  let rotatingTo: MasterKey | null = null;
  const ciphers = new Map<string, SecretCipher>();
  let hashToken: ((t: string) => Buffer) | null = null;
  let mac: ((prev: Uint8Array, c: string) => Buffer) | null = null;
  let signer: WebhookSigner | null = null;
  /** The last mismatch warned about, so the log says it once. */
  let warned = '';

  const dekScope = (projectId: number) => `project:${projectId}`;

  /**
   * Makes the vault's current master key (the one the key-check row is
   * wrapped under) this process's key, when it can get it: the key it is
   * rotating to, or its key source read again. False when it cannot.
   */
  async function catchUp(check: WrappedKey): Promise<boolean> {
    if (check.mkFingerprint === mk.fingerprint) return true;
    const candidates: MasterKey[] = rotatingTo ? [rotatingTo] : [];
    let inSource: string | null = null;
    if (source?.rereadable) {
      try {
        const k = await source.load();
        candidates.push(k);
        inSource = k.fingerprint;
      } catch (e) {
        // The message names the file and what is wrong with it, never its content.
        inSource = (e as Error).message;
      }
    }
    const next = candidates.find((c) => c.fingerprint === check.mkFingerprint);
    if (next) {
      verifyKeyCheck(next, check); // a key-check row that does not open is an integrity error, not a rotation
      const from = mk.fingerprint;
      mk = next;
      held.add(next);
      rotatingTo = null;
      warned = '';
      log?.info(
        { from, to: next.fingerprint, source: source?.where ?? null },
        'the vault master key was rotated; this server now uses the new key',
      );
      return true;
    }
    const note = `${check.mkFingerprint}:${inSource}`;
    if (note !== warned) {
      warned = note;
      log?.warn(
        { vaultKey: check.mkFingerprint, serverKey: mk.fingerprint, source: source?.where ?? null, sourceHolds: inSource },
        `the vault master key was rotated to ${check.mkFingerprint}; ${instruction()}`,
      );
    }
    return false;
  }

  function instruction(): string {
    if (!source) return 'restart this server with the new master key';
    return source.rereadable
      ? `put the new master key in ${source.where} on this server (it is read again without a restart)`
      : `set ${source.where} to the new master key and restart this server`;
  }

  function changed(vaultKey: string): HushError {
    return new MasterKeyChangedError(
      `the master key was rotated to ${vaultKey} by another server and this server still has ${mk.fingerprint}: ${instruction()}`,
      { details: { vaultKey, serverKey: mk.fingerprint } },
    );
  }

  /** Wrapping a new key under a master key another process has rotated away would strand it. */
  async function assertCurrentMk(tx: Tx, lock: 'share' | 'update'): Promise<WrappedKey> {
    const check = await keyStore.checkLocked(tx, lock);
    if (!check) throw new NotInitializedError('vault is not initialised');
    if (!(await catchUp(check))) throw changed(check.mkFingerprint);
    return check;
  }

  /**
   * Reads a wrapped key and opens it with `use`. A row wrapped under
   * another master key than this process's means a rotation: catch up
   * first (or say what to do), then read the row again.
   */
  async function openKey<T>(
    purpose: KeyPurpose,
    scope: string,
    version: number,
    missing: string,
    tx: Tx | undefined,
    use: (k: MasterKey, row: WrappedKey) => T,
  ): Promise<T> {
    const row = await keyStore.get(purpose, scope, version, tx);
    if (!row) throw new NotInitializedError(missing);
    if (row.mkFingerprint === mk.fingerprint) return use(mk, row);
    const check = await keyStore.get('check', 'vault', 1, tx);
    if (!check) throw new NotInitializedError('vault is not initialised');
    if (!(await catchUp(check))) throw changed(check.mkFingerprint);
    // Read before a rotation committed, or wrapped under neither key: the keyring says which.
    const again = row.mkFingerprint === mk.fingerprint ? row : await keyStore.get(purpose, scope, version, tx);
    if (!again) throw new NotInitializedError(missing);
    return use(mk, again);
  }

  async function refresh(): Promise<boolean> {
    const check = await keyStore.get('check', 'vault', 1);
    if (!check) return true;
    return catchUp(check);
  }

  return {
    get fingerprint() {
      return mk.fingerprint;
    },

    /** First-run material: key-check row, token pepper, audit MAC key. */
    async initialise(tx: Tx): Promise<void> {
      await keyStore.insert(newWrappedKey(mk, 'check', 'vault', 1), tx);
      await keyStore.insert(newWrappedKey(mk, 'token-pepper', 'vault', 1), tx);
      await keyStore.insert(newWrappedKey(mk, 'audit-mac', 'vault', 1), tx);
    },

    /** Startup check: throws WrongMasterKeyError / IntegrityError before anything is served. */
    async verify(tx?: Tx): Promise<void> {
      const check = await keyStore.get('check', 'vault', 1, tx);
      if (!check) throw new NotInitializedError('vault is not initialised (no key-check record)');
      verifyKeyCheck(mk, check);
    },

    /**
     * Compares this process's master key with the vault's and catches up
     * when it can (watch() calls this on a timer). Returns whether this
     * process holds the vault's key now.
     */
    refresh,

    /** refresh() every `everyMs` until the returned function is called. */
    watch(everyMs: number): () => void {
      let lastError = '';
      const timer = setInterval(() => {
        refresh().then(
          () => {
            lastError = '';
          },
          (e: Error) => {
            if (e.message !== lastError) log?.warn({ err: { message: e.message } }, "could not compare the master key with the vault's");
            lastError = e.message;
          },
        );
      }, everyMs);
      timer.unref();
      return () => clearInterval(timer);
    },

    /**
     * A restore into an empty vault (whose key-check row importForRestore
     * just wrote under this very key): a new data key for a project and its
     * cipher, without reading the row back. The wrapped row goes to `add`,
     * which writes it in a batch with the others (bulk-insert.ts), in the
     * restore's transaction.
     */
    restoreProjectDek(projectId: number, add: (row: WrappedKey) => void): SecretCipher {
      const { row, cipher } = newSecretCipher(mk, dekScope(projectId), 1);
      add(row);
      ciphers.set(`${projectId}:1`, cipher);
      return cipher;
    },

    async createProjectDek(projectId: number, version: number, tx: Tx): Promise<void> {
      await assertCurrentMk(tx, 'share');
      await keyStore.insert(newWrappedKey(mk, 'dek', dekScope(projectId), version), tx);
    },

    async deleteProjectDeks(projectId: number, tx: Tx): Promise<void> {
      await keyStore.deleteScope('dek', dekScope(projectId), tx);
      for (const k of ciphers.keys()) if (k.startsWith(`${projectId}:`)) ciphers.delete(k);
    },

    /**
     * A project's data key. Cached by (project, version) for the life of
     * the process: a data key never changes (a master-key rotation rewraps
     * it, a project rotation adds a version) and project ids are never
     * reused, so a cached cipher is right on every server.
     */
    async cipher(projectId: number, version: number, tx?: Tx): Promise<SecretCipher> {
      const id = `${projectId}:${version}`;
      const hit = ciphers.get(id);
      if (hit) return hit;
      const c = await openKey(
        'dek',
        dekScope(projectId),
        version,
        `data key v${version} of project ${projectId} is missing`,
        tx,
        secretCipher,
      );
      ciphers.set(id, c);
      return c;
    },

    async tokenHash(token: string, tx?: Tx): Promise<Buffer> {
      if (!hashToken) hashToken = await openKey('token-pepper', 'vault', 1, 'token pepper is missing', tx, tokenHasher);
      return hashToken(token);
    },

    async auditMac(tx?: Tx): Promise<AuditMacFn> {
      if (!mac) mac = await openKey('audit-mac', 'vault', 1, 'audit MAC key is missing', tx, auditMac);
      return mac;
    },

    /**
     * The webhook signer (crypto/webhook-signing.ts). The vault's webhook
     * key is made with the first webhook (`create`, in that transaction);
     * a vault without webhooks has none.
     */
    async webhookSigner(tx?: Tx, create = false): Promise<WebhookSigner> {
      if (signer) return signer;
      if (create && tx && !(await keyStore.get('webhook', 'vault', 1, tx))) {
        await assertCurrentMk(tx, 'share');
        const row = newWrappedKey(mk, 'webhook', 'vault', 1);
        await keyStore.insert(row, tx);
        // Not cached: the transaction may still roll back, and the key with it.
        return webhookSigner(mk, row);
      }
      signer = await openKey('webhook', 'vault', 1, 'the webhook key is missing', tx, webhookSigner);
      return signer;
    },

    /**
     * Rewraps every wrapped key under `newMk` in the caller's transaction.
     * No secret value is touched. `onKey` runs after each row (tests use it
     * to interrupt the rotation part-way). When the vault already uses
     * `newMk` (another server rotated to it), this process adopts it and
     * nothing is rewrapped.
     */
    async rotateMaster(
      newMk: MasterKey,
      tx: Tx,
      onKey?: (done: number, total: number) => void | Promise<void>,
    ): Promise<{ rewrapped: number; from: string; unchanged: boolean }> {
      rotatingTo = newMk;
      const check = await keyStore.checkLocked(tx, 'update');
      if (!check) throw new NotInitializedError('vault is not initialised');
      if (check.mkFingerprint === newMk.fingerprint) {
        await catchUp(check);
        return { rewrapped: 0, from: newMk.fingerprint, unchanged: true };
      }
      if (!(await catchUp(check))) throw changed(check.mkFingerprint);
      rotatingTo = newMk;
      const from = mk.fingerprint;
      const rows = await keyStore.all(tx);
      let done = 0;
      for (const row of rows) {
        const next = rewrapKey(mk, newMk, row);
        await keyStore.updateWrapped(row.id, next.wrapped, next.mkFingerprint, tx);
        done++;
        if (onKey) await onKey(done, rows.length);
      }
      return { rewrapped: done, from, unchanged: false };
    },

    /** Raw token pepper / audit MAC key for a backup body (see exportKeyForBackup). */
    async exportForBackup(purpose: 'token-pepper' | 'audit-mac', tx?: Tx): Promise<string> {
      return openKey(purpose, 'vault', 1, `${purpose} key is missing`, tx, exportKeyForBackup);
    },

    /**
     * A restore into an empty vault: the key-check row, and the token pepper
     * and audit MAC key as a backup carries them (exportForBackup's output),
     * wrapped under this master key, so tokens and the audit chain carry over.
     */
    async importForRestore(backupKeys: Record<'token-pepper' | 'audit-mac', string>, tx: Tx): Promise<void> {
      await keyStore.insert(newWrappedKey(mk, 'check', 'vault', 1), tx);
      for (const purpose of ['token-pepper', 'audit-mac'] as const)
        await keyStore.insert(importKeyFromBackup(mk, purpose, 'vault', 1, backupKeys[purpose]), tx);
    },

    /**
     * Seal: zeroes every master key this process held and every key
     * unwrapped with them (keyring.wipeMasterKey). Any later use throws
     * SealedError.
     */
    drop(): void {
      if (rotatingTo) held.add(rotatingTo);
      for (const k of held) wipeMasterKey(k);
      held.clear();
      ciphers.clear();
      hashToken = null;
      mac = null;
      signer = null;
    },

    /** Called after the rotation transaction committed. */
    adoptMasterKey(newMk: MasterKey): void {
      mk = newMk;
      held.add(newMk);
      if (rotatingTo === newMk) rotatingTo = null;
    },
  };
}
export type KeyService = ReturnType<typeof keyServiceFactory>;
