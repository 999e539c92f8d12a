import {
  auditMac, exportKeyForBackup, importKeyFromBackup, newWrappedKey, rewrapKey, secretCipher, tokenHasher, verifyKeyCheck,
  type MasterKey, type SecretCipher,
} from '../../crypto/keyring.js';
import { MasterKeyChangedError, NotInitializedError } from '../../errors.js';
import type { Tx } from '../../store/db.js';
import type { KeyStore } from '../../store/key-store.js';

export interface KeyServiceDeps { keyStore: KeyStore; masterKey: MasterKey }

/**
 * Owns the master key for this process and the unwrapped-key caches.
 * Everything else asks it for a cipher, a hasher or a MAC function.
 */
export function keyServiceFactory({ keyStore, masterKey }: KeyServiceDeps) {
  let mk = masterKey;
  const ciphers = new Map<string, SecretCipher>();
  let hashToken: ((t: string) => Buffer) | null = null;
  let mac: ((prev: Uint8Array, c: string) => Buffer) | null = null;

  const dekScope = (projectId: number) => `project:${projectId}`;

  /** Wrapping a new key under a master key another process has rotated away would strand it. */
  async function assertCurrentMk(tx: Tx): Promise<void> {
    const check = await keyStore.get('check', 'vault', 1, tx);
    if (!check) throw new NotInitializedError('vault is not initialised');
    if (check.mkFingerprint !== mk.fingerprint) {
      throw new MasterKeyChangedError('the master key was rotated by another process; restart this server with the new master key');
    }
  }

  return {
    get fingerprint() { return mk.fingerprint; },

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

    async createProjectDek(projectId: number, version: number, tx: Tx): Promise<void> {
      await assertCurrentMk(tx);
      await keyStore.insert(newWrappedKey(mk, 'dek', dekScope(projectId), version), tx);
    },

    async deleteProjectDeks(projectId: number, tx: Tx): Promise<void> {
      await keyStore.deleteScope('dek', dekScope(projectId), tx);
      for (const k of ciphers.keys()) if (k.startsWith(`${projectId}:`)) ciphers.delete(k);
    },

    async cipher(projectId: number, version: number, tx?: Tx): Promise<SecretCipher> {
      const id = `${projectId}:${version}`;
      const hit = ciphers.get(id);
      if (hit) return hit;
      const row = await keyStore.get('dek', dekScope(projectId), version, tx);
      if (!row) throw new NotInitializedError(`data key v${version} of project ${projectId} is missing`);
      const c = secretCipher(mk, row);
      ciphers.set(id, c);
      return c;
    },

    async tokenHash(token: string, tx?: Tx): Promise<Buffer> {
      if (!hashToken) {
        const row = await keyStore.get('token-pepper', 'vault', 1, tx);
        if (!row) throw new NotInitializedError('token pepper is missing');
        hashToken = tokenHasher(mk, row);
      }
      return hashToken(token);
    },

    async auditMac(tx?: Tx): Promise<(prev: Uint8Array, canonical: string) => Buffer> {
      if (!mac) {
        const row = await keyStore.get('audit-mac', 'vault', 1, tx);
        if (!row) throw new NotInitializedError('audit MAC key is missing');
        mac = auditMac(mk, row);
      }
      return mac;
    },

    /**
     * Rewraps every wrapped key under `newMk` in the caller's transaction.
     * No secret value is touched. `onKey` runs after each row (tests use it
     * to interrupt the rotation part-way).
     */
    async rotateMaster(newMk: MasterKey, tx: Tx, onKey?: (done: number, total: number) => void | Promise<void>): Promise<{ rewrapped: number }> {
      await assertCurrentMk(tx);
      const rows = await keyStore.all(tx);
      let done = 0;
      for (const row of rows) {
        const next = rewrapKey(mk, newMk, row);
        await keyStore.updateWrapped(row.id, next.wrapped, next.mkFingerprint, tx);
        done++;
        if (onKey) await onKey(done, rows.length);
      }
      return { rewrapped: done };
    },

    /** Raw token pepper / audit MAC key for a backup body (see exportKeyForBackup). */
    async exportForBackup(purpose: 'token-pepper' | 'audit-mac', tx?: Tx): Promise<string> {
      const row = await keyStore.get(purpose, 'vault', 1, tx);
      if (!row) throw new NotInitializedError(`${purpose} key is missing`);
      return exportKeyForBackup(mk, row);
    },

    /**
     * A restore into an empty vault: the key-check row, and the token pepper
     * and audit MAC key as a backup carries them (exportForBackup's output),
     * wrapped under this master key, so tokens and the audit chain carry over.
     */
    async importForRestore(backupKeys: Record<'token-pepper' | 'audit-mac', string>, tx: Tx): Promise<void> {
      await keyStore.insert(newWrappedKey(mk, 'check', 'vault', 1), tx);
      for (const purpose of ['token-pepper', 'audit-mac'] as const) await keyStore.insert(importKeyFromBackup(mk, purpose, 'vault', 1, backupKeys[purpose]), tx);
    },

    /** Called after the rotation transaction committed. */
    adoptMasterKey(newMk: MasterKey): void {
      mk = newMk;
    },
  };
}
export type KeyService = ReturnType<typeof keyServiceFactory>;
