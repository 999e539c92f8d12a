import { createHash, type Hash } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import {
  auditMacFromBackup,
  generateMasterKeyBase64,
  masterKeyFromBase64,
  randomBytes,
  secretAd,
  type MasterKey,
  type SecretCipher,
} from '../crypto/keyring.js';
import { HushError } from '../errors.js';
import { GENESIS_HASH, checkpointMaterial, eventMaterial, SYSTEM_CONTEXT } from '../services/audit/audit-service.js';
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
import { READABLE_FORMATS, countLine, type BackupCounts, type BackupHeader } from './dump.js';
import { BodyText } from './body-text.js';
import { BackupInvalidError, eachBatch, RAW, type Line } from './lines.js';

export { BackupInvalidError, readLineBatches, readLines } from './lines.js';
export class RestoreTargetNotEmptyError extends HushError {
  constructor(message: string) {
    super('restore_target_not_empty', 409, message);
  }
}

export interface VerifyReport {
  header: BackupHeader;
  counts: BackupCounts;
  bodySha256: string;
  auditChecked: number;
  ok: true;
}

function checkHeader(h: Line | undefined): BackupHeader {
  if (!h || h.type !== 'hush-backup') throw new BackupInvalidError('this is not a Hush backup (no header line)');
  if (!READABLE_FORMATS.includes(h.format as number))
    throw new BackupInvalidError(
      `unsupported backup format` +
        (` ${String(h.format).slice(0, 20)};` + ` this Hush reads formats`) +
        (` ${READABLE_FORMATS.slice(0, -1).join(', ')} and` + ` ${READABLE_FORMATS[READABLE_FORMATS.length - 1]}`),
    );
  if (typeof h.counts !== 'object' || h.counts === null) throw new BackupInvalidError('backup header has no counts');
  // Format 5 carries the body hash in its last line, formats 1 to 4 in the header.
  if (h.format >= 5 ? h.bodySha256 !== undefined : typeof h.bodySha256 !== 'string')
    throw new BackupInvalidError(
      h.format >= 5 ? 'a format 5 header has no body hash (it is the last line)' : 'backup header has no body hash',
    );
  return h as BackupHeader;
}

/** Field kinds: s string, n integer, b boolean, a array, o object; a trailing ? allows null. */
const SHAPES: Record<string, Record<string, string>> = {
  key: { purpose: 's', version: 'n', key: 's' },
  project: { name: 's', createdAt: 'n' },
  env: { project: 's', name: 's', revision: 'n', createdAt: 'n' },
  secret: { project: 's', env: 's', name: 's', version: 'n', deleted: 'b', createdAt: 'n', updatedAt: 'n' },
  // revision: format 4 on (older formats: null here, rebuilt after the restore).
  version: { project: 's', env: 's', name: 's', version: 'n', deleted: 'b', value: 's?', createdBy: 's', createdAt: 'n', revision: 'n?' },
  token: {
    id: 's',
    name: 's',
    description: 's',
    hash: 's',
    scopes: 'a',
    parentId: 's?',
    cidrs: 'a',
    createdAt: 'n',
    expiresAt: 'n?',
    revokedAt: 'n?',
    lastUsedAt: 'n?',
  },
  audit: {
    seq: 'n',
    ts: 'n',
    actorId: 's',
    actorName: 's',
    action: 's',
    project: 's?',
    env: 's?',
    target: 'o',
    outcome: 's',
    ip: 's?',
    requestId: 's?',
    detail: 'o',
    prevHash: 's',
    hash: 's',
    stream: 'n',
    streamSeq: 'n',
  },
  // Format 1 (before streams): the single chain's head.
  audit_head: { seq: 'n', hash: 's' },
  audit_stream: { id: 'n', node: 's', createdAt: 'n', headSeq: 'n', headEvent: 'n', headHash: 's', checkpointSeq: 'n', closedAt: 'n?' },
  audit_checkpoint: { id: 'n', ts: 'n', heads: 's', prevHash: 's', hash: 's' },
  // Format 4: secret lifecycle policies.
  secret_policy: {
    project: 's',
    env: 's',
    name: 's',
    rotateEveryMs: 'n?',
    expiresAt: 'n?',
    expiresVersion: 'n?',
    generator: 's?',
    auto: 'b',
    remindedDueAt: 'n?',
    updatedAt: 'n',
  },
  // Format 5: the last line, the body's SHA-256.
  end: { bodySha256: 's' },
  // Format 3: JWT auth roles.
  jwt_role: {
    name: 's',
    issuer: 's',
    audience: 's',
    scopes: 'a',
    ttlMs: 'n',
    boundClaims: 'o',
    boundSubject: 's?',
    requiredClaims: 'a',
    jwksUrl: 's?',
    jwks: 's?',
    publicKey: 's?',
    createdAt: 'n',
    createdBy: 's',
  },
};
/** Lines a format does not have. */
const NOT_IN_FORMAT: Record<number, string[]> = {
  1: ['audit_stream', 'audit_checkpoint', 'jwt_role', 'secret_policy', 'end'],
  2: ['audit_head', 'jwt_role', 'secret_policy', 'end'],
  3: ['audit_head', 'secret_policy', 'end'],
  4: ['audit_head', 'end'],
  5: ['audit_head'],
};

/** Each line type's fields as [name, kind, nullable], parsed once. */
const FIELDS: Record<string, [string, string, boolean][]> = Object.fromEntries(
  Object.entries(SHAPES).map(([t, shape]) => [t, Object.entries(shape).map(([f, k]) => [f, k.replace('?', ''), k.endsWith('?')])]),
);

function kindOk(v: unknown, k: string, nullable: boolean): boolean {
  if (nullable && v === null) return true;
  switch (k) {
    case 's':
      return typeof v === 'string';
    case 'n':
      return Number.isSafeInteger(v);
    case 'b':
      return typeof v === 'boolean';
    case 'a':
      return Array.isArray(v);
    case 'o':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    default:
      return false;
  }
}

const BACKUP_KEYS = ['token-pepper', 'audit-mac'];
const PHASE: Record<string, number> = {
  key: 0,
  project: 1,
  env: 1,
  secret: 1,
  version: 1,
  token: 2,
  jwt_role: 2,
  secret_policy: 2,
  audit: 3,
  audit_head: 4,
  audit_stream: 4,
  audit_checkpoint: 5,
  end: 6,
};

/**
 * Byte-wise (UTF-8) order, as the dump sorts names on both engines. UTF-16
 * order is the same unless a surrogate or a character above it is involved.
 */
const WIDE = /[\ud800-\uffff]/;
const after = (a: string, b: string): boolean =>
  WIDE.test(a) || WIDE.test(b) ? Buffer.compare(Buffer.from(a), Buffer.from(b)) > 0 : a > b;

/**
 * Checks a backup body line by line in O(1) memory (plus the token ids):
 * structure (every line has its fields, and envs, secrets and versions
 * follow the project, env and secret they belong to), the audit hash chain,
 * and, at `finish`, the body SHA-256 and the counts against the header.
 * Used by both verify and restore, so a restore checks what it writes.
 */
class BodyCheck {
  private readonly h: Hash = createHash('sha256');
  readonly counts: BackupCounts = { projects: 0, envs: 0, secrets: 0, versions: 0, tokens: 0, audit: 0 };
  private mac: ((prev: Uint8Array, c: string) => Buffer) | null = null;
  /** Each stream's chain so far: the next place in it, the hash to link to, the seq of its last event. */
  private streams = new Map<number, { next: number; prev: Buffer; lastSeq: number }>();
  private lastSeq = 0;
  private events = 0;
  private head: Line | null = null;
  private registered = new Set<number>();
  private lastStream = -1;
  private checkpointPrev: Buffer = GENESIS_HASH;
  private checkpoints = 0;
  private keys = new Set<string>();
  private project: string | null = null;
  private env: string | null = null;
  private secret: string | null = null;
  private phase = 0;
  private tokenIds = new Set<string>();
  private parents: string[] = [];
  private n = 1;
  /** Format 5: the body's hash once the end line is in (the end line itself is not hashed), and the hash that line states. */
  private bodyHash: string | null = null;
  private endHash: string | null = null;

  constructor(readonly header: BackupHeader) {}

  private bad(msg: string): never {
    throw new BackupInvalidError(`backup line ${this.n}: ${msg}`);
  }

  /** Checks one line; a promise only for the audit MAC key's line (await it then). */
  add(l: Line): Promise<void> | void {
    this.n++;
    if (this.bodyHash !== null) this.bad('a line after the end line');
    if (l.t === 'end' && this.header.format >= 5) {
      for (const [f, k, nullable] of FIELDS.end) if (!kindOk(l[f], k, nullable)) this.bad(`end line has a missing or malformed ${f}`);
      this.bodyHash = this.h.digest('hex');
      this.endHash = l.bodySha256;
      return;
    }
    // The bytes as read when there are any (readLines), else the line as a dump writes it.
    const raw: Buffer | undefined = l[RAW];
    if (raw) {
      this.h.update(raw); // with its newline (lines.ts)
      // An audit line is exactly as a dump writes it: text that parses to the MACed
      // value but reads otherwise (a repeated key, another spelling of a number) is refused.
      if (l.t === 'audit' && !raw.equals(Buffer.from(JSON.stringify(l) + '\n')))
        this.bad('audit event is not in the form a dump writes (altered text)');
    } else this.h.update(JSON.stringify(l) + '\n');
    // Format 1 events belong to the single chain: stream 0, their place in it is their seq.
    if (this.header.format === 1 && l.t === 'audit' && l.stream === undefined && l.streamSeq === undefined) {
      l.stream = 0;
      l.streamSeq = l.seq;
    }
    if (l.t === 'version') {
      if (this.header.format < 4) {
        if (l.revision !== undefined) this.bad(`a format ${this.header.format} backup has no version revisions`);
        l.revision = null;
      } else if (l.revision === null) this.bad('version line has a missing or malformed revision');
    }
    if (NOT_IN_FORMAT[this.header.format]?.includes(l.t)) this.bad(`a format ${this.header.format} backup has no ${l.t} lines`);
    const fields = Object.hasOwn(FIELDS, l.t) ? FIELDS[l.t] : undefined;
    if (!fields) this.bad(`unknown line type ${JSON.stringify(String(l.t).slice(0, 20))}`);
    for (const [f, k, nullable] of fields) if (!kindOk(l[f], k, nullable)) this.bad(`${l.t} line has a missing or malformed ${f}`);
    // Sections come in a fixed order: keys, data, tokens, audit events, audit head (once).
    const phase = PHASE[l.t];
    if (phase < this.phase || (phase === this.phase && l.t === 'audit_head')) this.bad(`${l.t} line out of place`);
    this.phase = phase;
    countLine(this.counts, l);
    switch (l.t) {
      case 'key':
        if (!BACKUP_KEYS.includes(l.purpose) || l.version !== 1 || this.keys.has(l.purpose))
          this.bad(`unexpected key line (${String(l.purpose).slice(0, 20)})`);
        if (Buffer.from(l.key, 'base64').length !== 32) this.bad(`malformed ${l.purpose} key`);
        this.keys.add(l.purpose);
        if (l.purpose === 'audit-mac')
          return auditMacFromBackup(l.key).then((mac) => {
            this.mac = mac;
          });
        break;
      case 'project':
        if (this.keys.size !== BACKUP_KEYS.length) this.bad('project before the vault keys');
        if (this.project !== null && !after(l.name, this.project)) this.bad('projects out of order');
        this.project = l.name;
        this.env = null;
        this.secret = null;
        break;
      case 'env':
        if (l.project !== this.project || (this.env !== null && !after(l.name, this.env))) this.bad('environment out of place');
        this.env = l.name;
        this.secret = null;
        break;
      case 'secret':
        if (l.project !== this.project || l.env !== this.env || (this.secret !== null && !after(l.name, this.secret)))
          this.bad('secret out of place');
        this.secret = l.name;
        break;
      case 'version':
        if (l.project !== this.project || l.env !== this.env || l.name !== this.secret) this.bad('version does not follow its secret');
        if (l.deleted !== (l.value === null)) this.bad('version value does not match its deleted flag');
        break;
      case 'token':
        if (this.tokenIds.has(l.id)) this.bad('token listed twice');
        this.tokenIds.add(l.id);
        if (l.parentId !== null) this.parents.push(l.parentId);
        break;
      case 'audit': {
        if (!this.mac) this.bad('audit events but no audit MAC key');
        const st = this.streams.get(l.stream) ?? { next: 1, prev: GENESIS_HASH, lastSeq: 0 };
        if (l.seq <= this.lastSeq || l.streamSeq !== st.next)
          throw new BackupInvalidError(`audit chain broken at seq ${l.seq}: event missing or out of order`);
        const { t: _t, prevHash, hash, ...ev } = l;
        const recomputed = this.mac(st.prev, eventMaterial(ev as never));
        if (Buffer.from(prevHash, 'base64').compare(st.prev) !== 0 || Buffer.from(hash, 'base64').compare(recomputed) !== 0) {
          throw new BackupInvalidError(`audit chain broken at seq ${l.seq}: event altered`);
        }
        this.streams.set(l.stream, { next: st.next + 1, prev: recomputed, lastSeq: l.seq });
        this.lastSeq = l.seq;
        this.events++;
        break;
      }
      case 'audit_head': {
        if (this.head) this.bad('audit_head line out of place');
        this.head = l;
        const st = this.streams.get(0) ?? { next: 1, prev: GENESIS_HASH, lastSeq: 0 };
        if (
          l.seq !== st.next - 1 ||
          Buffer.from(l.hash, 'base64').compare(st.prev) !== 0 ||
          this.streams.size > (this.streams.has(0) ? 1 : 0)
        ) {
          throw new BackupInvalidError('backup audit head does not match its last event');
        }
        break;
      }
      case 'audit_stream': {
        if (l.id <= this.lastStream) this.bad('audit streams out of order');
        this.lastStream = l.id;
        this.registered.add(l.id);
        const st = this.streams.get(l.id) ?? { next: 1, prev: GENESIS_HASH, lastSeq: 0 };
        if (l.headSeq !== st.next - 1 || l.headEvent !== st.lastSeq || Buffer.from(l.headHash, 'base64').compare(st.prev) !== 0) {
          throw new BackupInvalidError(`backup audit stream ${l.id}: its head does not match its last event`);
        }
        break;
      }
      case 'audit_checkpoint': {
        if (!this.mac) this.bad('audit checkpoints but no audit MAC key');
        if (l.id !== this.checkpoints + 1 || Buffer.from(l.prevHash, 'base64').compare(this.checkpointPrev) !== 0) {
          throw new BackupInvalidError(`audit checkpoint ${l.id} missing, out of order or not linked`);
        }
        const recomputed = this.mac(this.checkpointPrev, checkpointMaterial(l as never));
        if (Buffer.from(l.hash, 'base64').compare(recomputed) !== 0) throw new BackupInvalidError(`audit checkpoint ${l.id} altered`);
        this.checkpointPrev = recomputed;
        this.checkpoints++;
        break;
      }
    }
  }

  finish(): VerifyReport {
    let bodySha256: string;
    if (this.header.format >= 5) {
      if (this.bodyHash === null) throw new BackupInvalidError('backup ends before its end line (truncated)');
      bodySha256 = this.bodyHash;
      if (bodySha256 !== this.endHash) throw new BackupInvalidError('backup body does not match the SHA-256 in its end line');
    } else {
      bodySha256 = this.h.digest('hex');
      if (bodySha256 !== this.header.bodySha256) throw new BackupInvalidError('backup body does not match the SHA-256 in its header');
    }
    for (const k of Object.keys(this.counts) as (keyof BackupCounts)[]) {
      if (this.counts[k] !== this.header.counts?.[k])
        throw new BackupInvalidError(`backup holds ${this.counts[k]} ${k}, its header says ${this.header.counts?.[k]}`);
    }
    if (this.keys.size !== BACKUP_KEYS.length) throw new BackupInvalidError('backup lacks the token pepper or the audit MAC key');
    if (this.header.format === 1 && !this.head) throw new BackupInvalidError('backup audit head does not match its last event');
    for (const stream of this.streams.keys()) {
      if (this.header.format !== 1 && !this.registered.has(stream))
        throw new BackupInvalidError(`backup audit stream ${stream} has events but no registry line`);
    }
    for (const p of this.parents)
      if (!this.tokenIds.has(p)) throw new BackupInvalidError(`backup token parent ${p.slice(0, 40)} is missing`);
    return { header: this.header, counts: this.counts, bodySha256, auditChecked: this.events, ok: true };
  }
}

/**
 * Reads a whole decrypted backup and checks it: header, structure, body
 * SHA-256, counts and the audit hash chain. Writes nothing. Throws
 * BackupInvalidError naming the first problem (or the decrypt stream's own
 * error when the OpenPGP layer fails).
 */
export async function verifyBackup(lines: AsyncIterable<Line | Line[]>): Promise<VerifyReport> {
  let check: BodyCheck | null = null;
  for await (const batch of eachBatch(lines)) {
    for (const l of batch) {
      if (!check) {
        check = new BodyCheck(checkHeader(l));
        continue;
      }
      const p = check.add(l);
      if (p) await p;
    }
  }
  return (check ?? new BodyCheck(checkHeader(undefined))).finish();
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
