import { transaction, type Db, type Tx } from './db.js';
import { query, sql } from './sql.js';

/** A web UI session (docs/ui.md): its child token, and the token it acts for as that token's row holds it now. */
export interface SessionRow {
  tokenId: string;
  parentId: string;
  createdAt: number;
  lastSeenAt: number;
  idleMs: number;
  parent: { name: string; expiresAt: number | null; parentId: string | null } | null;
}

const Q = {
  insert: query('insert into ui_sessions (token_id, parent_id, created_at, last_seen_at, idle_ms) values (?, ?, ?, ?, ?)'),
  get: query(`select s.token_id, s.parent_id, s.created_at, s.last_seen_at, s.idle_ms,
    p.name as p_name, p.expires_at as p_expires_at, p.parent_id as p_parent_id, p.id as p_id
    from ui_sessions s left join tokens p on p.id = s.parent_id where s.token_id = ?`),
  // Only forward: a request that read an older time never moves it back.
  touch: query('update ui_sessions set last_seen_at = ? where token_id = ? and last_seen_at < ?'),
  remove: query('delete from ui_sessions where token_id = ?'),
  idle: query('select token_id from ui_sessions where last_seen_at + idle_ms < ? order by last_seen_at limit 100'),
};

export function sessionStoreFactory(db: Db) {
  return {
    async insert(r: Omit<SessionRow, 'parent'>, tx: Tx): Promise<void> {
      await sql(db, tx).run(Q.insert, r.tokenId, r.parentId, r.createdAt, r.lastSeenAt, r.idleMs);
    },
    async get(tokenId: string, tx?: Tx): Promise<SessionRow | null> {
      const r = (await sql(db, tx).get(Q.get, tokenId)) as any;
      if (!r) return null;
      return {
        tokenId: r.token_id,
        parentId: r.parent_id,
        createdAt: Number(r.created_at),
        lastSeenAt: Number(r.last_seen_at),
        idleMs: Number(r.idle_ms),
        parent:
          r.p_id == null
            ? null
            : { name: r.p_name, expiresAt: r.p_expires_at == null ? null : Number(r.p_expires_at), parentId: r.p_parent_id ?? null },
      };
    },
    async touch(tokenId: string, now: number, tx?: Tx): Promise<void> {
      // Outside a transaction, sql() reads through SQLite's query-only reader: a write needs one (as token-store's touch).
      if (tx) await sql(db, tx).run(Q.touch, now, tokenId, now);
      else
        await transaction(db, async (t) => {
          await sql(db, t).run(Q.touch, now, tokenId, now);
        });
    },
    async remove(tokenId: string, tx?: Tx): Promise<void> {
      await sql(db, tx).run(Q.remove, tokenId);
    },
    /** Up to 100 sessions idle since before `now`: their tokens are to be revoked. */
    async idle(now: number, tx?: Tx): Promise<string[]> {
      return (await sql(db, tx).all<{ token_id: string }>(Q.idle, now)).map((r) => r.token_id);
    },
  };
}
export type SessionStore = ReturnType<typeof sessionStoreFactory>;
