import { appendFile } from 'node:fs/promises';
import type { FastifyBaseLogger } from 'fastify';
import { AuditUnavailableError, HushError } from '../../errors.js';
import type { Db, Tx } from '../../store/db.js';
import { isPostgres, isStorageFailure, releaseSavepoint, rollbackToSavepoint, savepoint, storageError, transaction } from '../../store/db.js';
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

/**
 * `ok` is the verdict. `firstBadSeq` names the first event that does not
 * verify (null when ok, or when only the head record is at fault and no
 * event can be blamed). `checked` counts the events that verified, from seq 1
 * up to the head as it stood when verification started; `headHash` is that
 * event's hash (keep it outside the database as an anchor).
 */
export interface VerifyResult { ok: boolean; checked: number; firstBadSeq: number | null; reason: string | null; headSeq: number; headHash: string | null }

/** An (seq, hash) pair recorded outside the database: a file-sink line, an earlier verify result, a backup. */
export interface AuditAnchor { seq: number; hash: string }

/** The event's top-level fields in canonical (sorted) order, with their JSON-encoded names. */
const EVENT_FIELDS = (['action', 'actorId', 'actorName', 'detail', 'env', 'ip', 'outcome', 'project', 'requestId', 'seq', 'target', 'ts'] as const)
  .map((k) => [k, JSON.stringify(k)] as const);

/**
 * The fields covered by the MAC, in one canonical form (shared by append
 * and verify): exactly canonicalJson of the object of these fields, built
 * without sorting the top level on every call.
 */
export function eventMaterial(e: Omit<AuditRow, 'prevHash' | 'hash'>): string {
  return material(e, e.target === undefined ? undefined : canonicalJson(e.target), e.detail === undefined ? undefined : canonicalJson(e.detail));
}

/** eventMaterial with the canonical JSON of target and detail already computed (append stores the same text). */
function material(e: Omit<AuditRow, 'prevHash' | 'hash'>, targetJson: string | undefined, detailJson: string | undefined): string {
  let out = '{';
  for (const [k, name] of EVENT_FIELDS) {
    const json = k === 'target' ? targetJson : k === 'detail' ? detailJson : e[k] === undefined ? undefined : canonicalJson(e[k]);
    if (json === undefined) continue;
    out += (out.length > 1 ? ',' : '') + name + ':' + json;
  }
  return out + '}';
}

/**
 * The MAC must cover exactly what the table will hold and what verify will
 * read back: a JSON round trip turns Dates into strings and drops undefined,
 * as storing the column does. Flat objects of strings, numbers, booleans and
 * string arrays (nearly every event) are copied directly with the same result.
 */
function plain(o: Record<string, unknown> | undefined): Record<string, unknown> {
  if (o === undefined) return {};
  return flatCopy(o) ?? JSON.parse(JSON.stringify(o));
}

function flatCopy(o: Record<string, unknown>): Record<string, unknown> | null {
  if (Object.getPrototypeOf(o) !== Object.prototype) return null;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) {
    const v = o[k];
    if (k === '__proto__') return null;
    if (v === undefined) continue;
    if (v === null || typeof v === 'string' || typeof v === 'boolean') out[k] = v;
    else if (typeof v === 'number') out[k] = Number.isFinite(v) ? v : null;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) out[k] = Object.isFrozen(v) ? v : v.slice();
    else return null;
  }
  return out;
}

export function publicEvent(e: AuditRow) {
  return {
    seq: e.seq, ts: new Date(e.ts).toISOString(), actor: { id: e.actorId, name: e.actorName }, action: e.action, project: e.project, env: e.env,
    target: e.target, outcome: e.outcome, ip: e.ip, requestId: e.requestId, detail: e.detail, hash: e.hash.toString('hex'),
  };
}

/** Requests committed together at most; a longer queue waits for the next transaction. */
const MAX_BATCH = 512;

interface Job {
  ctx: AuditContext;
  readOnly: boolean;
  /** Runs no SQL in the batch (a read already made outside it): needs no savepoint. */
  pure: boolean;
  fn: (tx: Tx, record: Record_) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  settled: boolean;
}

/** An error from one request's own work: Hush errors as they are, database failures as storage_unavailable. */
function jobError(e: unknown): unknown {
  if (e instanceof HushError) return e;
  if (isStorageFailure(e)) return storageError(e);
  return e;
}

export function auditServiceFactory({ db, auditStore, keys, log, auditFile }: AuditServiceDeps) {
  // SQLite reads stay in the batch: its statements are synchronous calls on
  // the one connection, cheaper there than a second connection's.
  const readOutside = isPostgres(db);
  /** Chains the events of every job in one batch, in queue order, and writes them with one head update. */
  async function append(tx: Tx, jobs: { ctx: AuditContext; inputs: AuditInput[] }[]): Promise<AuditRow[]> {
    if (!jobs.some((j) => j.inputs.length > 0)) return [];
    try {
      const mac = await keys.auditMac(tx);
      // Held until commit (FOR UPDATE on PostgreSQL; SQLite has one writer):
      // appends from every process take the next seq one at a time.
      const head = await auditStore.lockHead(tx);
      if (!head) throw new Error('the audit chain head record is missing');
      let seq = head.seq;
      let prev = head.hash;
      const rows: AuditRow[] = [];
      const ts = Date.now();
      for (const { ctx, inputs } of jobs) {
        for (const i of inputs) {
          seq += 1;
          const base = {
            seq, ts, actorId: ctx.actorId, actorName: ctx.actorName, action: i.action, project: i.project ?? null, env: i.env ?? null,
            target: plain(i.target), outcome: i.outcome, ip: ctx.ip, requestId: ctx.requestId, detail: plain(i.detail),
          };
          // Canonical JSON is MACed and stored: one serialisation of each, and the stored text is canonical.
          const json = { target: canonicalJson(base.target), detail: canonicalJson(base.detail) };
          const hash = mac(prev, material(base, json.target, json.detail));
          rows.push({ ...base, prevHash: prev, hash, json });
          prev = hash;
        }
      }
      await auditStore.append(rows, seq, prev, tx);
      return rows;
    } catch (e) {
      if (e instanceof HushError) throw e;
      throw new AuditUnavailableError('the audit log cannot be written, so the request was not carried out', { cause: e });
    }
  }

  // Sink writes are chained so lines land in commit order and never interleave.
  let sinkQueue: Promise<void> = Promise.resolve();

  function ship(rows: AuditRow[]): Promise<void> {
    if (!auditFile || rows.length === 0) return Promise.resolve();
    const file = auditFile;
    const lines = rows.map((r) => JSON.stringify(publicEvent(r)) + '\n').join('');
    sinkQueue = sinkQueue.then(async () => {
      try {
        // Opened per write, so a log rotator may rename the file at any time.
        await appendFile(file, lines, { mode: 0o600 });
      } catch (e) {
        log.error({
          err: { code: (e as NodeJS.ErrnoException).code, message: (e as Error).message }, auditFile: file,
          firstSeq: rows[0].seq, lastSeq: rows[rows.length - 1].seq,
        }, 'AUDIT FILE SINK WRITE FAILED: these events are committed in the database but missing from the audit file; copy them from GET /v1/audit');
      }
    });
    return sinkQueue;
  }

  // Group commit. Jobs that arrive while a transaction is committing queue
  // up and go into the next one together: one transaction, one head update
  // and one commit for the whole batch instead of one per request. Inside
  // it each job runs in turn under a savepoint, so a job that fails (404,
  // CAS conflict) is rolled back and answered alone while the others go on.
  // A job's promise resolves only after the batch committed (and its events
  // reached the file sink). If the audit append or the commit fails, nothing
  // of the batch was applied; its jobs are then retried one per transaction,
  // so a job whose own event cannot be written fails alone.
  const queue: Job[] = [];
  let draining = false;

  async function commitBatch(batch: Job[]): Promise<void> {
    const solo = batch.length === 1;
    const done: { job: Job; out: unknown; ctx: AuditContext; inputs: AuditInput[] }[] = [];
    let committed: AuditRow[] = [];
    try {
      await transaction(db, async (tx) => {
        for (const job of batch) {
          const inputs: AuditInput[] = [];
          const record: Record_ = async (input) => { inputs.push(input); };
          // Alone in its transaction, a job needs no savepoint: its failure rolls everything back.
          if (solo) {
            done.push({ job, out: await job.fn(tx, record), ctx: job.ctx, inputs });
            continue;
          }
          const sp = job.pure ? false : await savepoint(tx, { readOnly: job.readOnly });
          let out: unknown;
          try {
            out = await job.fn(tx, record);
          } catch (e) {
            if (sp) await rollbackToSavepoint(tx);
            job.settled = true;
            job.reject(jobError(e));
            continue;
          }
          if (sp) await releaseSavepoint(tx);
          done.push({ job, out, ctx: job.ctx, inputs });
        }
        committed = await append(tx, done);
      });
    } catch (e) {
      const pending = batch.filter((j) => !j.settled);
      if (!solo && pending.length > 1 && !isStorageFailure(e)) {
        // The batch failed as a whole, but the cause may be one job's (an
        // event that cannot be stored, a statement that aborted the
        // transaction). Each job goes again in a transaction of its own, so
        // only that one fails; a database that is down fails them all above.
        for (const job of pending) await commitBatch([job]);
        return;
      }
      const err = solo || e instanceof HushError ? jobError(e)
        : isStorageFailure(e) ? storageError(e)
          : new AuditUnavailableError('the audit log cannot be written, so the request was not carried out', { cause: e });
      for (const job of batch) if (!job.settled) job.reject(err);
      return;
    }
    const resolve = () => { for (const d of done) d.job.resolve(d.out); };
    if (auditFile && committed.length) void ship(committed).then(resolve);
    else resolve();
  }

  async function drain(): Promise<void> {
    try {
      while (queue.length > 0) await commitBatch(queue.splice(0, MAX_BATCH));
    } finally {
      draining = false;
    }
  }

  /**
   * Runs `fn` in one database transaction together with the audit events it
   * records; both commit or neither does (fail closed). The transaction may
   * be shared with other requests' jobs (group commit), so `fn` must use
   * `tx` for every query and must not itself call run() or record(): that
   * would wait for a batch that cannot start before this one ends. The file
   * sink is written only after the commit. `readOnly`: `fn` changes nothing
   * (its events aside), so it needs no savepoint of its own.
   */
  function run<T>(ctx: AuditContext, fn: (tx: Tx, record: Record_) => Promise<T>, opts: { readOnly?: boolean } = {}): Promise<T> {
    if (opts.readOnly && readOutside) return readThenAppend(ctx, fn);
    return enqueue(ctx, fn, opts.readOnly === true, false);
  }

  function enqueue<T>(ctx: AuditContext, fn: (tx: Tx, record: Record_) => Promise<T>, readOnly: boolean, pure: boolean): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      queue.push({ ctx, readOnly, pure, fn, resolve: resolve as (v: unknown) => void, reject, settled: false });
      // Started after this turn's I/O callbacks: every request that arrived
      // with this one has queued its job by then and joins the batch.
      if (!draining) { draining = true; setImmediate(() => void drain()); }
    });
  }

  /**
   * PostgreSQL: a read runs on its own pool connection, concurrently with
   * other reads, and only its events join the group commit. Inside the
   * batch it would run under the chain-head lock, one request at a time,
   * each statement a round trip on the batch's one connection. The result
   * is still released only after its events are durable, and is dropped if
   * they cannot be written (fail closed). A read needs no snapshot shared
   * with its event: it changes nothing, and the event names the revision
   * the read returned.
   */
  async function readThenAppend<T>(ctx: AuditContext, fn: (tx: Tx, record: Record_) => Promise<T>): Promise<T> {
    const inputs: AuditInput[] = [];
    let out: T;
    try {
      out = await fn(db, async (input) => { inputs.push(input); });
    } catch (e) {
      throw jobError(e);
    }
    return enqueue(ctx, async (_tx, record) => {
      for (const i of inputs) await record(i);
      return out;
    }, true, true);
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

    /**
     * Recomputes the chain from seq 1 up to the head as it stands when the
     * call starts (events appended meanwhile are left for the next run), in
     * pages. Names the first seq that does not verify. With `anchor`, also
     * checks that the event the anchor names still exists with that hash,
     * which catches a truncation that rewound the head too.
     */
    async verify(anchor?: AuditAnchor): Promise<VerifyResult> {
      const mac = await keys.auditMac();
      // Every event up to head.seq committed no later than the head row did,
      // so this read fixes a consistent range to check.
      const head = await auditStore.head();
      let checked = 0;
      let prev: Buffer = GENESIS_HASH;
      const headSeq = head?.seq ?? 0;
      const result = (firstBadSeq: number | null, reason: string | null): VerifyResult =>
        ({ ok: reason === null, checked, firstBadSeq, reason, headSeq, headHash: reason === null ? prev.toString('hex') : null });
      if (!head) {
        return result(null, 'the chain head record (audit_head) is missing, so where the log ends cannot be checked; it was deleted (appends fail closed until it is restored)');
      }

      let expect = 1;
      for await (const e of auditStore.iterate(headSeq)) {
        if (e.seq !== expect) {
          return result(expect, e.seq === expect + 1
            ? `event ${expect} is missing (deleted): the table jumps from ${expect - 1} to ${e.seq}`
            : `events ${expect}..${e.seq - 1} are missing (deleted): the table jumps from ${expect - 1} to ${e.seq}`);
        }
        if (!e.prevHash.equals(prev)) {
          return result(e.seq, `event ${e.seq} does not link to event ${e.seq - 1}: its prev_hash is not that event's hash (rows were moved, swapped or replaced)`);
        }
        // The stored text of target and detail is the canonical text the
        // append MACed, so it is MACed as it is. Text that another writer
        // stored differently (a restore) is canonicalised and tried again.
        let hash = mac(prev, material(e, e.json.target, e.json.detail));
        if (!hash.equals(e.hash)) {
          try { hash = mac(prev, eventMaterial(e)); } catch { /* target or detail is not JSON: altered */ }
        }
        if (!hash.equals(e.hash)) {
          return result(e.seq, `event ${e.seq} was altered or forged: its MAC does not match its contents`);
        }
        prev = hash;
        expect++;
        checked++;
      }
      if (checked < headSeq) {
        const from = checked + 1;
        return result(from, from === headSeq
          ? `event ${headSeq} is missing: the chain head says the log ends at ${headSeq}, the table ends at ${checked} (the last event was deleted)`
          : `events ${from}..${headSeq} are missing: the chain head says the log ends at ${headSeq}, the table ends at ${checked} (the tail was truncated)`);
      }
      if (!head.hash.equals(prev)) {
        return result(Math.max(headSeq, 1), `the chain head record does not match event ${headSeq}: the head was rewritten`);
      }

      // Rows above the head: the highest seq is read BEFORE the head again.
      // Any honest append that committed by then moved the head at least
      // that far in the same transaction, so a row above the re-read head
      // was written outside the chain.
      const bounds = await auditStore.bounds();
      const now = await auditStore.head();
      if (bounds && now && bounds.max > now.seq) {
        const first = (await auditStore.firstAfter(now.seq)) ?? bounds.max;
        return result(first, `event ${first} lies beyond the chain head (${now.seq}): it was inserted outside the chain`);
      }

      if (anchor) {
        const end = now?.seq ?? headSeq;
        if (anchor.seq > end) {
          return result(end + 1, `the anchor names event ${anchor.seq} but the log ends at ${end}: events ${end + 1}..${anchor.seq} were removed together with the head (or the database was restored from an older backup)`);
        }
        const e = await auditStore.get(anchor.seq);
        if (!e || e.hash.toString('hex') !== anchor.hash.toLowerCase()) {
          return result(anchor.seq, `event ${anchor.seq} does not have the anchored hash: the log was rebuilt from event ${anchor.seq} or earlier (or the database was restored from an older backup)`);
        }
      }
      return result(null, null);
    },
  };
}
export type AuditService = ReturnType<typeof auditServiceFactory>;
