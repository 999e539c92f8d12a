import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import { auditMacFromBackup, importKeyFromBackup, generateMasterKeyBase64, masterKeyFromBase64, newWrappedKey, randomBytes, secretAd, secretCipher, type MasterKey } from '../crypto/keyring.js';
import { HushError } from '../errors.js';
import { GENESIS_HASH, eventMaterial, SYSTEM_CONTEXT } from '../services/audit/audit-service.js';
import { hasSchema, migrate, type Tx } from '../store/db.js';
import { buildContainer } from '../container.js';
import { DEV_KEY_FILE, ensureDataDir, resolveMasterKey, writeSecretFile, type OpenedDb } from '../vault.js';
import { BACKUP_FORMAT, bodyLines, countLine, digestBody, type BackupCounts, type BackupHeader } from './dump.js';
import { join } from 'node:path';
import { unlinkSync } from 'node:fs';

export class BackupInvalidError extends HushError {
  constructor(message: string) { super('backup_corrupt', 400, message); }
}
export class RestoreTargetNotEmptyError extends HushError {
  constructor(message: string) { super('restore_target_not_empty', 409, message); }
}

type Line = Record<string, any>;

/** Parses NDJSON lines from a (decrypted) stream; the first line must be the header. */
export async function* readLines(plain: Readable): AsyncGenerator<Line> {
  const rl = createInterface({ input: plain, crlfDelay: Infinity });
  let n = 0;
  for await (const text of rl) {
    n++;
    if (text === '') continue;
    try {
      yield JSON.parse(text);
    } catch {
      throw new BackupInvalidError(`backup line ${n} is not valid JSON`);
    }
  }
}

export interface VerifyReport { header: BackupHeader; counts: BackupCounts; bodySha256: string; auditChecked: number; ok: true }

function checkHeader(h: Line | undefined): BackupHeader {
  if (!h || h.type !== 'hush-backup') throw new BackupInvalidError('this is not a Hush backup (no header line)');
  if (h.format !== BACKUP_FORMAT) throw new BackupInvalidError(`unsupported backup format ${h.format}; this Hush reads format ${BACKUP_FORMAT}`);
  return h as BackupHeader;
}

/**
 * Reads a whole decrypted backup and checks it: header, body SHA-256, counts
 * and the audit hash chain. Writes nothing. Throws BackupInvalidError naming
 * the first problem.
 */
export async function verifyBackup(lines: AsyncIterable<Line>): Promise<VerifyReport> {
  const it = lines[Symbol.asyncIterator]();
  const first = await it.next();
  const header = checkHeader(first.done ? undefined : first.value);
  const h = createHash('sha256');
  const counts: BackupCounts = { projects: 0, envs: 0, secrets: 0, versions: 0, tokens: 0, audit: 0 };
  let mac: ((prev: Uint8Array, c: string) => Buffer) | null = null;
  let prev: Buffer = GENESIS_HASH;
  let expect = 1;
  let head: Line | null = null;
  for (let r = await it.next(); !r.done; r = await it.next()) {
    const l = r.value;
    h.update(JSON.stringify(l) + '\n');
    countLine(counts, l);
    if (l.t === 'key' && l.purpose === 'audit-mac') mac = await auditMacFromBackup(l.key);
    if (l.t === 'audit') {
      if (!mac) throw new BackupInvalidError('backup has audit events but no audit MAC key');
      if (l.seq !== expect) throw new BackupInvalidError(`audit chain broken at seq ${expect}: event missing or out of order`);
      const { t: _t, prevHash, hash, ...ev } = l;
      const recomputed = mac(prev, eventMaterial(ev as never));
      if (Buffer.from(prevHash, 'base64').compare(prev) !== 0 || Buffer.from(hash, 'base64').compare(recomputed) !== 0) {
        throw new BackupInvalidError(`audit chain broken at seq ${l.seq}: event altered`);
      }
      prev = recomputed;
      expect++;
    }
    if (l.t === 'audit_head') head = l;
  }
  const bodySha256 = h.digest('hex');
  if (bodySha256 !== header.bodySha256) throw new BackupInvalidError('backup body does not match the SHA-256 in its header');
  for (const k of Object.keys(counts) as (keyof BackupCounts)[]) {
    if (counts[k] !== header.counts?.[k]) throw new BackupInvalidError(`backup holds ${counts[k]} ${k}, its header says ${header.counts?.[k]}`);
  }
  if (!head || head.seq !== expect - 1) throw new BackupInvalidError('backup audit head does not match its last event');
  return { header, counts, bodySha256, auditChecked: expect - 1, ok: true };
}

export interface RestoreResult { header: BackupHeader; counts: BackupCounts; masterKeyFile: string | null; vaultId: string; verified: boolean }

/**
 * Restores a verified backup into an EMPTY vault (refuses otherwise), in one
 * transaction: a failure leaves the target as it was. `lines` must be a
 * fresh read of a backup that `verifyBackup` accepted. Secret values are
 * re-encrypted under new data keys and a new (or supplied) master key; the
 * token pepper and audit MAC key are carried over, so tokens keep working and
 * the audit chain still verifies. Afterwards the restored vault is dumped
 * again and must hash to the backup's body SHA-256.
 */
export async function restoreBackup(config: Readonly<Config>, opened: OpenedDb, lines: AsyncIterable<Line>, log: FastifyBaseLogger): Promise<RestoreResult> {
  const { db } = opened;
  if (await hasSchema(db)) {
    const used = (await db('keys').count({ n: '*' }).first())?.n;
    if (Number(used) > 0) throw new RestoreTargetNotEmptyError('the restore target already holds a vault; restore into an empty data dir or database');
  }
  const supplied = await resolveMasterKey(config);
  let generatedKey: string | null = null;
  const mk: MasterKey = supplied ? supplied.key : await masterKeyFromBase64((generatedKey = await generateMasterKeyBase64()), 'generated');

  const it = lines[Symbol.asyncIterator]();
  const first = await it.next();
  const header = checkHeader(first.done ? undefined : first.value);
  await migrate(db);
  let keyFile: string | null = null;
  const vaultId = (await randomBytes(16)).toString('hex');
  await db.transaction(async (tx: Tx) => {
    const now = Date.now();
    await tx('keys').insert(rowOf(newWrappedKey(mk, 'check', 'vault', 1), now));
    const projects = new Map<string, { id: number; cipher: ReturnType<typeof secretCipher> }>();
    const envs = new Map<string, number>();
    const secrets = new Map<string, number>();
    const versions: Record<string, unknown>[] = [];
    const flush = async () => { if (versions.length) { await tx('secret_versions').insert(versions.splice(0)); } };
    let audit: Record<string, unknown>[] = [];
    const parents: [string, string][] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) {
      const l = r.value;
      switch (l.t) {
        case 'key':
          await tx('keys').insert(rowOf(importKeyFromBackup(mk, l.purpose, 'vault', l.version, l.key), now));
          break;
        case 'project': {
          const [row] = await tx('projects').insert({ name: l.name, dek_version: 1, created_at: l.createdAt }).returning('id');
          const id = typeof row === 'object' ? row.id : row;
          const dek = newWrappedKey(mk, 'dek', `project:${id}`, 1);
          await tx('keys').insert(rowOf(dek, now));
          projects.set(l.name, { id, cipher: secretCipher(mk, dek) });
          break;
        }
        case 'env': {
          const [row] = await tx('environments').insert({ project_id: projects.get(l.project)!.id, name: l.name, revision: l.revision, created_at: l.createdAt }).returning('id');
          envs.set(`${l.project}/${l.name}`, typeof row === 'object' ? row.id : row);
          break;
        }
        case 'secret': {
          await flush();
          const [row] = await tx('secrets').insert({ env_id: envs.get(`${l.project}/${l.env}`)!, name: l.name, version: l.version, deleted: l.deleted, created_at: l.createdAt, updated_at: l.updatedAt }).returning('id');
          secrets.set(`${l.project}/${l.env}/${l.name}`, typeof row === 'object' ? row.id : row);
          break;
        }
        case 'version': {
          const p = projects.get(l.project)!;
          const envId = envs.get(`${l.project}/${l.env}`)!;
          const enc = l.deleted ? null : p.cipher.encrypt(l.value, secretAd(p.id, envId, l.name, l.version));
          versions.push({ secret_id: secrets.get(`${l.project}/${l.env}/${l.name}`)!, version: l.version, nonce: enc?.nonce ?? null, ciphertext: enc?.ciphertext ?? null, dek_version: enc ? 1 : null, deleted: l.deleted, created_by: l.createdBy, created_at: l.createdAt });
          if (versions.length >= 200) await flush();
          break;
        }
        case 'token':
          await flush();
          // Parents may sort after children: link them once all rows exist.
          await tx('tokens').insert({ id: l.id, name: l.name, description: l.description, hash: Buffer.from(l.hash, 'base64'), scopes: JSON.stringify(l.scopes), parent_id: null, cidrs: JSON.stringify(l.cidrs), created_at: l.createdAt, expires_at: l.expiresAt, revoked_at: l.revokedAt, last_used_at: l.lastUsedAt });
          if (l.parentId) parents.push([l.id, l.parentId]);
          break;
        case 'audit':
          for (const [id, parent] of parents.splice(0)) await tx('tokens').where({ id }).update({ parent_id: parent });
          audit.push({ seq: l.seq, ts: l.ts, actor_id: l.actorId, actor_name: l.actorName, action: l.action, project: l.project, env: l.env, target: JSON.stringify(l.target), outcome: l.outcome, ip: l.ip, request_id: l.requestId, detail: JSON.stringify(l.detail), prev_hash: Buffer.from(l.prevHash, 'base64'), hash: Buffer.from(l.hash, 'base64') });
          if (audit.length >= 200) { await tx('audit_events').insert(audit); audit = []; }
          break;
        case 'audit_head':
          await flush();
          if (audit.length) { await tx('audit_events').insert(audit); audit = []; }
          await tx('audit_head').insert({ id: 1, seq: l.seq, hash: Buffer.from(l.hash, 'base64') });
          break;
        default:
          throw new BackupInvalidError(`unknown backup line type ${String(l.t).slice(0, 20)}`);
      }
    }
    await flush();
    for (const [id, parent] of parents.splice(0)) await tx('tokens').where({ id }).update({ parent_id: parent });
    await tx('meta').insert([{ key: 'vault_id', value: vaultId }, { key: 'created_at', value: new Date().toISOString() }, { key: 'restored_from', value: JSON.stringify({ vaultId: header.vaultId, createdAt: header.createdAt }) }]);
    // The key file is written before the commit: a commit without its key would strand the vault.
    if (generatedKey !== null) {
      ensureDataDir(config.dataDir);
      keyFile = join(config.dataDir, DEV_KEY_FILE);
      writeSecretFile(keyFile, generatedKey + '\n', { exclusive: true });
    }
  }).catch((e) => {
    if (keyFile) try { unlinkSync(keyFile); } catch { /* not written */ }
    throw e;
  });

  // Read everything back: the restored vault must dump to the same body.
  const c = buildContainer({ db, storage: opened.storage, masterKey: mk, config, log });
  const { sha256, counts } = await digestBody(bodyLines(db, { keys: c.keys }));
  const verified = sha256 === header.bodySha256;
  await c.audit.record(SYSTEM_CONTEXT, { action: 'backup.restore', outcome: verified ? 'ok' : 'error', detail: { fromVault: header.vaultId, backupCreatedAt: header.createdAt, counts, verified } });
  if (!verified) throw new BackupInvalidError('restored vault does not read back identical to the backup');
  return { header, counts, masterKeyFile: keyFile ?? supplied?.file ?? null, vaultId, verified };
}

function rowOf(k: { purpose: string; scope: string; version: number; wrapped: Buffer; mkFingerprint: string }, now: number) {
  return { purpose: k.purpose, scope: k.scope, version: k.version, wrapped: k.wrapped, mk_fingerprint: k.mkFingerprint, created_at: now };
}
