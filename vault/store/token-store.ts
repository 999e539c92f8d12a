import type { Db, Tx } from './db.js';
import type { Knex } from 'knex';
import { fastSql, foreignVersion } from './sqlite-fast.js';

export interface TokenRow {
  id: string; name: string; description: string; hash: Buffer; scopes: string[]; parentId: string | null; cidrs: string[];
  createdAt: number; expiresAt: number | null; revokedAt: number | null; lastUsedAt: number | null;
}

const toToken = (r: any): TokenRow => ({
  id: r.id, name: r.name, description: r.description, hash: Buffer.from(r.hash), scopes: JSON.parse(r.scopes), parentId: r.parent_id,
  cidrs: JSON.parse(r.cidrs), createdAt: Number(r.created_at), expiresAt: r.expires_at == null ? null : Number(r.expires_at),
  revokedAt: r.revoked_at == null ? null : Number(r.revoked_at), lastUsedAt: r.last_used_at == null ? null : Number(r.last_used_at),
});

/**
 * A token row (without re-reading its hash) and the earliest revocation time
 * among its ancestors (null: none revoked), in one statement. The caller
 * compares that time with its clock, so the result does not depend on when
 * it was read and can be cached.
 */
const FOR_AUTH_SQL = `select t.id, t.name, t.description, t.scopes, t.parent_id, t.cidrs, t.created_at, t.expires_at, t.revoked_at, t.last_used_at,
    case when t.parent_id is null then null else (
      with recursive chain(id, parent_id, revoked_at, depth) as (
        select p.id, p.parent_id, p.revoked_at, 1 from tokens p where p.id = t.parent_id
        union all
        select x.id, x.parent_id, x.revoked_at, chain.depth + 1 from tokens x join chain on x.id = chain.parent_id where chain.depth < 100)
      select min(revoked_at) from chain) end as chain_revoked_at
  from tokens t where t.hash = ?`;

/** A FOR_AUTH_SQL row (which leaves out the hash the caller looked up by). */
function authRow(r: any, hash: Buffer): { token: Readonly<TokenRow>; chainRevokedAt: number | null } {
  return { token: Object.freeze(toToken({ ...r, hash })), chainRevokedAt: r.chain_revoked_at == null ? null : Number(r.chain_revoked_at) };
}

/** Known tokens cached at most (one small entry each); beyond that the cache starts over. */
const AUTH_CACHE_MAX = 10_000;

export function tokenStoreFactory(db: Db) {
  // SQLite: the rows forAuth reads on every request, cached in this process.
  // The cache holds only while no token can have changed: it starts over
  // whenever another connection (another server process sharing the file,
  // the CLI, an operator's sqlite3) has committed anything, and whenever a
  // revocation made by this process has committed. Unknown tokens are never
  // cached. Expiry, revocation times and the CIDR list are still compared
  // with the clock and the caller on every request.
  const authCache = new Map<string, { token: Readonly<TokenRow>; chainRevokedAt: number | null }>();
  let authCacheVersion: number | null = null;

  const store = {
    async insert(t: Omit<TokenRow, 'revokedAt' | 'lastUsedAt'>, tx: Tx): Promise<void> {
      await tx('tokens').insert({
        id: t.id, name: t.name, description: t.description, hash: t.hash, scopes: JSON.stringify(t.scopes), parent_id: t.parentId,
        cidrs: JSON.stringify(t.cidrs), created_at: t.createdAt, expires_at: t.expiresAt,
      });
    },
    /**
     * What authentication needs: the token with this hash, and whether any
     * ancestor is revoked at `now` (revokeTree marks descendants, but a
     * child inserted while its parent was being revoked escapes that
     * statement). As the database holds it now: read on every request, or on
     * SQLite from the cache above while nothing can have changed it.
     */
    async forAuth(hash: Buffer, now: number, tx?: Tx): Promise<(TokenRow & { chainRevoked: boolean }) | null> {
      const f = fastSql(db, tx);
      let hit: ReturnType<typeof authRow> | undefined;
      if (f) {
        const version = tx === undefined ? foreignVersion(db) : null;
        if (version !== authCacheVersion) { authCache.clear(); authCacheVersion = version; }
        const key = hash.toString('base64');
        hit = version === null ? undefined : authCache.get(key);
        if (!hit) {
          const r = f.get(FOR_AUTH_SQL, hash);
          if (!r) return null;
          hit = authRow(r, hash);
          if (version !== null) {
            if (authCache.size >= AUTH_CACHE_MAX) authCache.clear();
            authCache.set(key, hit);
          }
        }
      } else {
        // PostgreSQL: the same statement, one round trip.
        const res = await (tx ?? db).raw(FOR_AUTH_SQL, [hash]);
        const r = (Array.isArray(res) ? res : res.rows)[0];
        if (!r) return null;
        hit = authRow(r, hash);
      }
      return { ...hit.token, chainRevoked: hit.chainRevokedAt !== null && hit.chainRevokedAt <= now };
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
    /** Revokes a token and every descendant in one statement; returns the ids revoked now. */
    async revokeTree(id: string, at: number, tx: Tx): Promise<string[]> {
      // No cached row may outlive this revocation: the cache starts over
      // once its transaction has ended (committed or rolled back). Rows
      // cached until then are the committed state, which this has not yet
      // changed.
      const ended = () => authCache.clear();
      const execution = (tx as Partial<Knex.Transaction>).executionPromise;
      if (execution) execution.then(ended, ended);
      try {
        const rows = await tx.raw(
          `with recursive tree(id) as (select id from tokens where id = ? union all select t.id from tokens t join tree on t.parent_id = tree.id)
           select id from tree`, [id]);
        const ids: string[] = (Array.isArray(rows) ? rows : rows.rows).map((r: any) => r.id);
        for (let i = 0; i < ids.length; i += 500) {
          await tx('tokens').whereIn('id', ids.slice(i, i + 500)).whereNull('revoked_at').update({ revoked_at: at });
        }
        return ids;
      } finally {
        if (!execution) ended(); // outside a transaction each statement has committed by now
      }
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
