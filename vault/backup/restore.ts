import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import {
  generateMasterKeyBase64,
  masterKeyFromBase64,
  randomBytes,
  secretAd,
  type MasterKey,
  type SecretCipher,
} from '../crypto/keyring.js';
import { HushError } from '../errors.js';
import { SYSTEM_CONTEXT } from '../services/audit/audit-service.js';
import { canonicalJson } from '../services/audit/canonical.js';
import { backupStoreFactory, type NewToken } from '../store/backup-store.js';
import {
  bulkInsertFactory,
  newAuditBatch,
  newEnvBatch,
  newKeyBatch,
  newProjectBatch,
  newSecretBatch,
  newVersionBatch,
} from '../store/bulk-insert.js';
import { migrate, readSnapshot, transaction, type Db } from '../store/db.js';
import { backfillRevisions } from '../store/history-store.js';
import { buildContainer } from '../container.js';
import { DEV_KEY_FILE, ensureDataDir, resolveMasterKey, writeSecretFile, type OpenedDb } from '../vault.js';
import { type BackupCounts, type BackupHeader } from './dump.js';
import { BodyText } from './body-text.js';
import { BodyCheck, checkHeader, type VerifyReport } from './body-check.js';
import { BackupInvalidError, eachBatch, type Line } from './lines.js';

export { BackupInvalidError, readLineBatches, readLines } from './lines.js';
export { verifyBackup, type VerifyReport } from './body-check.js';
export class RestoreTargetNotEmptyError extends HushError {
  constructor(message: string) {
    super('restore_target_not_empty', 409, message);
  }
}

/** True when the target database already holds (part of) a vault. Reads only. */
export async function targetHasVault(db: Db): Promise<boolean> {
  return backupStoreFactory(db).holdsVault();
}

export interface RestoreResult {
  header: BackupHeader;
  counts: BackupCounts;
  masterKeyFile: string | null;
  masterKeySource: string;
  vaultId: string;
  verified: boolean;
  report: VerifyReport;
}

/** Rows buffered before they are written (bulk-insert.ts: multi-row inserts on SQLite, unnest on PostgreSQL). */
const BATCH = 2000;

/**
 * Restores a backup into an EMPTY vault (refuses otherwise), in one
 * transaction: a failure leaves the target's data as it was. The body is
 * checked while it is written (structure, audit chain, SHA-256 and counts,
 * as `verifyBackup` does) and the transaction commits only after the whole
 * stream ended cleanly, so a damaged, truncated or swapped file commits
 * nothing. Secret values are re-encrypted under new data keys and a new (or
 * supplied) master key; the token pepper and audit MAC key are carried over,
 * so tokens keep working and the audit chain still verifies. Afterwards the
 * restored vault is dumped again and must hash to the backup's body SHA-256.
 *
 * `lines` may come in batches (arrays, readLineBatches): one await per batch.
 */
export async function restoreBackup(
  config: Readonly<Config>,
  opened: OpenedDb,
  lines: AsyncIterable<Line | Line[]>,
  log: FastifyBaseLogger,
): Promise<RestoreResult> {
  const { db } = opened;
  if (await targetHasVault(db))
    throw new RestoreTargetNotEmptyError('the restore target already holds a vault; restore into an empty data dir or database');
  const supplied = await resolveMasterKey(config);
  let generatedKey: string | null = null;
  const mk: MasterKey = supplied ? supplied.key : await masterKeyFromBase64((generatedKey = await generateMasterKeyBase64()), 'generated');

  const batches = eachBatch(lines)[Symbol.asyncIterator]();
  let pending: Line[] = [];
  while (pending.length === 0) {
    const r = await batches.next();
    if (r.done) break;
    pending = r.value;
  }
  const header = checkHeader(pending[0]);
  const check = new BodyCheck(header);
  await migrate(db);
  const c = buildContainer({ db, storage: opened.storage, masterKey: mk, config, log });
  const {
    keys,
    stores: { backup: store, meta },
  } = c;
  const bulk = bulkInsertFactory(db);
  let keyFile: string | null = null;
  let report: VerifyReport | null = null;
  const vaultId = (await randomBytes(16)).toString('hex');
  await transaction(db, async (tx) => {
    const vaultKeys: Partial<Record<'token-pepper' | 'audit-mac', string>> = {};
    let project: { id: number; cipher: SecretCipher } | null = null;
    let envId = 0;
    // Projects, envs and secrets get their ids here (the vault is empty), so a row names its parent without a lookup.
    await bulk.begin(tx);
    let nextProjectId = await bulk.nextId('projects', tx);
    let nextEnvId = await bulk.nextId('envs', tx);
    let nextSecretId = await bulk.nextId('secrets', tx);
    let secretId = 0;
    const projects = newProjectBatch();
    const dekRows = newKeyBatch();
    const envs = newEnvBatch();
    const secrets = newSecretBatch();
    const versions = newVersionBatch();
    const audit = newAuditBatch();
    // Parents before their children (foreign keys).
    const flush = async () => {
      await bulk.projects(projects, tx);
      await bulk.keys(dekRows, tx);
      await bulk.envs(envs, tx);
      await bulk.secrets(secrets, tx);
      await bulk.versions(versions, tx);
    };
    let tokens: NewToken[] = [];
    const parents: [string, string][] = [];
    const flushTokens = async () => {
      if (tokens.length) {
        await store.insertTokens(tokens, tx);
        tokens = [];
      }
    };

    const take = async (l: Line) => {
      const p = check.add(l);
      if (p) await p;
      if (
        l.t !== 'secret' &&
        l.t !== 'version' &&
        l.t !== 'project' &&
        l.t !== 'env' &&
        (projects.length || envs.length || secrets.length || versions.length)
      )
        await flush();
      if (l.t !== 'token') await flushTokens();
      if (l.t !== 'audit' && audit.length) await bulk.audit(audit, tx);
      switch (l.t) {
        case 'key':
          // The check has refused a third or repeated key line: this fires once, when both are in.
          vaultKeys[l.purpose as 'token-pepper' | 'audit-mac'] = l.key;
          if (vaultKeys['token-pepper'] !== undefined && vaultKeys['audit-mac'] !== undefined)
            await keys.importForRestore(vaultKeys as Record<'token-pepper' | 'audit-mac', string>, tx);
          break;
        case 'project': {
          const id = nextProjectId++;
          projects.push(id, l.name, 1, l.createdAt);
          // The data key's row names the project by id only (no foreign key): it goes in with the project's batch.
          project = {
            id,
            cipher: keys.restoreProjectDek(id, (k) => dekRows.push(k.purpose, k.scope, k.version, k.wrapped, k.mkFingerprint, Date.now())),
          };
          break;
        }
        case 'env':
          envId = nextEnvId++;
          envs.push(envId, project!.id, l.name, l.revision, l.createdAt);
          if (envs.length >= BATCH || projects.length >= BATCH) await flush();
          break;
        case 'secret':
          secretId = nextSecretId++;
          secrets.push(secretId, envId, l.name, l.version, l.deleted, l.createdAt, l.updatedAt);
          break;
        case 'version': {
          // The check has made sure this version follows its secret (secretId).
          const enc = l.deleted ? null : project!.cipher.encrypt(l.value, secretAd(project!.id, envId, l.name, l.version));
          versions.push(
            secretId,
            l.version,
            enc?.nonce ?? null,
            enc?.ciphertext ?? null,
            enc ? 1 : null,
            l.deleted,
            l.createdBy,
            l.createdAt,
            l.revision,
          );
          if (versions.length >= BATCH || secrets.length >= BATCH || envs.length >= BATCH) await flush();
          break;
        }
        case 'token':
          // Parents may sort after their children: link them once every row exists.
          tokens.push({
            id: l.id,
            name: l.name,
            description: l.description,
            hash: Buffer.from(l.hash, 'base64'),
            scopes: l.scopes,
            cidrs: l.cidrs,
            createdAt: l.createdAt,
            expiresAt: l.expiresAt,
            revokedAt: l.revokedAt,
            lastUsedAt: l.lastUsedAt,
          });
          if (l.parentId) parents.push([l.id, l.parentId]);
          if (tokens.length >= 200) await flushTokens();
          break;
        case 'jwt_role':
          await store.insertJwtRole(
            {
              name: l.name,
              issuer: l.issuer,
              audience: l.audience,
              scopes: l.scopes,
              ttlMs: l.ttlMs,
              boundClaims: l.boundClaims,
              boundSubject: l.boundSubject,
              requiredClaims: l.requiredClaims,
              jwksUrl: l.jwksUrl,
              jwks: l.jwks,
              publicKey: l.publicKey,
              createdAt: l.createdAt,
              createdBy: l.createdBy,
            },
            tx,
          );
          break;
        case 'secret_policy':
          if (
            !(await store.insertPolicy(
              {
                project: l.project,
                env: l.env,
                name: l.name,
                rotateEveryMs: l.rotateEveryMs,
                expiresAt: l.expiresAt,
                expiresVersion: l.expiresVersion,
                generator: l.generator,
                auto: l.auto,
                remindedDueAt: l.remindedDueAt,
                updatedAt: l.updatedAt,
              },
              tx,
            ))
          )
            throw new BackupInvalidError(
              `backup has a policy for ${String(l.project).slice(0, 63)}/${String(l.env).slice(0, 63)}/` +
                `${String(l.name).slice(0, 256)}, a secret it does not hold`,
            );
          break;
        case 'audit':
          // Stored as the canonical text the MAC covers: what verify reads back and MACs as it is.
          audit.push(
            l.seq,
            l.ts,
            l.actorId,
            l.actorName,
            l.action,
            l.project,
            l.env,
            canonicalJson(l.target),
            l.outcome,
            l.ip,
            l.requestId,
            canonicalJson(l.detail),
            Buffer.from(l.prevHash, 'base64'),
            Buffer.from(l.hash, 'base64'),
            l.stream,
            l.streamSeq,
          );
          if (audit.length >= BATCH) await bulk.audit(audit, tx);
          break;
        case 'audit_head': {
          // Format 1: the single chain becomes stream 0, closed, as the migration to streams does.
          const now = Date.now();
          if (l.seq > 0)
            await store.insertAuditStream(
              {
                id: 0,
                node: 'single chain (before streams)',
                createdAt: now,
                headSeq: l.seq,
                headEvent: l.seq,
                headHash: Buffer.from(l.hash, 'base64'),
                checkpointSeq: 0,
                closedAt: now,
              },
              tx,
            );
          break;
        }
        case 'audit_stream':
          await store.insertAuditStream(
            {
              id: l.id,
              node: l.node,
              createdAt: l.createdAt,
              headSeq: l.headSeq,
              headEvent: l.headEvent,
              headHash: Buffer.from(l.headHash, 'base64'),
              checkpointSeq: l.checkpointSeq,
              closedAt: l.closedAt,
            },
            tx,
          );
          break;
        case 'audit_checkpoint':
          await store.insertAuditCheckpoint(
            { id: l.id, ts: l.ts, heads: l.heads, prevHash: Buffer.from(l.prevHash, 'base64'), hash: Buffer.from(l.hash, 'base64') },
            tx,
          );
          break;
      }
    };
    // Versions and secrets (nearly every line) are taken without an await of their own until a batch is full.
    const fast = (l: Line): boolean => {
      if (l.t !== 'secret' && l.t !== 'version') return false;
      if (check.add(l) !== undefined) return false; // never for these lines
      if (l.t === 'secret') {
        secretId = nextSecretId++;
        secrets.push(secretId, envId, l.name, l.version, l.deleted, l.createdAt, l.updatedAt);
      } else {
        const enc = l.deleted ? null : project!.cipher.encrypt(l.value, secretAd(project!.id, envId, l.name, l.version));
        versions.push(
          secretId,
          l.version,
          enc?.nonce ?? null,
          enc?.ciphertext ?? null,
          enc ? 1 : null,
          l.deleted,
          l.createdBy,
          l.createdAt,
          l.revision,
        );
      }
      return true;
    };
    for (let i = 1; ; i = 0) {
      for (; i < pending.length; i++) {
        const l = pending[i];
        if (!fast(l)) await take(l);
        else if (versions.length >= BATCH || secrets.length >= BATCH || envs.length >= BATCH) await flush();
      }
      const r = await batches.next();
      if (r.done) break;
      pending = r.value;
    }
    await flush();
    // Formats before 4 carry no revisions: rebuilt as the upgrade migration rebuilds them.
    if (header.format < 4) await backfillRevisions(tx);
    await flushTokens();
    await bulk.audit(audit, tx);
    await bulk.finish(tx);
    await store.afterAuditRestore(tx);
    for (const [id, parent] of parents) await store.setTokenParent(id, parent, tx);
    // The stream ended cleanly (OpenPGP integrity and signature checked) and the body matches its header: commit.
    report = check.finish();
    await meta.set('vault_id', vaultId, tx);
    await meta.set('created_at', new Date().toISOString(), tx);
    await meta.set('restored_from', JSON.stringify({ vaultId: header.vaultId, createdAt: header.createdAt }), tx);
    // The key file is written before the commit: a commit without its key would strand the vault.
    if (generatedKey !== null) {
      ensureDataDir(config.dataDir);
      keyFile = join(config.dataDir, DEV_KEY_FILE);
      writeSecretFile(keyFile, generatedKey + '\n', { exclusive: true });
    }
  }).catch((e) => {
    if (keyFile)
      try {
        unlinkSync(keyFile);
      } catch {
        /* not written */
      }
    throw e;
  });

  // Read everything back: the restored vault must dump to the same body.
  // In a read snapshot: on PostgreSQL the data rows come through one cursor, which lives in a transaction.
  const snap = await readSnapshot(db);
  let digest: { sha256: string; counts: BackupCounts };
  try {
    digest = await new BodyText(snap.tx, { keys, store }, header.format).digest();
  } finally {
    await snap.release();
  }
  const { sha256, counts } = digest;
  const verified = sha256 === report!.bodySha256;
  await c.audit.record(SYSTEM_CONTEXT, {
    action: 'backup.restore',
    outcome: verified ? 'ok' : 'error',
    detail: { fromVault: header.vaultId, backupCreatedAt: header.createdAt, counts, verified },
  });
  if (!verified) throw new BackupInvalidError('restored vault does not read back identical to the backup');
  return {
    header,
    counts,
    masterKeyFile: keyFile ?? supplied?.file ?? null,
    masterKeySource: supplied ? supplied.source : 'generated',
    vaultId,
    verified,
    report: report!,
  };
}
