import type { Grant } from '../token/grants.js';
import { appendFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { FastifyBaseLogger } from 'fastify';
import { AuditUnavailableError, HushError } from '../../errors.js';
import type { Db, Tx } from '../../store/db.js';
import { isPostgres, isStorageFailure, storageError } from '../../store/db.js';
import type { AuditFilter, AuditRow, AuditStore } from '../../store/audit-store.js';
import type { KeyService } from '../key/key-service.js';
import { unitOfWork, type BatchObserver, type JobEntries } from '../unit-of-work.js';
import { canonicalJson } from './canonical.js';
import { checkpointMaterial, GENESIS_HASH, verifyLog, type AuditAnchor, type CheckpointAnchor, type VerifyResult } from './verify.js';

export { checkpointMaterial, GENESIS_HASH, type AuditAnchor, type CheckpointAnchor, type VerifyResult };
import { redactTokens } from '../token/redact.js';

export type Outcome = 'ok' | 'denied' | 'error';

/**
 * Who did it, from where. Never holds a token string. `requestId` is the
 * server's own id for the request; `clientRequestId` the X-Request-Id the
 * client sent, if any (recorded as detail.clientRequestId, never in place
 * of the server's).
 */
export interface AuditContext {
  actorId: string;
  actorName: string;
  ip: string | null;
  requestId: string | null;
  clientRequestId?: string | null;
  /**
   * The acting token's grants, set by http/auth.ts. Reads resolve secret
   * references with them (services/secret/references.ts); never recorded.
   * Absent (system tasks): references to other envs are refused.
   */
  grants?: readonly Grant[];
}

/**
 * What else a batch of events writes in its transaction: the webhook
 * outbox (services/webhooks/outbox.ts). `enqueue` returns whether it wrote
 * anything; `committed` runs after such a batch committed.
 */
export interface AuditOutbox {
  enqueue(tx: Tx, jobs: JobEntries<AuditContext, AuditInput>[], rows: AuditRow[]): Promise<boolean>;
  committed(): void;
  /** Queues an event that is not an audit event of its own: a root request (audited or not), a failed verify (which must not change the log it examined). */
  announce(tx: Tx, type: 'audit.verify_failed' | 'root.used', data: Record<string, unknown>, ctx: AuditContext): Promise<boolean>;
  /** Does any webhook subscribe to this vault-wide event now? (A read outside any transaction: most root requests meet none.) */
  wants(type: 'audit.verify_failed' | 'root.used'): Promise<boolean>;
}

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

export interface AuditServiceDeps {
  db: Db;
  auditStore: AuditStore;
  keys: Pick<KeyService, 'auditMac'>;
  log: FastifyBaseLogger;
  auditFile: string | null;
  /** How often this process writes a checkpoint when any stream moved (0: only at close). */
  checkpointIntervalMs?: number;
  /** Told of every committed batch (the metrics). */
  batches?: BatchObserver | null;
  outbox?: AuditOutbox;
}

/** The event's top-level fields in canonical (sorted) order, with their JSON-encoded names. */
const EVENT_FIELDS = (
  [
    'action',
    'actorId',
    'actorName',
    'detail',
    'env',
    'ip',
    'outcome',
    'project',
    'requestId',
    'seq',
    'stream',
    'streamSeq',
    'target',
    'ts',
  ] as const
).map((k) => [k, JSON.stringify(k)] as const);

type Material = Omit<AuditRow, 'prevHash' | 'hash' | 'stream' | 'streamSeq'> & { stream?: number; streamSeq?: number };

/**
 * The fields covered by the MAC, in one canonical form (shared by append
 * and verify): exactly canonicalJson of the object of these fields, built
 * without sorting the top level on every call. Events of stream 0 (the
 * single chain of vaults made before streams) were MACed without the
 * stream fields, and are checked that way.
 */
export function eventMaterial(e: Material): string {
  return material(
    e,
    e.target === undefined ? undefined : canonicalJson(e.target),
    e.detail === undefined ? undefined : canonicalJson(e.detail),
  );
}

/** eventMaterial with the canonical JSON of target and detail already computed (append stores the same text). */
function material(e: Material, targetJson: string | undefined, detailJson: string | undefined): string {
  const streamed = e.stream !== undefined && e.stream !== 0;
  let out = '{';
  for (const [k, name] of EVENT_FIELDS) {
    if ((k === 'stream' || k === 'streamSeq') && !streamed) continue;
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
  return (
    flatCopy(o) ??
    (JSON.parse(JSON.stringify(o), (_k, v: unknown) => (typeof v === 'string' ? redactTokens(v) : v)) as Record<string, unknown>)
  );
}

/**
 * Names and targets come from the request (a URL segment, a body field): a
 * token pasted there is blanked before the event is MACed and stored, so
 * readers of the audit log never see one (docs/security.md, finding 3).
 */
const scrub = (s: string | null | undefined): string | null => (s == null ? null : redactTokens(s));

/** The event's detail, with the client's own request id beside the server's. */
function detailOf(ctx: AuditContext, d: Record<string, unknown> | undefined): Record<string, unknown> {
  const out = plain(d);
  if (ctx.clientRequestId) out.clientRequestId = ctx.clientRequestId;
  return out;
}

function flatCopy(o: Record<string, unknown>): Record<string, unknown> | null {
  if (Object.getPrototypeOf(o) !== Object.prototype) return null;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) {
    const v = o[k];
    if (k === '__proto__') return null;
    if (v === undefined) continue;
    if (v === null || typeof v === 'boolean') out[k] = v;
    else if (typeof v === 'string') out[k] = redactTokens(v);
    else if (typeof v === 'number') out[k] = Number.isFinite(v) ? v : null;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) out[k] = v.map(redactTokens);
    else return null;
  }
  return out;
}

export function publicEvent(e: AuditRow) {
  return {
    seq: e.seq,
    ts: new Date(e.ts).toISOString(),
    actor: { id: e.actorId, name: e.actorName },
    action: e.action,
    project: e.project,
    env: e.env,
    target: e.target,
    outcome: e.outcome,
    ip: e.ip,
    requestId: e.requestId,
    detail: e.detail,
    stream: e.stream,
    streamSeq: e.streamSeq,
    hash: e.hash.toString('hex'),
  };
}

const unavailable = (e?: unknown) =>
  new AuditUnavailableError(
    'the audit log cannot be written, so the request was not carried out',
    e === undefined ? undefined : { cause: e },
  );

/** This process's stream: its id and the head it last committed. */
interface OwnHead {
  stream: number;
  seq: number;
  hash: Buffer;
}

export function auditServiceFactory({
  db,
  auditStore,
  keys,
  log,
  auditFile,
  checkpointIntervalMs = 60_000,
  batches = null,
  outbox,
}: AuditServiceDeps) {
  const node = `${hostname()} pid ${process.pid}`.slice(0, 128);
  // On PostgreSQL two batches commit at once (unit-of-work lanes), each onto a
  // stream of its own: a process writes one stream per lane.
  const lanes = isPostgres(db) ? 2 : 1;
  /** Per lane: the committed head of its stream; null until its first append (or after a head that moved under it). */
  const own: (OwnHead | null)[] = Array.from({ length: lanes }, () => null);
  /** Per lane: the head the batch in flight will leave, adopted when it commits. */
  const pendingHead: (OwnHead | null)[] = Array.from({ length: lanes }, () => null);
  /** Per lane: the batch in flight wrote to the outbox. */
  const outboxWritten: boolean[] = Array.from({ length: lanes }, () => false);

  /**
   * Chains the events of every job of one batch, in queue order, onto this
   * process's stream, and writes them with one head move. No other process
   * appends to this stream, so nothing here waits on another node: the
   * compare-and-set on the stream's head only ever fails when the head moved
   * under this process (a commit whose outcome it never learned, or an edit
   * of the registry). Then it starts a new stream, and the old one stays as
   * it is for verify to check.
   */
  async function append(tx: Tx, jobs: JobEntries<AuditContext, AuditInput>[], lane: number): Promise<AuditRow[]> {
    const count = jobs.reduce((n, j) => n + j.inputs.length, 0);
    if (count === 0) return [];
    try {
      const mac = await keys.auditMac(tx);
      const seqs = await auditStore.nextSeqs(count, tx);
      for (let attempt = 0; ; attempt++) {
        const head = own[lane] ?? { stream: await auditStore.createStream(node, GENESIS_HASH, tx), seq: 0, hash: GENESIS_HASH };
        let streamSeq = head.seq;
        let prev = head.hash;
        let i = 0;
        const rows: AuditRow[] = [];
        const ts = Date.now();
        for (const { ctx, inputs } of jobs) {
          for (const input of inputs) {
            streamSeq += 1;
            const base = {
              seq: seqs[i++],
              ts,
              actorId: ctx.actorId,
              actorName: scrub(ctx.actorName)!,
              action: input.action,
              project: scrub(input.project),
              env: scrub(input.env),
              target: plain(input.target),
              outcome: input.outcome,
              ip: ctx.ip,
              requestId: ctx.requestId,
              detail: detailOf(ctx, input.detail),
              stream: head.stream,
              streamSeq,
            };
            // Canonical JSON is MACed and stored: one serialisation of each, and the stored text is canonical.
            const json = { target: canonicalJson(base.target), detail: canonicalJson(base.detail) };
            const hash = mac(prev, material(base, json.target, json.detail));
            rows.push({ ...base, prevHash: prev, hash, json });
            prev = hash;
          }
        }
        if (await auditStore.append(head.stream, head.seq, rows, tx)) {
          pendingHead[lane] = { stream: head.stream, seq: streamSeq, hash: prev };
          outboxWritten[lane] = outbox ? await outbox.enqueue(tx, jobs, rows) : false;
          return rows;
        }
        if (attempt > 0) throw new Error(`audit stream ${head.stream} was created in this transaction but its head cannot be moved`);
        log.warn({ auditStream: head.stream }, "the head of this process's audit stream moved under it; continuing on a new stream");
        own[lane] = null;
      }
    } catch (e) {
      if (e instanceof HushError) throw e;
      // A database that cannot be reached is not an audit-log fault: the client should retry.
      if (isStorageFailure(e)) throw storageError(e);
      throw unavailable(e);
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
        log.error(
          {
            err: { code: (e as NodeJS.ErrnoException).code, message: (e as Error).message },
            auditFile: file,
            firstSeq: rows[0].seq,
            lastSeq: rows[rows.length - 1].seq,
          },
          'AUDIT FILE SINK WRITE FAILED: these events are committed in the database but missing from the audit file; copy them from GET /v1/audit',
        );
      }
    });
    return sinkQueue;
  }

  const uow = unitOfWork<AuditContext, AuditInput, AuditRow[]>(
    db,
    {
      append,
      async committed(rows, lane) {
        if (pendingHead[lane]) own[lane] = pendingHead[lane];
        pendingHead[lane] = null;
        if (outboxWritten[lane]) {
          outboxWritten[lane] = false;
          outbox!.committed();
        }
        await ship(rows);
      },
      abandoned(lane) {
        outboxWritten[lane] = false;
        // The commit may have happened without this process learning it: the
        // next append's compare-and-set tells, and moves to a new stream if so.
        pendingHead[lane] = null;
      },
    },
    lanes,
    batches,
  );
  const run = uow.run.bind(uow);

  /**
   * A checkpoint: one MACed record, chained to the one before, that commits
   * to the head of every stream that moved since. Checkpoint writers on
   * several nodes take turns on the last checkpoint's row; appends never
   * wait for them. Runs through the unit of work like any write.
   */
  async function checkpoint(): Promise<{ id: number; hash: string } | null> {
    return run(SYSTEM_CONTEXT, async (tx) => {
      const last = await auditStore.lastCheckpoint(tx);
      const due = await auditStore.checkpointDue(tx);
      if (due.length === 0) return null;
      const mac = await keys.auditMac(tx);
      const id = (last?.id ?? 0) + 1;
      const prev = last?.hash ?? GENESIS_HASH;
      const ts = Date.now();
      const heads = JSON.stringify(due.map((d) => [d.stream, d.seq, d.hash.toString('hex')]));
      const hash = mac(prev, checkpointMaterial({ id, ts, heads }));
      await auditStore.insertCheckpoint({ id, ts, heads, prevHash: prev, hash }, due, tx);
      return { id, hash: hash.toString('hex') };
    });
  }

  /**
   * Sends a webhook event that is no audit event of its own (root.used,
   * audit.verify_failed) to the webhooks that want it, through the outbox.
   * Never fails its caller: a failure is logged.
   */
  async function announce(ctx: AuditContext, type: 'audit.verify_failed' | 'root.used', data: Record<string, unknown>): Promise<void> {
    if (!outbox) return;
    await outbox
      .wants(type)
      .then((wanted) => (wanted ? run(ctx, (tx) => outbox.announce(tx, type, data, ctx)) : false))
      .then((wrote) => {
        if (wrote) outbox.committed();
      })
      .catch((e: Error) => log.error({ err: { message: e.message } }, `a ${type} webhook event could not be queued`));
  }

  let timer: NodeJS.Timeout | null = null;
  function startCheckpoints(): void {
    if (timer || checkpointIntervalMs <= 0) return;
    // Jittered, so the nodes of a cluster do not all try at the same moment.
    timer = setInterval(
      () => {
        checkpoint().catch((e) => log.warn({ err: { message: (e as Error).message } }, 'audit checkpoint not written this time'));
      },
      Math.round(checkpointIntervalMs * (0.9 + Math.random() * 0.2)),
    );
    timer.unref();
  }

  return {
    run,
    /** Requests waiting for the next group commit. */
    queued: () => uow.queued(),

    /** Records events in their own transaction (denials, auth failures, server start). */
    async record(ctx: AuditContext, ...inputs: AuditInput[]): Promise<void> {
      await run(ctx, async (_tx, rec) => {
        for (const i of inputs) await rec(i);
      });
    },

    /** Nothing to set up: each process registers its stream with its first event. */
    async initialise(_tx: Tx): Promise<void> {},

    checkpoint,
    startCheckpoints,

    /** At shutdown, after the last request: a last checkpoint, and this process's stream is marked closed. */
    async close(): Promise<void> {
      if (timer) {
        clearInterval(timer);
        timer = null;
      }
      try {
        await checkpoint();
        const mine = own.filter((h): h is OwnHead => h !== null);
        if (mine.length)
          await run(SYSTEM_CONTEXT, async (tx) => {
            for (const h of mine) await auditStore.closeStream(h.stream, tx);
          });
      } catch (e) {
        log.warn({ err: { message: (e as Error).message } }, 'audit: last checkpoint at shutdown not written');
      }
    },

    async list(f: AuditFilter) {
      return (await auditStore.list(f)).map(publicEvent);
    },

    /**
     * Verifies the log. With `by` (an API call, the schedule), a failure is
     * announced to audit.verify_failed webhooks. It is not written to the
     * log itself: verifying must not change what it examined.
     */
    async verify(
      anchor?: AuditAnchor,
      checkpointAnchor?: CheckpointAnchor,
      by?: { ctx: AuditContext; scheduled: boolean },
    ): Promise<VerifyResult> {
      const r = await verifyLog(auditStore, keys, anchor, checkpointAnchor);
      if (!r.ok && by)
        await announce(by.ctx, 'audit.verify_failed', {
          firstBadSeq: r.firstBadSeq,
          reason: (r.reason ?? '').slice(0, 300),
          scheduled: by.scheduled,
        });
      return r;
    },

    announce,
  };
}
export type AuditService = ReturnType<typeof auditServiceFactory>;
