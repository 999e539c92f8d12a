import type { Db, Tx } from './db.js';
import { isPostgres, lockedHead, rememberHead } from './db.js';
import { fastSql, fastTx } from './sqlite-fast.js';

export interface AuditRow {
  seq: number; ts: number; actorId: string; actorName: string; action: string; project: string | null; env: string | null;
  target: Record<string, unknown>; outcome: string; ip: string | null; requestId: string | null; detail: Record<string, unknown>;
  prevHash: Buffer; hash: Buffer;
  /** Stored text of target and detail when the writer already serialised them (else JSON.stringify of each). */
  json?: { target: string; detail: string };
}

export interface AuditFilter {
  from?: number; to?: number; actor?: string; action?: string; project?: string; env?: string; outcome?: string;
  afterSeq?: number; beforeSeq?: number; limit: number; order?: 'asc' | 'desc';
}

export const toAudit = (r: any): AuditRow => ({
  seq: Number(r.seq), ts: Number(r.ts), actorId: r.actor_id, actorName: r.actor_name, action: r.action, project: r.project ?? null, env: r.env ?? null,
  target: JSON.parse(r.target), outcome: r.outcome, ip: r.ip ?? null, requestId: r.request_id ?? null, detail: JSON.parse(r.detail),
  prevHash: Buffer.from(r.prev_hash), hash: Buffer.from(r.hash),
});

const COLUMNS = 'seq, ts, actor_id, actor_name, action, project, env, target, outcome, ip, request_id, detail, prev_hash, hash';
/**
 * An event as iterate() reads it for verification: the stored text of
 * target and detail is kept (json), and parsed only if something asks.
 * Verification MACs the stored text, which is the text the append MACed.
 */
class StoredEvent implements AuditRow {
  private parsed: { target?: Record<string, unknown>; detail?: Record<string, unknown> } = {};
  constructor(
    readonly seq: number, readonly ts: number, readonly actorId: string, readonly actorName: string, readonly action: string,
    readonly project: string | null, readonly env: string | null, readonly outcome: string, readonly ip: string | null,
    readonly requestId: string | null, readonly prevHash: Buffer, readonly hash: Buffer, readonly json: { target: string; detail: string },
  ) {}
  get target(): Record<string, unknown> { return (this.parsed.target ??= JSON.parse(this.json.target)); }
  get detail(): Record<string, unknown> { return (this.parsed.detail ??= JSON.parse(this.json.detail)); }
}
/** An array row of COLUMNS from better-sqlite3, whose BLOBs are already fresh Buffers: no copies. */
const storedFromColumns = (r: any[]): StoredEvent => new StoredEvent(
  Number(r[0]), Number(r[1]), r[2], r[3], r[4], r[5] ?? null, r[6] ?? null, r[8], r[9] ?? null, r[10] ?? null, r[12], r[13], { target: r[7], detail: r[11] },
);
const storedFromRow = (r: any): StoredEvent => new StoredEvent(
  Number(r.seq), Number(r.ts), r.actor_id, r.actor_name, r.action, r.project ?? null, r.env ?? null, r.outcome, r.ip ?? null, r.request_id ?? null,
  Buffer.from(r.prev_hash), Buffer.from(r.hash), { target: r.target, detail: r.detail },
);
const INSERT_SQL = 'insert into audit_events (seq, ts, actor_id, actor_name, action, project, env, target, outcome, ip, request_id, detail, prev_hash, hash) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
/** Rows per multi-row insert: 14 columns each, well inside PostgreSQL's 65,535 bind parameters. */
const INSERT_CHUNK = 1000;

const toDbRow = (e: AuditRow) => ({
  seq: e.seq, ts: e.ts, actor_id: e.actorId, actor_name: e.actorName, action: e.action, project: e.project, env: e.env,
  target: e.json?.target ?? JSON.stringify(e.target), outcome: e.outcome, ip: e.ip, request_id: e.requestId, detail: e.json?.detail ?? JSON.stringify(e.detail),
  prev_hash: e.prevHash, hash: e.hash,
});

export function auditStoreFactory(db: Db) {
  return {
    /** Reads the chain head, locking it on PostgreSQL until the transaction ends. */
    async lockHead(tx: Tx): Promise<{ seq: number; hash: Buffer } | null> {
      const f = fastTx(tx);
      if (f) {
        // SQLite: the transaction already holds the database's write lock.
        const r = f.get<{ seq: number; hash: Buffer }>('select seq, hash from audit_head where id = 1');
        return r ? { seq: Number(r.seq), hash: Buffer.from(r.hash) } : null;
      }
      const locked = lockedHead(tx);
      if (locked) return locked;
      const q = tx('audit_head').where({ id: 1 });
      if (isPostgres(tx)) q.forUpdate();
      const r = await q.first();
      return r ? { seq: Number(r.seq), hash: Buffer.from(r.hash) } : null;
    },
    async initHead(hash: Buffer, tx: Tx): Promise<void> {
      await tx('audit_head').insert({ id: 1, seq: 0, hash }).onConflict('id').ignore();
    },
    /**
     * Inserts the chained events and moves the head to the last of them.
     * On PostgreSQL the last chunk of rows and the head update are one
     * statement (a data-modifying CTE): one round trip under the head lock.
     */
    async append(rows: AuditRow[], seq: number, hash: Buffer, tx: Tx): Promise<void> {
      const f = fastTx(tx);
      if (f) {
        for (const e of rows) {
          f.run(INSERT_SQL, e.seq, e.ts, e.actorId, e.actorName, e.action, e.project, e.env, e.json?.target ?? JSON.stringify(e.target), e.outcome, e.ip, e.requestId, e.json?.detail ?? JSON.stringify(e.detail), e.prevHash, e.hash);
        }
        f.run('update audit_head set seq = ?, hash = ? where id = 1', seq, hash);
        return;
      }
      let i = 0;
      for (; rows.length - i > INSERT_CHUNK; i += INSERT_CHUNK) await tx('audit_events').insert(rows.slice(i, i + INSERT_CHUNK).map(toDbRow));
      const head = tx('audit_head').where({ id: 1 }).update({ seq, hash });
      if (i < rows.length && isPostgres(tx)) {
        const ins = tx('audit_events').insert(rows.slice(i).map(toDbRow)).toSQL();
        const upd = head.toSQL();
        await tx.raw(`with ins as (${ins.sql}) ${upd.sql}`, [...ins.bindings, ...upd.bindings]);
      } else {
        if (i < rows.length) await tx('audit_events').insert(rows.slice(i).map(toDbRow));
        await head;
      }
      if (lockedHead(tx)) rememberHead(tx, { seq, hash });
    },
    async list(f: AuditFilter, tx?: Tx): Promise<AuditRow[]> {
      const q = (tx ?? db)('audit_events');
      if (f.from !== undefined) q.where('ts', '>=', f.from);
      if (f.to !== undefined) q.where('ts', '<', f.to);
      if (f.actor) q.where((w) => w.where('actor_id', f.actor!).orWhere('actor_name', f.actor!));
      if (f.action) {
        // "secret.*": a literal prefix. LIKE's own wildcards in it are escaped, the same way on both engines.
        if (f.action.endsWith('*')) q.whereRaw("?? like ? escape '\\'", ['action', f.action.slice(0, -1).replace(/[\\%_]/g, (c) => `\\${c}`) + '%']);
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
    /** Streams the events with seq <= `upTo` in seq order, in pages (memory stays bounded). */
    /** Events 1..upTo in seq order, in pages, with the stored text of target and detail (for verification). */
    async *iterate(upTo: number, pageSize = 5000, tx?: Tx): AsyncGenerator<AuditRow & { json: { target: string; detail: string } }> {
      let after = -1;
      const f = fastSql(db, tx);
      if (f) {
        for (;;) {
          // Smaller pages than knex's: array rows, and less garbage held at once.
          const page = Math.min(pageSize, 1000);
          const rows = f.rows(`select ${COLUMNS} from audit_events where seq > ? and seq <= ? order by seq limit ?`, after, upTo, page);
          if (rows.length === 0) return;
          for (const r of rows) yield storedFromColumns(r);
          after = Number(rows[rows.length - 1][0]);
          if (rows.length < page) return;
          // The statements above are synchronous: let other requests in between pages.
          await new Promise((res) => setImmediate(res));
        }
      }
      for (;;) {
        const rows: any[] = await (tx ?? db)('audit_events').where('seq', '>', after).andWhere('seq', '<=', upTo).orderBy('seq').limit(pageSize);
        if (rows.length === 0) return;
        for (const r of rows) yield storedFromRow(r);
        after = Number(rows[rows.length - 1].seq);
        if (rows.length < pageSize) return;
      }
    },
    /** One event by seq, or null. */
    async get(seq: number, tx?: Tx): Promise<AuditRow | null> {
      const f = fastSql(db, tx);
      const r = f ? f.get('select * from audit_events where seq = ?', seq) : await (tx ?? db)('audit_events').where({ seq }).first();
      return r ? toAudit(r) : null;
    },
    /** Lowest and highest seq in the table (null when it is empty). */
    async bounds(tx?: Tx): Promise<{ min: number; max: number } | null> {
      const f = fastSql(db, tx);
      const r: any = f ? f.get('select min(seq) as min, max(seq) as max from audit_events') : await (tx ?? db)('audit_events').min({ min: 'seq' }).max({ max: 'seq' }).first();
      return r && r.max !== null && r.max !== undefined ? { min: Number(r.min), max: Number(r.max) } : null;
    },
    /** The lowest seq above `seq`, or null. */
    async firstAfter(seq: number, tx?: Tx): Promise<number | null> {
      const f = fastSql(db, tx);
      const r: any = f ? f.get('select min(seq) as s from audit_events where seq > ?', seq) : await (tx ?? db)('audit_events').where('seq', '>', seq).min({ s: 'seq' }).first();
      return r && r.s !== null && r.s !== undefined ? Number(r.s) : null;
    },
    async head(tx?: Tx): Promise<{ seq: number; hash: Buffer } | null> {
      const f = fastSql(db, tx);
      const r = f ? f.get('select * from audit_head where id = 1') : await (tx ?? db)('audit_head').where({ id: 1 }).first();
      return r ? { seq: Number(r.seq), hash: Buffer.from(r.hash) } : null;
    },
  };
}
export type AuditStore = ReturnType<typeof auditStoreFactory>;
