import { secretAd, type MasterKey } from '../../crypto/keyring.js';
import { InvalidRequestError, ProjectNotFoundError } from '../../errors.js';
import { generateMasterKey } from '../../crypto/seal.js';
import type { Db, Tx } from '../../store/db.js';
import type { ProjectStore } from '../../store/project-store.js';
import type { SecretStore } from '../../store/secret-store.js';
import type { AuditContext, AuditService } from '../audit/audit-service.js';
import type { KeyService } from './key-service.js';

export interface RotationServiceDeps {
  db: Db;
  keys: KeyService;
  projectStore: ProjectStore;
  secretStore: SecretStore;
  audit: Pick<AuditService, 'run'>;
  /** A sealed vault (shamir, passphrase): the new master key is wrapped under the unseal key in the same transaction. */
  seal?: { rewrap(newMk: MasterKey, tx: Tx): Promise<void> } | null;
}

export function rotationServiceFactory({ keys, projectStore, secretStore, audit, seal }: RotationServiceDeps) {
  return {
    /**
     * Rewraps every wrapped key (DEKs, token pepper, audit MAC key, key
     * check) under `newMk` in ONE transaction: an interruption leaves the
     * vault wholly on the old key. No secret value is re-encrypted.
     */
    async rotateMaster(newMk: MasterKey, ctx: AuditContext, onKey?: (done: number, total: number) => void | Promise<void>) {
      if (newMk.fingerprint === keys.fingerprint) return { rewrapped: 0, from: keys.fingerprint, to: keys.fingerprint, unchanged: true };
      const r = await audit.run(ctx, async (tx, record) => {
        const r = await keys.rotateMaster(newMk, tx, onKey);
        if (!r.unchanged && seal) await seal.rewrap(newMk, tx);
        // Already the vault's key (another server rotated to it): this server only caught up.
        if (!r.unchanged)
          await record({
            action: 'key.rotate_master',
            outcome: 'ok',
            detail: { from: r.from, to: newMk.fingerprint, rewrapped: r.rewrapped },
          });
        return r;
      });
      keys.adoptMasterKey(newMk);
      return { rewrapped: r.rewrapped, from: r.from, to: newMk.fingerprint, unchanged: r.unchanged };
    },

    /**
     * A sealed vault (shares, passphrase): a new master key made here, in
     * memory, wrapped under the unseal key and never written in the clear.
     * A file-sealed vault has no such place to keep it: its servers read the
     * key from their key file, so the caller must supply it.
     */
    async rotateMasterGenerated(ctx: AuditContext) {
      if (!seal)
        throw new InvalidRequestError(
          "this vault's master key comes from a key file or HUSH_MASTER_KEY: give the new key (newKey), which every server must then find in its key file",
        );
      const newMk = await generateMasterKey();
      return this.rotateMaster(newMk, ctx);
    },

    /**
     * New data-key version for a project; new writes use it at once. With
     * `rewrap`, older values are re-encrypted under it in batches (each batch
     * one transaction; every row is readable at every moment).
     */
    async rotateProject(name: string, rewrap: boolean, ctx: AuditContext) {
      const { project, version } = await audit.run(ctx, async (tx, record) => {
        const p = await projectStore.getProject(name, tx);
        if (!p) throw new ProjectNotFoundError(`project ${name} not found`);
        const v = p.dekVersion + 1;
        await keys.createProjectDek(p.id, v, tx);
        await projectStore.setDekVersion(p.id, v, tx);
        await record({ action: 'key.rotate', outcome: 'ok', project: name, detail: { dekVersion: v } });
        return { project: p, version: v };
      });
      let rewrapped = 0;
      if (rewrap) {
        for (;;) {
          const n = await audit.run(ctx, async (tx, record) => {
            const rows = await secretStore.versionsBelowDek(project.id, version, 500, tx);
            const next = await keys.cipher(project.id, version, tx);
            for (const r of rows) {
              const old = await keys.cipher(project.id, r.dekVersion, tx);
              const ad = secretAd(project.id, r.envId, r.name, r.version);
              const value = old.decrypt(r.nonce, r.ciphertext, ad, `${name} secret ${r.name} v${r.version}`);
              await secretStore.replaceCiphertext(r.id, { ...next.encrypt(value, ad), dekVersion: version }, tx);
            }
            if (rows.length)
              await record({ action: 'key.rewrap', outcome: 'ok', project: name, detail: { dekVersion: version, rows: rows.length } });
            return rows.length;
          });
          rewrapped += n;
          if (n < 500) break;
        }
      }
      return { project: name, dekVersion: version, rewrapped };
    },
  };
}
export type RotationService = ReturnType<typeof rotationServiceFactory>;
