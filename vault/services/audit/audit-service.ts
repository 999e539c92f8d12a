import { appendFile } from 'node:fs/promises';
import type { FastifyBaseLogger } from 'fastify';
import { AuditUnavailableError, HushError } from '../../errors.js';
import type { Db, Tx } from '../../store/db.js';
import { isStorageFailure, storageError } from '../../store/db.js';
import type { AuditFilter, AuditRow, AuditStore } from '../../store/audit-store.js';
import type { KeyService } from '../key/key-service.js';
import { canonicalJson } from './canonical.js';

export type Outcome = 'ok' | 'denied' | 'error';

/** Who did it, from where. Never holds a token string. */
export interface AuditContext { actorId: string; actorName: string; ip: string | null; requestId: string | null }

export interface AuditInput {
  action: string;
  outcome: Outcome;
  project?: string | null;
  env?: string | null;
  target?: Record<string, unknown>;
  detail?: Record<string, unknown>;
}

export type Record_ = (input: AuditInput) => Promise<void>;

export const SYSTEM_CONTEXT: AuditContext = { actorId: 'system', actorName: 'system', ip: null, requestId: null };
export const GENESIS_HASH = Buffer.alloc(32);

export interface AuditServiceDeps {
  db: Db;
  auditStore: AuditStore;
  keys: Pick<KeyService, 'auditMac'>;
  log: FastifyBaseLogger;
  auditFile: string | null;
}

export interface VerifyResult { ok: boolean; checked: number; firstBadSeq: number | null; reason: string | null; headSeq: number }

/** The fields covered by the MAC, in one canonical form (shared by append and verify). */
export function eventMaterial(e: Omit<AuditRow, 'prevHash' | 'hash'>): string {
  return canonicalJson({
    seq: e.seq, ts: e.ts, actorId: e.actorId, actorName: e.actorName, action: e.action, project: e.project, env: e.env,
    target: e.target, outcome: e.outcome, ip: e.ip, requestId: e.requestId, detail: e.detail,
  });
}

export function publicEvent(e: AuditRow) {
  return {
    seq: e.seq, ts: new Date(e.ts).toISOString(), actor: { id: e.actorId, name: e.actorName }, action: e.action, project: e.project, env: e.env,
    target: e.target, outcome: e.outcome, ip: e.ip, requestId: e.requestId, detail: e.detail, hash: e.hash.toString('hex'),
  };
}

export function auditServiceFactory({ db, auditStore, keys, log, auditFile }: AuditServiceDeps) {
  async function append(tx: Tx, ctx: AuditContext, inputs: AuditInput[]): Promise<AuditRow[]> {
    if (inputs.length === 0) return [];
    try {
      const mac = await keys.auditMac(tx);
      const head = await auditStore.lockHead(tx);
      let seq = head?.seq ?? 0;
      let prev = head?.hash ?? GENESIS_HASH;
      const rows: AuditRow[] = [];
      const ts = Date.now();
      for (const i of inputs) {
        seq += 1;
        const base = {
          seq, ts, actorId: ctx.actorId, actorName: ctx.actorName, action: i.action, project: i.project ?? null, env: i.env ?? null,
          target: i.target ?? {}, outcome: i.outcome, ip: ctx.ip, requestId: ctx.requestId, detail: i.detail ?? {},
        };
        const hash = mac(prev, eventMaterial(base));
        rows.push({ ...base, prevHash: prev, hash });
        prev = hash;
      }
      await auditStore.insert(rows, tx);
      if (head) await auditStore.setHead(seq, prev, tx);
      else throw new Error('audit chain head is missing');
      return rows;
    } catch (e) {
      if (e instanceof HushError) throw e;
      throw new AuditUnavailableError('the audit log cannot be written, so the request was not carried out', { cause: e });
    }
  }

  async function ship(rows: AuditRow[]): Promise<void> {
    if (!auditFile || rows.length === 0) return;
    try {
      await appendFile(auditFile, rows.map((r) => JSON.stringify(publicEvent(r)) + '\n').join(''), { mode: 0o600 });
    } catch (e) {
      log.error({ err: { code: (e as NodeJS.ErrnoException).code, message: (e as Error).message }, auditFile }, 'AUDIT FILE SINK WRITE FAILED: events are safe in the database but missing from the file');
    }
  }

  /**
   * Runs `fn` in one database transaction together with the audit events it
   * records; both commit or neither does (fail closed). The file sink is
   * written only after the commit.
   */
  async function run<T>(ctx: AuditContext, fn: (tx: Tx, record: Record_) => Promise<T>): Promise<T> {
    let committed: AuditRow[] = [];
    let result: T;
    try {
      result = await db.transaction(async (tx) => {
        const pending: AuditInput[] = [];
        const out = await fn(tx, async (input) => { pending.push(input); });
        committed = await append(tx, ctx, pending);
        return out;
      });
    } catch (e) {
      if (e instanceof HushError) throw e;
      if (isStorageFailure(e)) throw storageError(e);
      throw e;
    }
    await ship(committed);
    return result;
  }

  return {
    run,
    
    /** Records events in their own transaction (denials, auth failures, server start). */
    async record(ctx: AuditContext, ...inputs: AuditInput[]): Promise<void> {
      await run(ctx, async (_tx, rec) => { for (const i of inputs) await rec(i); });
    },

    async initialise(tx: Tx): Promise<void> {
      await auditStore.initHead(GENESIS_HASH, tx);
    },

    async list(f: AuditFilter) {
      return (await auditStore.list(f)).map(publicEvent);
    },

    /** Recomputes the whole chain. Names the first seq that does not verify. */
    async verify(): Promise<VerifyResult> {
      const mac = await keys.auditMac();
      const head = await auditStore.head();
      let expectSeq = 1;
      let prev: Buffer = GENESIS_HASH;
      let checked = 0;
      const bad = (seq: number, reason: string): VerifyResult => ({ ok: false, checked, firstBadSeq: seq, reason, headSeq: head?.seq ?? 0 });
      for await (const e of auditStore.iterate()) {
        if (e.seq !== expectSeq) return bad(expectSeq, e.seq > expectSeq ? `event ${expectSeq} is missing` : `event ${e.seq} is out of order`);
        if (!e.prevHash.equals(prev)) return bad(e.seq, `event ${e.seq} does not link to the previous event`);
        const hash = mac(prev, eventMaterial(e));
        if (!hash.equals(e.hash)) return bad(e.seq, `event ${e.seq} was altered (its MAC does not match)`);
        prev = hash;
        expectSeq++;
        checked++;
      }
      const headSeq = head?.seq ?? 0;
      if (headSeq !== checked) {
        if (headSeq > checked) return bad(checked + 1, `events ${checked + 1}..${headSeq} are missing (log truncated)`);
        return bad(headSeq + 1, `events after ${headSeq} were appended outside the chain head`);
      }
      if (head && !head.hash.equals(prev)) return bad(checked, `the chain head does not match event ${checked}`);
      return { ok: true, checked, firstBadSeq: null, reason: null, headSeq };
    },
  };
}
export type AuditService = ReturnType<typeof auditServiceFactory>;
