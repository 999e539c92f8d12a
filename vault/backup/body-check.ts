/**
 * Checking a backup body line by line (formats 1 to 5): its header, the
 * shape of every line, the order of sections, the audit chain as it was
 * written, the body's SHA-256 and its counts. `hush backup verify` runs it
 * alone (verifyBackup); a restore runs it over the lines it writes
 * (restore.ts), so both refuse exactly the same files.
 */
import { createHash, type Hash } from 'node:crypto';
import { auditMacFromBackup } from '../crypto/keyring.js';
import { GENESIS_HASH, checkpointMaterial, eventMaterial } from '../services/audit/audit-service.js';
import { READABLE_FORMATS, countLine, type BackupCounts, type BackupHeader } from './dump.js';
import { BackupInvalidError, eachBatch, RAW, type Line } from './lines.js';

export interface VerifyReport {
  header: BackupHeader;
  counts: BackupCounts;
  bodySha256: string;
  auditChecked: number;
  ok: true;
}

export function checkHeader(h: Line | undefined): BackupHeader {
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
export class BodyCheck {
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
