import type { Db, Tx } from './db.js';
import { fastSql } from './sqlite-fast.js';

export interface TokenRow {
  id: string; name: string; description: string; hash: Buffer; scopes: string[]; parentId: string | null; cidrs: string[];
  createdAt: number; expiresAt: number | null; revokedAt: number | null; lastUsedAt: number | null;
}

const toToken = (r: any): TokenRow => ({
  id: r.id, name: r.name, description: r.description, hash: Buffer.from(r.hash), scopes: JSON.parse(r.scopes), parentId: r.parent_id,
  cidrs: JSON.parse(r.cidrs), createdAt: Number(r.created_at), expiresAt: r.expires_at == null ? null : Number(r.expires_at),
  revokedAt: r.revoked_at == null ? null : Number(r.revoked_at), lastUsedAt: r.last_used_at == null ? null : Number(r.last_used_at),
});

const CHAIN_REVOKED_SQL = `with recursive chain(id, parent_id, revoked_at, depth) as (
    select id, parent_id, revoked_at, 1 from tokens where id = ?
    union all
    select t.id, t.parent_id, t.revoked_at, chain.depth + 1 from tokens t join chain on t.id = chain.parent_id where chain.depth < 100)
  select count(*) as n from chain where revoked_at is not null and revoked_at <= ?`;

/** A token row (without re-reading its hash) and whether an ancestor of it is revoked at a given time, in one statement. */
const FOR_AUTH_SQL = `select t.id, t.name, t.description, t.scopes, t.parent_id, t.cidrs, t.created_at, t.expires_at, t.revoked_at, t.last_used_at,
    case when t.parent_id is null then 0 else (
      with recursive chain(id, parent_id, revoked_at, depth) as (
        select p.id, p.parent_id, p.revoked_at, 1 from tokens p where p.id = t.parent_id
        union all
        select x.id, x.parent_id, x.revoked_at, chain.depth + 1 from tokens x join chain on x.id = chain.parent_id where chain.depth < 100)
      select count(*) from chain where revoked_at is not null and revoked_at <= ?) end as chain_revoked
  from tokens t where t.hash = ?`;

export function tokenStoreFactory(db: Db) {
  const store = {
    async insert(t: Omit<TokenRow, 'revokedAt' | 'lastUsedAt'>, tx: Tx): Promise<void> {
      await tx('tokens').insert({
        id: t.id, name: t.name, description: t.description, hash: t.hash, scopes: JSON.stringify(t.scopes), parent_id: t.parentId,
        cidrs: JSON.stringify(t.cidrs), created_at: t.createdAt, expires_at: t.expiresAt,
      });
    },
    async byHash(hash: Buffer, tx?: Tx): Promise<TokenRow | null> {
      const f = fastSql(db, tx);
      const r = f ? f.get('select * from tokens where hash = ?', hash) : await (tx ?? db)('tokens').where({ hash }).first();
      return r ? toToken(r) : null;
    },
    /**
     * What authentication needs: the token with this hash, and whether any
     * ancestor is revoked at `now` (revokeTree marks descendants, but a
     * child inserted while its parent was being revoked escapes that
     * statement). One read of the current database state per request.
     */
    async forAuth(hash: Buffer, now: number, tx?: Tx): Promise<(TokenRow & { chainRevoked: boolean }) | null> {
      const f = fastSql(db, tx);
      if (f) {
        const r = f.get(FOR_AUTH_SQL, now, hash);
        if (!r) return null;
        r.hash = hash;
        return Object.assign(toToken(r), { chainRevoked: Number(r.chain_revoked) > 0 });
      }
      const t = await store.byHash(hash, tx);
      if (!t) return null;
      return Object.assign(t, { chainRevoked: t.parentId !== null && (await store.chainRevoked(t.parentId, now, tx)) });
    },
    async byId(id: string, tx?: Tx): Promise<TokenRow | null> {
      const f = fastSql(db, tx);
      const r = f ? f.get('select * from tokens where id = ?', id) : await (tx ?? db)('tokens').where({ id }).first();
      return r ? toToken(r) : null;
    },
    async list(filter: { includeRevoked?: boolean; name?: string }, tx?: Tx): Promise<TokenRow[]> {
      const q = (tx ?? db)('tokens').orderBy('created_at', 'asc').orderBy('id');
      if (!filter.includeRevoked) q.whereNull('revoked_at');
      if (filter.name) q.where({ name: filter.name });
      return (await q).map(toToken);
    },
    /** The token's ancestors, nearest first (id, revokedAt, expiresAt). */
    async ancestors(parentId: string | null, tx?: Tx): Promise<TokenRow[]> {
      const out: TokenRow[] = [];
      let cur = parentId;
      const seen = new Set<string>();
      while (cur && !seen.has(cur)) {
        seen.add(cur);
        const r = await (tx ?? db)('tokens').where({ id: cur }).first();
        if (!r) break;
        const t = toToken(r);
        out.push(t);
        cur = t.parentId;
      }
      return out;
    },
    /** Is this token, or any ancestor of it, revoked at `now`? One query, depth-capped against cycles. */
    async chainRevoked(id: string, now: number, tx?: Tx): Promise<boolean> {
      const f = fastSql(db, tx);
      if (f) return Number(f.get<{ n: number }>(CHAIN_REVOKED_SQL, id, now)!.n) > 0;
      const rows = await (tx ?? db).raw(
        `with recursive chain(id, parent_id, revoked_at, depth) as (
           select id, parent_id, revoked_at, 1 from tokens where id = ?
           union all
           select t.id, t.parent_id, t.revoked_at, chain.depth + 1 from tokens t join chain on t.id = chain.parent_id where chain.depth < 100)
         select count(*) as n from chain where revoked_at is not null and revoked_at <= ?`, [id, now]);
      const r = (Array.isArray(rows) ? rows : rows.rows)[0];
      return Number(r?.n ?? 0) > 0;
    },
    /** Revokes a token and every descendant in one statement; returns the ids revoked now. */
    async revokeTree(id: string, at: number, tx: Tx): Promise<string[]> {
      const rows = await tx.raw(
        `with recursive tree(id) as (select id from tokens where id = ? union all select t.id from tokens t join tree on t.parent_id = tree.id)
         select id from tree`, [id]);
      const ids: string[] = (Array.isArray(rows) ? rows : rows.rows).map((r: any) => r.id);
      for (let i = 0; i < ids.length; i += 500) {
        await tx('tokens').whereIn('id', ids.slice(i, i + 500)).whereNull('revoked_at').update({ revoked_at: at });
      }
      return ids;
    },
    async touch(id: string, at: number, tx?: Tx): Promise<void> {
      await (tx ?? db)('tokens').where({ id }).update({ last_used_at: at });
    },
    async all(tx?: Tx): Promise<TokenRow[]> {
      return (await (tx ?? db)('tokens').orderBy('created_at')).map(toToken);
    },
  };
  return store;
}
export type TokenStore = ReturnType<typeof tokenStoreFactory>;
