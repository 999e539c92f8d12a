import type { Db, Tx } from './db.js';
import { query, sql, type Query } from './sql.js';

export interface AuditRow {
  seq: number;
  ts: number;
  actorId: string;
  actorName: string;
  action: string;
  project: string | null;
  env: string | null;
  target: Record<string, unknown>;
  outcome: string;
  ip: string | null;
  requestId: string | null;
  detail: Record<string, unknown>;
  /** The chain the event belongs to (0: the single chain of vaults made before streams) and its place in it. */
  stream: number;
  streamSeq: number;
  prevHash: Buffer;
  hash: Buffer;
  /** Stored text of target and detail when the writer already serialised them (else JSON.stringify of each). */
  json?: { target: string; detail: string };
}

export interface AuditFilter {
  from?: number;
  to?: number;
  actor?: string;
  action?: string;
  project?: string;
  env?: string;
  outcome?: string;
  afterSeq?: number;
  beforeSeq?: number;
  limit: number;
  order?: 'asc' | 'desc';
}

/** A stream's registry row: where its chain ends (0 / the genesis hash while it has no event). */
export interface StreamRow {
  id: number;
  node: string;
  createdAt: number;
  headSeq: number;
  headEvent: number;
  headHash: Buffer;
  checkpointSeq: number;
  closedAt: number | null;
}

/** A checkpoint: the heads of the streams that moved since the one before, chained and MACed. */
export interface CheckpointRow {
  id: number;
  ts: number;
  heads: string;
  prevHash: Buffer;
  hash: Buffer;
}

export const toAudit = (r: any): AuditRow => ({
  seq: Number(r.seq),
  ts: Number(r.ts),
  actorId: r.actor_id,
  actorName: r.actor_name,
  action: r.action,
  project: r.project ?? null,
  env: r.env ?? null,
  target: JSON.parse(r.target),
  outcome: r.outcome,
  ip: r.ip ?? null,
  requestId: r.request_id ?? null,
  detail: JSON.parse(r.detail),
  stream: Number(r.stream ?? 0),
  streamSeq: Number(r.stream_seq ?? r.seq),
  prevHash: Buffer.from(r.prev_hash),
  hash: Buffer.from(r.hash),
});

export const toStream = (r: any): StreamRow => ({
  id: Number(r.id),
  node: r.node,
  createdAt: Number(r.created_at),
  headSeq: Number(r.head_seq),
  headEvent: Number(r.head_event),
  headHash: Buffer.from(r.head_hash),
  checkpointSeq: Number(r.checkpoint_seq),
  closedAt: r.closed_at == null ? null : Number(r.closed_at),
});

/** The columns of audit_events in the order every reader and writer of raw rows uses (backup, restore, verify). */
export const AUDIT_COLUMNS = [
  'seq',
  'ts',
  'actor_id',
  'actor_name',
  'action',
  'project',
  'env',
  'target',
  'outcome',
  'ip',
  'request_id',
  'detail',
  'prev_hash',
  'hash',
  'stream',
  'stream_seq',
] as const;
const COLUMNS = AUDIT_COLUMNS.join(', ');
/**
 * An event as verification reads it: the stored text of target and detail
 * is kept (json), and parsed only if something asks. Verification MACs the
 * stored text, which is the text the append MACed.
 */
class StoredEvent implements AuditRow {
  private parsed: { target?: Record<string, unknown>; detail?: Record<string, unknown> } = {};
  constructor(
    readonly seq: number,
    readonly ts: number,
    readonly actorId: string,
    readonly actorName: string,
    readonly action: string,
    readonly project: string | null,
    readonly env: string | null,
    readonly outcome: string,
    readonly ip: string | null,
    readonly requestId: string | null,
    readonly prevHash: Buffer,
    readonly hash: Buffer,
    readonly json: { target: string; detail: string },
    readonly stream: number,
    readonly streamSeq: number,
  ) {}
  get target(): Record<string, unknown> {
    return (this.parsed.target ??= JSON.parse(this.json.target));
  }
  get detail(): Record<string, unknown> {
    return (this.parsed.detail ??= JSON.parse(this.json.detail));
  }
}
/** An array row of COLUMNS. */
const stored = (r: any[]): StoredEvent =>
  new StoredEvent(
    Number(r[0]),
    Number(r[1]),
    r[2],
    r[3],
    r[4],
    r[5] ?? null,
    r[6] ?? null,
    r[8],
    r[9] ?? null,
    r[10] ?? null,
    Buffer.isBuffer(r[12]) ? r[12] : Buffer.from(r[12]),
    Buffer.isBuffer(r[13]) ? r[13] : Buffer.from(r[13]),
    { target: r[7], detail: r[11] },
    Number(r[14]),
    Number(r[15]),
  );

const Q = {
  // seq: PostgreSQL draws from a sequence, which takes no lock; SQLite has one
  // writer at a time, and the batch's transaction holds the write lock.
  nextSeqsPg: query("select nextval('audit_events_seq') as seq from generate_series(1, ?)"),
  maxSeq: query('select coalesce(max(seq), 0) as seq from audit_events'),
  createStream: query(
    'insert into audit_streams (node, created_at, head_seq, head_event, head_hash, checkpoint_seq) values (?, ?, 0, 0, ?, 0) returning id',
  ),
  stream: query('select * from audit_streams where id = ?'),
  streams: query('select * from audit_streams order by id'),
  closeStream: query('update audit_streams set closed_at = ? where id = ? and closed_at is null'),
  // Compare-and-set: only the stream's owner moves its head, from the head it committed last.
  moveHead: query('update audit_streams set head_seq = ?, head_event = ?, head_hash = ? where id = ? and head_seq = ?'),
  insertOne: query(`insert into audit_events (${COLUMNS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
  // PostgreSQL: the head moves and every event of the batch is inserted in ONE
  // statement (one round trip, atomic on its own): nothing is inserted when the
  // compare-and-set matched no row. One text for any number of rows.
  appendPg: query(
    `with h as (update audit_streams set head_seq = ?, head_event = ?, head_hash = ? where id = ? ` +
      `and head_seq = ? returning id)
    insert into audit_events (${COLUMNS})
    select a.seq, ` +
      `a.ts, a.actor_id, a.actor_name, a.action, a.project, a.env, a.target, a.outcome, a.ip, ` +
      `a.request_id, a.detail, a.prev_hash, a.hash, h.id, a.stream_seq
    from h, unnest(?::bigint[], ` +
      `?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ` +
      `?::text[], ?::text[], ?::text[], ?::bytea[], ?::bytea[], ?::bigint[])
      as a(seq, ts, ` +
      `actor_id, actor_name, action, project, env, target, outcome, ip, request_id, detail, prev_hash, ` +
      `hash, stream_seq)`,
  ),
  seqPage: query(`select ${COLUMNS} from audit_events where seq > ? and seq <= ? order by seq limit ?`),
  bySeq: query(`select ${COLUMNS} from audit_events where seq = ?`),
  byStreamSeq: query('select seq, hash from audit_events where stream = ? and stream_seq = ?'),
  bounds: query('select min(seq) as min, max(seq) as max from audit_events'),
  streamEnds: query('select stream, max(stream_seq) as max, count(*) as n from audit_events group by stream order by stream'),
  firstAfter: query('select min(seq) as s from audit_events where stream = ? and stream_seq > ?'),
  lastCheckpoint: query('select id, hash from audit_checkpoints order by id desc limit 1 for_update'),
  checkpointDue: query('select id, head_seq, head_hash from audit_streams where head_seq > checkpoint_seq order by id'),
  insertCheckpoint: query('insert into audit_checkpoints (id, ts, heads, prev_hash, hash) values (?, ?, ?, ?, ?)'),
  markCheckpointed: query('update audit_streams set checkpoint_seq = ? where id = ? and checkpoint_seq < ?'),
  checkpointPage: query('select id, ts, heads, prev_hash, hash from audit_checkpoints where id > ? order by id limit ?'),
};

const PAGE = 1000;

export function auditStoreFactory(db: Db) {
  async function* pages(
    q: Query,
    args: (after: number) => unknown[],
    key: (r: any[]) => number,
    pageSize: number,
    tx?: Tx,
  ): AsyncGenerator<any[]> {
    let after = -1;
    const s = sql(db, tx);
    for (;;) {
      const rows = await s.rows(q, ...args(after), pageSize);
      for (const r of rows) yield r;
      if (rows.length < pageSize) return;
      after = key(rows[rows.length - 1]);
      // On SQLite the statements are synchronous: let other requests in between pages.
      if (s.engine === 'sqlite') await new Promise((res) => setImmediate(res));
    }
  }

  return {
    /**
     * `n` new global sequence numbers, ascending. PostgreSQL draws them from
     * the sequence when the batch is written, so seq follows the order in
     * which batches were written on every node; a batch that rolls back
     * leaves a gap in seq (never in a stream).
     */
    async nextSeqs(n: number, tx: Tx): Promise<number[]> {
      const s = sql(db, tx);
      if (s.engine === 'postgres') return (await s.all<{ seq: number }>(Q.nextSeqsPg, n)).map((r) => Number(r.seq));
      const max = Number((await s.get<{ seq: number }>(Q.maxSeq))!.seq);
      return Array.from({ length: n }, (_, i) => max + 1 + i);
    },
    /** Registers a new stream for this process (in the caller's transaction). */
    async createStream(node: string, genesis: Buffer, tx: Tx): Promise<number> {
      const r = await sql(db, tx).get<{ id: number }>(Q.createStream, node.slice(0, 128), Date.now(), genesis);
      return Number(r!.id);
    },
    async stream(id: number, tx?: Tx): Promise<StreamRow | null> {
      const r = await sql(db, tx).get(Q.stream, id);
      return r ? toStream(r) : null;
    },
    async streams(tx?: Tx): Promise<StreamRow[]> {
      return (await sql(db, tx).all(Q.streams)).map(toStream);
    },
    async closeStream(id: number, tx: Tx): Promise<void> {
      await sql(db, tx).run(Q.closeStream, Date.now(), id);
    },
    /**
     * Inserts a batch of one stream's chained events and moves the stream's
     * head from `fromSeq` to the last of them. False (and nothing written)
     * when the head is no longer at `fromSeq`: another writer moved it, or
     * its row is gone.
     */
    async append(stream: number, fromSeq: number, rows: AuditRow[], tx: Tx): Promise<boolean> {
      const s = sql(db, tx);
      const last = rows[rows.length - 1];
      const text = (e: AuditRow) => e.json ?? { target: JSON.stringify(e.target), detail: JSON.stringify(e.detail) };
      if (s.engine === 'postgres') {
        const col = (f: (e: AuditRow) => unknown) => rows.map(f);
        const n = await s.run(
          Q.appendPg,
          last.streamSeq,
          last.seq,
          last.hash,
          stream,
          fromSeq,
          col((e) => e.seq),
          col((e) => e.ts),
          col((e) => e.actorId),
          col((e) => e.actorName),
          col((e) => e.action),
          col((e) => e.project),
          col((e) => e.env),
          col((e) => text(e).target),
          col((e) => e.outcome),
          col((e) => e.ip),
          col((e) => e.requestId),
          col((e) => text(e).detail),
          col((e) => e.prevHash),
          col((e) => e.hash),
          col((e) => e.streamSeq),
        );
        return n === rows.length;
      }
      if ((await s.run(Q.moveHead, last.streamSeq, last.seq, last.hash, stream, fromSeq)) !== 1) return false;
      for (const e of rows) {
        const j = text(e);
        await s.run(
          Q.insertOne,
          e.seq,
          e.ts,
          e.actorId,
          e.actorName,
          e.action,
          e.project,
          e.env,
          j.target,
          e.outcome,
          e.ip,
          e.requestId,
          j.detail,
          e.prevHash,
          e.hash,
          stream,
          e.streamSeq,
        );
      }
      return true;
    },
    /** The audit list: its filter decides the query's shape, so it is built (knex). */
    async list(f: AuditFilter, tx?: Tx): Promise<AuditRow[]> {
      const q = (tx ?? db)('audit_events');
      if (f.from !== undefined) q.where('ts', '>=', f.from);
      if (f.to !== undefined) q.where('ts', '<', f.to);
      if (f.actor)
        q.where((w) => {
          void w.where('actor_id', f.actor!).orWhere('actor_name', f.actor!);
        });
      if (f.action) {
        // "secret.*": a literal prefix. LIKE's own wildcards in it are escaped, the same way on both engines.
        if (f.action.endsWith('*'))
          q.whereRaw("?? like ? escape '\\'", ['action', f.action.slice(0, -1).replace(/[\\%_]/g, (c) => `\\${c}`) + '%']);
        else q.where('action', f.action);
      }
      if (f.project) q.where('project', f.project);
      if (f.env) q.where('env', f.env);
      if (f.outcome) q.where('outcome', f.outcome);
      if (f.afterSeq !== undefined) q.where('seq', '>', f.afterSeq);
      if (f.beforeSeq !== undefined) q.where('seq', '<', f.beforeSeq);
      q.orderBy('seq', f.order ?? 'asc').limit(f.limit);
      return (await q).map(toAudit);
    },
    /** Events with seq <= upTo in seq order, in pages (memory stays bounded). */
    async *iterate(upTo: number, pageSize = PAGE, tx?: Tx): AsyncGenerator<AuditRow & { json: { target: string; detail: string } }> {
      for await (const r of pages(
        Q.seqPage,
        (after) => [after, upTo],
        (x) => Number(x[0]),
        pageSize,
        tx,
      ))
        yield stored(r);
    },
    /**
     * Events with seq <= upTo in seq order, a page of raw rows (arrays in
     * COLUMNS order, as the driver returns them) at a time: no object per
     * event (audit verify). On SQLite other requests get in between pages.
     */
    async *rawPages(upTo: number, pageSize = PAGE, tx?: Tx): AsyncGenerator<any[][]> {
      const s = sql(db, tx);
      for (let after = -1; ;) {
        const rows = await s.rows(Q.seqPage, after, upTo, pageSize);
        if (rows.length) yield rows;
        if (rows.length < pageSize) return;
        after = Number(rows[rows.length - 1][0]);
        if (s.engine === 'sqlite') await new Promise((res) => setImmediate(res));
      }
    },
    /** One event by seq, or null. */
    async get(seq: number, tx?: Tx): Promise<AuditRow | null> {
      const r = await sql(db, tx).get(Q.bySeq, seq);
      return r ? toAudit(r) : null;
    },
    async byStreamSeq(stream: number, streamSeq: number, tx?: Tx): Promise<{ seq: number; hash: Buffer } | null> {
      const r = await sql(db, tx).get(Q.byStreamSeq, stream, streamSeq);
      return r ? { seq: Number(r.seq), hash: Buffer.from(r.hash) } : null;
    },
    /** Lowest and highest seq in the table (null when it is empty). */
    async bounds(tx?: Tx): Promise<{ min: number; max: number } | null> {
      const r = await sql(db, tx).get(Q.bounds);
      return r && r.max !== null && r.max !== undefined ? { min: Number(r.min), max: Number(r.max) } : null;
    },
    /** Per stream present in the table: its highest stream seq and its number of events. */
    async streamEnds(tx?: Tx): Promise<{ stream: number; max: number; n: number }[]> {
      return (await sql(db, tx).all(Q.streamEnds)).map((r) => ({ stream: Number(r.stream), max: Number(r.max), n: Number(r.n) }));
    },
    /** The seq of the first event of `stream` after `streamSeq`, or null. */
    async firstAfter(stream: number, streamSeq: number, tx?: Tx): Promise<number | null> {
      const r = await sql(db, tx).get(Q.firstAfter, stream, streamSeq);
      return r && r.s !== null && r.s !== undefined ? Number(r.s) : null;
    },
    /** The last checkpoint, locked until the transaction ends (PostgreSQL): checkpoint writers take turns. */
    async lastCheckpoint(tx: Tx): Promise<{ id: number; hash: Buffer } | null> {
      const r = await sql(db, tx).get(Q.lastCheckpoint);
      return r ? { id: Number(r.id), hash: Buffer.from(r.hash) } : null;
    },
    /** Streams whose head moved since the checkpoint that last covered them. */
    async checkpointDue(tx: Tx): Promise<{ stream: number; seq: number; hash: Buffer }[]> {
      return (await sql(db, tx).all(Q.checkpointDue)).map((r) => ({
        stream: Number(r.id),
        seq: Number(r.head_seq),
        hash: Buffer.from(r.head_hash),
      }));
    },
    async insertCheckpoint(c: CheckpointRow, covered: { stream: number; seq: number }[], tx: Tx): Promise<void> {
      const s = sql(db, tx);
      await s.run(Q.insertCheckpoint, c.id, c.ts, c.heads, c.prevHash, c.hash);
      for (const h of covered) await s.run(Q.markCheckpointed, h.seq, h.stream, h.seq);
    },
    async *checkpoints(tx?: Tx): AsyncGenerator<CheckpointRow> {
      for await (const r of pages(
        Q.checkpointPage,
        (after) => [after],
        (x) => Number(x[0]),
        PAGE,
        tx,
      )) {
        yield { id: Number(r[0]), ts: Number(r[1]), heads: r[2], prevHash: Buffer.from(r[3]), hash: Buffer.from(r[4]) };
      }
    },
  };
}
export type AuditStore = ReturnType<typeof auditStoreFactory>;
