import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './config.js';
import { buildContainer } from './container.js';
import type { MasterKey } from './crypto/keyring.js';
import {
  openWithPassphrase,
  openWithShares,
  parseShare,
  sealWithPassphrase,
  sealWithShares,
  type SealRecord,
  type UnsealKey,
} from './crypto/seal.js';
import { ConfigError, InvalidShareError, MasterKeyChangedError, NotInitializedError } from './errors.js';
import type { AuditContext } from './services/audit/audit-service.js';
import { readSealRecord, writeSealRecord } from './services/seal/seal-service.js';
import { isInitialised, openConfiguredDb, resolveMasterKey } from './vault.js';
import { metaStoreFactory } from './store/key-store.js';

/** The operator at this machine: rekey runs on the database, not through a server. */
const OPERATOR_CONTEXT: AuditContext = { actorId: 'operator', actorName: 'operator (hush operator rekey)', ip: null, requestId: null };

export type RekeyPlan =
  | { type: 'shamir'; shares: number; threshold: number; recipients: { fingerprint: string }[] }
  | { type: 'passphrase'; passphrase: string }
  | { type: 'file' };

export interface RekeyInput {
  /** `threshold` current shares (texts); `given` is how many were accepted already. */
  shares(threshold: number, given: number): Promise<string[]>;
  passphrase(): Promise<string>;
  /** The new seal, decided once the current one is known (defaults follow it). */
  plan(current: { type: string; shares: number; threshold: number } | null): Promise<RekeyPlan>;
}

export interface RekeyResult {
  type: 'shamir' | 'passphrase';
  from: 'file' | 'shamir' | 'passphrase';
  shares: string[] | null;
  threshold: number;
  recipients: { fingerprint: string }[];
  removedKeyFile: string | null;
}

/**
 * Moves the vault to a new unseal key: new shares (count and threshold may
 * change) or a new passphrase, after opening it with a quorum of the
 * current shares, the current passphrase, or (a vault sealed by a file
 * until now) its master key. The master key stays the same, so no data and
 * no wrapped key is touched: only the seal record changes, in one
 * transaction with its audit event. Shares of the old set are refused from
 * then on. Runs on the database, like `operator init`.
 */
export async function rekeyVault(config: Readonly<Config>, log: FastifyBaseLogger, input: RekeyInput): Promise<RekeyResult> {
  // Opening a SQLite path creates the file: look first, so a mistyped --data-dir is not left with an empty database.
  if (!config.databaseUrl && !existsSync(join(config.dataDir, 'hush.db')))
    throw new NotInitializedError(`there is no vault in ${config.dataDir} (no hush.db): check --data-dir`);
  const opened = openConfiguredDb(config);
  const keysToWipe: UnsealKey[] = [];
  let mk: MasterKey | null = null;
  try {
    if (!(await isInitialised(opened.db))) throw new NotInitializedError('there is no vault here to rekey: run hush operator init');
    const meta = metaStoreFactory(opened.db);
    const current = await readSealRecord(meta);
    let removable: string | null = null;
    if (!current) {
      const resolved = await resolveMasterKey(config);
      if (!resolved)
        throw new ConfigError(
          'no master key: this vault is sealed by a key file; give --master-key-file (or run where its data dir holds master.key)',
        );
      mk = resolved.key;
      if (resolved.source === 'data-dir') removable = resolved.file;
    } else if (current.type === 'shamir') {
      const texts = await input.shares(current.threshold, 0);
      const parsed: { index: number; bytes: Uint8Array }[] = [];
      for (const t of texts) {
        const p = await parseShare(t, current);
        if (parsed.some((q) => q.index === p.index)) throw new InvalidShareError('the same share was given twice');
        parsed.push(p);
      }
      if (parsed.length < current.threshold)
        throw new InvalidShareError(`${parsed.length} share(s) given; this vault needs ${current.threshold}`);
      const opened2 = await openWithShares(
        current,
        parsed.map((p) => p.bytes),
      );
      for (const p of parsed) p.bytes.fill(0);
      mk = opened2.mk;
      keysToWipe.push(opened2.key);
    } else {
      const opened2 = await openWithPassphrase(current, await input.passphrase());
      mk = opened2.mk;
      keysToWipe.push(opened2.key);
    }
    const c = buildContainer({ db: opened.db, storage: opened.storage, masterKey: mk, config, log });
    await c.keys.verify();
    const plan = await input.plan(current ? { type: current.type, shares: current.shares, threshold: current.threshold } : null);
    if (plan.type === 'file') throw new ConfigError('rekey makes shares or a passphrase: give --seal shamir or --seal passphrase');
    let next: SealRecord;
    let shares: string[] | null = null;
    if (plan.type === 'shamir') {
      const made = await sealWithShares(mk, plan.shares, plan.threshold);
      next = made.record;
      shares = made.shareTexts;
      keysToWipe.push(made.key);
    } else {
      const made = await sealWithPassphrase(mk, plan.passphrase);
      next = made.record;
      keysToWipe.push(made.key);
    }
    await c.audit.run(OPERATOR_CONTEXT, async (tx, record) => {
      // The same lock as a master-key rotation: a rotation and a rekey never interleave.
      const check = await c.stores.keys.checkLocked(tx, 'update');
      if (!check || check.mkFingerprint !== mk!.fingerprint)
        throw new MasterKeyChangedError('the master key was rotated while this rekey ran; run it again');
      const now = await readSealRecord(meta, tx);
      if ((now?.setId ?? null) !== (current?.setId ?? null))
        throw new MasterKeyChangedError('another rekey changed the seal while this one ran; nothing was changed');
      await writeSealRecord(meta, next, tx);
      await record({
        action: 'vault.rekey',
        outcome: 'ok',
        detail: { from: current?.type ?? 'file', to: next.type, shares: next.shares, threshold: next.threshold },
      });
    });
    await c.audit.close();
    c.keys.drop();
    let removedKeyFile: string | null = null;
    if (removable) {
      // The dev key file beside the database is what a sealed vault exists to avoid: overwrite, then remove.
      try {
        const size = readFileSync(removable).length;
        writeFileSync(removable, Buffer.alloc(size));
        unlinkSync(removable);
        removedKeyFile = removable;
      } catch (e) {
        log.warn({ err: { message: (e as Error).message } }, 'could not remove the old master.key');
      }
    }
    return {
      type: next.type,
      from: current?.type ?? 'file',
      shares,
      threshold: next.threshold,
      recipients: plan.type === 'shamir' ? plan.recipients : [],
      removedKeyFile,
    };
  } finally {
    for (const k of keysToWipe) k.wipe();
    await opened.db.destroy();
  }
}
