import { AuditUnavailableError, HushError } from '../errors.js';
import type { Db, Tx } from '../store/db.js';
import { isPostgres, isStorageFailure, releaseSavepoint, rollbackToSavepoint, savepoint, storageError, transaction } from '../store/db.js';

/**
 * The unit of work: every write transaction of a request runs through here,
 * together with the audit events it records, and both commit or neither
 * does (fail closed).
 *
 * Group commit. Jobs that arrive while a transaction is committing queue up
 * and go into the next one together: one transaction, one journal append
 * and one commit for the whole batch instead of one per request. Inside it
 * each job runs in turn under a savepoint, so a job that fails (404, CAS
 * conflict) is rolled back and answered alone while the others go on. A
 * job's promise resolves only after the batch committed (and the journal's
 * after-commit work, the audit file sink, is done). If the journal append or
 * the commit fails, nothing of the batch was applied; its jobs are then
 * retried one per transaction, so a job whose own event cannot be written
 * fails alone.
 */

/** What a job records: the audit service decides what an entry is. */
export type Recorder<I> = (input: I) => Promise<void>;

export interface JobEntries<C, I> {
  ctx: C;
  inputs: I[];
}

/**
 * Writes a batch's entries in its transaction, and is told what became of
 * them. `lane` says which of the batches that may be in flight at once this
 * is (0 .. lanes-1); batches of one lane never overlap.
 */
export interface Journal<C, I, R> {
  /** Appends the entries of every job of the batch, in queue order, in `tx`. */
  append(tx: Tx, jobs: JobEntries<C, I>[], lane: number): Promise<R>;
  /** After the commit: `r` is durable. Jobs resolve when this settles. */
  committed(r: R, lane: number): Promise<void>;
  /** The batch rolled back (or its commit's outcome is unknown). */
  abandoned(lane: number): void;
}

/** Told of every committed batch (the metrics): its jobs, its entries, and the seconds its append and its whole transaction took. */
export interface BatchObserver {
  committed(jobs: number, entries: number, appendSeconds: number, commitSeconds: number): void;
}

/** Requests committed together at most; a longer queue waits for the next transaction. */
const MAX_BATCH = 512;

interface Job<C, I> {
  ctx: C;
  readOnly: boolean;
  /** Runs no SQL in the batch (a read already made outside it): needs no savepoint. */
  pure: boolean;
  fn: (tx: Tx, record: Recorder<I>) => Promise<unknown>;
  /** The row the job locks first (an environment), or null; see runJobs. */
  lockKey: string | null;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  settled: boolean;
}

/** PostgreSQL: deadlock_detected, serialization_failure. */
function isRetryable(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return code === '40P01' || code === '40001';
}

/** An error from one request's own work: Hush errors as they are, database failures as storage_unavailable. */
function jobError(e: unknown): unknown {
  if (e instanceof HushError) return e;
  if (isStorageFailure(e)) return storageError(e);
  return e;
}

/**
 * `lanes`: batches in flight at once. SQLite has one writer, so one. On
 * PostgreSQL a batch's commit waits for its WAL flush; a second batch
 * committing meanwhile keeps the server busy (the journal gives each lane
 * a chain of its own).
 */
export function unitOfWork<C, I, R>(db: Db, journal: Journal<C, I, R>, lanes = 1, observer: BatchObserver | null = null) {
  // PostgreSQL: reads run on their own pool connections, concurrently, and
  // only their entries join the batch (see readThenAppend). SQLite reads stay
  // in the batch: its statements are synchronous calls on the one connection,
  // cheaper there than a second connection's.
  const readOutside = isPostgres(db);
  const queue: Job<C, I>[] = [];
  const free: number[] = Array.from({ length: Math.max(1, lanes) }, (_, i) => i);

  /** Per lane: seconds its last batch's journal append took (read by commitBatch for the observer). */
  const appendSeconds: number[] = Array.from({ length: Math.max(1, lanes) }, () => 0);

  async function runJobs(
    tx: Tx,
    batch: Job<C, I>[],
    done: { job: Job<C, I>; out: unknown; entries: JobEntries<C, I> }[],
    lane: number,
  ): Promise<R> {
    const solo = batch.length === 1;
    // Jobs run in the order of the row each locks first (stable: one row's
    // jobs keep their queue order), so every batch of every process takes
    // those locks in one order and two batches never wait for each other
    // in a circle (a deadlock: PostgreSQL would abort one after
    // deadlock_timeout). Jobs that name no row run after them.
    const order = solo
      ? batch
      : [...batch].sort((a, b) =>
          a.lockKey === b.lockKey ? 0 : a.lockKey === null ? 1 : b.lockKey === null ? -1 : a.lockKey < b.lockKey ? -1 : 1,
        );
    /** A savepoint of the previous job is still open (PostgreSQL). */
    let open = false;
    for (const job of order) {
      const inputs: I[] = [];
      const record: Recorder<I> = (input) => {
        inputs.push(input);
        return Promise.resolve();
      };
      // Alone in its transaction, a job needs no savepoint: its failure rolls everything back.
      if (solo || job.pure) {
        done.push({ job, out: await job.fn(tx, record), entries: { ctx: job.ctx, inputs } });
        continue;
      }
      const sp = await savepoint(tx, { readOnly: job.readOnly, releasePrevious: open });
      open = false;
      let out: unknown;
      try {
        out = await job.fn(tx, record);
      } catch (e) {
        if (sp) await rollbackToSavepoint(tx);
        job.settled = true;
        job.reject(jobError(e));
        continue;
      }
      // PostgreSQL: released together with the next job's savepoint (or by the commit).
      if (sp && readOutside) open = true;
      else if (sp) await releaseSavepoint(tx);
      done.push({ job, out, entries: { ctx: job.ctx, inputs } });
    }
    const entries = done.map((d) => d.entries);
    if (!observer) return journal.append(tx, entries, lane);
    const t0 = performance.now();
    const r = await journal.append(tx, entries, lane);
    appendSeconds[lane] = (performance.now() - t0) / 1000;
    return r;
  }

  async function commitBatch(batch: Job<C, I>[], lane: number, attempt = 0): Promise<void> {
    const solo = batch.length === 1;
    const done: { job: Job<C, I>; out: unknown; entries: JobEntries<C, I> }[] = [];
    let result: R;
    const t0 = observer ? performance.now() : 0;
    try {
      // PostgreSQL, a batch of reads only: their entries are one atomic
      // statement, so no transaction (BEGIN and COMMIT are round trips too).
      if (readOutside && batch.every((j) => j.pure)) result = await runJobs(db, batch, done, lane);
      else result = await transaction(db, (tx) => runJobs(tx, batch, done, lane));
    } catch (e) {
      journal.abandoned(lane);
      const pending = batch.filter((j) => !j.settled);
      // A deadlock or serialization failure (another transaction won): the same work may succeed now.
      if (solo && isRetryable(e) && attempt < 3) return commitBatch(batch, lane, attempt + 1);
      if (!solo && pending.length > 1 && !isStorageFailure(e)) {
        // The batch failed as a whole, but the cause may be one job's (an
        // entry that cannot be stored, a statement that aborted the
        // transaction, a deadlock with another node's batch). Each job goes
        // again in a transaction of its own, so only that one fails; a
        // database that is down fails them all below.
        for (const job of pending) await commitBatch([job], lane);
        return;
      }
      const err =
        solo || e instanceof HushError
          ? jobError(e)
          : isStorageFailure(e)
            ? storageError(e)
            : new AuditUnavailableError('the audit log cannot be written, so the request was not carried out', { cause: e });
      for (const job of batch) if (!job.settled) job.reject(err);
      return;
    }
    if (observer)
      observer.committed(
        batch.length,
        done.reduce((n, d) => n + d.entries.inputs.length, 0),
        appendSeconds[lane],
        (performance.now() - t0) / 1000,
      );
    await journal.committed(result, lane);
    for (const d of done) d.job.resolve(d.out);
  }

  /** Runs batches while jobs wait and a lane is free. */
  function pump(): void {
    while (queue.length > 0 && free.length > 0) {
      const lane = free.shift()!;
      const batch = queue.splice(0, MAX_BATCH);
      void commitBatch(batch, lane).finally(() => {
        free.push(lane);
        free.sort((x, y) => x - y);
        if (queue.length > 0) schedule();
      });
    }
  }
  let scheduled = false;
  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    // After this turn's I/O callbacks: every request that arrived with this
    // one has queued its job by then and joins the batch.
    setImmediate(() => {
      scheduled = false;
      pump();
    });
  }

  function enqueue<T>(
    ctx: C,
    fn: (tx: Tx, record: Recorder<I>) => Promise<T>,
    readOnly: boolean,
    pure: boolean,
    lockKey: string | null = null,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      queue.push({ ctx, readOnly, pure, fn, lockKey, resolve: resolve as (v: unknown) => void, reject, settled: false });
      schedule();
    });
  }

  /**
   * PostgreSQL: a read runs on its own pool connection, concurrently with
   * other reads, and only its entries join the group commit. The result is
   * still released only after its entries are durable, and is dropped if
   * they cannot be written (fail closed). A read needs no snapshot shared
   * with its entry: it changes nothing, and the entry names what it read.
   */
  async function readThenAppend<T>(ctx: C, fn: (tx: Tx, record: Recorder<I>) => Promise<T>): Promise<T> {
    const inputs: I[] = [];
    let out: T;
    try {
      out = await fn(db, (input) => {
        inputs.push(input);
        return Promise.resolve();
      });
    } catch (e) {
      throw jobError(e);
    }
    return enqueue(
      ctx,
      async (_tx, record) => {
        for (const i of inputs) await record(i);
        return out;
      },
      true,
      true,
    );
  }

  return {
    /** Jobs waiting for a batch (not the ones committing now). */
    queued(): number {
      return queue.length;
    },
    /**
     * Runs `fn` in one database transaction together with the entries it
     * records. The transaction may be shared with other requests' jobs, so
     * `fn` must use `tx` for every query and must not itself call run():
     * that would wait for a batch that cannot start before this one ends.
     * `readOnly`: `fn` changes nothing (its entries aside). `lockKey`: the
     * row `fn` locks first (say, its environment), so batches lock in one
     * order.
     */
    run<T>(ctx: C, fn: (tx: Tx, record: Recorder<I>) => Promise<T>, opts: { readOnly?: boolean; lockKey?: string } = {}): Promise<T> {
      if (opts.readOnly && readOutside) return readThenAppend(ctx, fn);
      return enqueue(ctx, fn, opts.readOnly === true, false, opts.lockKey ?? null);
    },
  };
}
