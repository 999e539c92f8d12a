import { transaction, type Db, type Tx } from './db.js';
import { foreignVersion } from './sqlite-fast.js';
import { lookupBatch, type LookupBatch } from './lookup-batch.js';
import { query, sql } from './sql.js';
import { transactionEnded } from './knex-internals.js';

export interface TokenRow {
  id: string;
  name: string;
  description: string;
  hash: Buffer;
  scopes: string[];
  parentId: string | null;
  cidrs: string[];
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

const toToken = (r: any): TokenRow => ({
  id: r.id,
  name: r.name,
  description: r.description,
  hash: Buffer.from(r.hash),
  scopes: JSON.parse(r.scopes),
  parentId: r.parent_id,
  cidrs: JSON.parse(r.cidrs),
  createdAt: Number(r.created_at),
  expiresAt: r.expires_at == null ? null : Number(r.expires_at),
  revokedAt: r.revoked_at == null ? null : Number(r.revoked_at),
  lastUsedAt: r.last_used_at == null ? null : Number(r.last_used_at),
});

const COLS = 'id, name, description, hash, scopes, parent_id, cidrs, created_at, expires_at, revoked_at, last_used_at';

/**
 * The earliest revocation time among the ancestors of token `t` (null: none
 * revoked). The caller compares it with its clock, so the result does not
 * depend on when it was read and can be cached.
 */
const CHAIN_REVOKED_AT =
  `case when t.parent_id is null then null else (
      with recursive chain(id, parent_id, ` +
  `revoked_at, depth) as (
        select p.id, p.parent_id, p.revoked_at, 1 from tokens p where ` +
  `p.id = t.parent_id
        union all
        select x.id, x.parent_id, x.revoked_at, chain.depth ` +
  `+ 1 from tokens x join chain on x.id = chain.parent_id where chain.depth < 100)
      select ` +
  `min(revoked_at) from chain) end as chain_revoked_at`;
const AUTH_COLS = 't.id, t.name, t.description, t.scopes, t.parent_id, t.cidrs, t.created_at, t.expires_at, t.revoked_at, t.last_used_at';

const Q = {
  insert: query(
    'insert into tokens (id, name, description, hash, scopes, parent_id, cidrs, created_at, expires_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  ),
  /** A token row (without re-reading the hash it is looked up by) and its ancestors' earliest revocation, in one statement. */
  forAuth: query(`select ${AUTH_COLS}, ${CHAIN_REVOKED_AT} from tokens t where t.hash = ?`),
  /**
   * The same, plus the failed-authentication block of the caller's address
   * (shared limit, PostgreSQL): the start of a window in which it reached
   * the limit, or null. The block row always comes back, with or without a
   * token, so an unknown token from a blocked address is told apart from one
   * from an address that is not.
   */
  forAuthGuarded: query(
    `select b.blocked_since, ${AUTH_COLS}, ${CHAIN_REVOKED_AT}
    from (select max(f.window_start) ` +
      `as blocked_since from auth_failures f where f.ip = ? and f.failures >= ? and f.window_start > ` +
      `?) b
    left join tokens t on t.hash = ?`,
  ),
  /**
   * PostgreSQL, outside a transaction: the lookups of concurrent requests in
   * one statement (lookup-batch.ts), each with its address's block (an
   * address of null is never blocked).
   */
  forAuthMany: query(
    `select k.h as k_h, k.ip as k_ip, b.blocked_since, ${AUTH_COLS}, ${CHAIN_REVOKED_AT}
    from ` +
      `unnest(?::bytea[], ?::text[]) as k(h, ip)
    left join lateral (select max(f.window_start) as ` +
      `blocked_since from auth_failures f where f.ip = k.ip and f.failures >= ? and f.window_start > ` +
      `?) b on true
    left join tokens t on t.hash = k.h`,
  ),
  byId: query(`select ${COLS} from tokens where id = ?`),
  list: query(`select ${COLS} from tokens where (revoked_at is null or ?) and name = coalesce(?, name) order by created_at, id`),
  all: query(`select ${COLS} from tokens order by created_at, id`),
  /** parentId and its ancestors, nearest first. */
  ancestors: query(
    `with recursive chain(id, parent_id, depth) as (
      select id, parent_id, 0 from tokens ` +
      `where id = ?
      union all
      select x.id, x.parent_id, chain.depth + 1 from tokens x join ` +
      `chain on x.id = chain.parent_id where chain.depth < 100)
    select ` +
      `${COLS.split(', ')
        .map((c) => `t.${c}`)
        .join(', ')} from chain join tokens t on t.id = chain.id ` +
      `order by chain.depth`,
  ),
  tree: query(
    'with recursive tree(id) as (select id from tokens where id = ? union all select t.id from tokens ' +
      't join tree on t.parent_id = tree.id) select id from tree',
  ),
  revokeIds: query('update tokens set revoked_at = ? where revoked_at is null and id in json_text_list(?)'),
  touch: query('update tokens set last_used_at = ? where id = ?'),
};

type AuthHit = { token: Readonly<TokenRow>; chainRevokedAt: number | null };

/** A forAuth row (which leaves out the hash the caller looked up by). */
function authRow(r: any, hash: Buffer): AuthHit {
  return { token: Object.freeze(toToken({ ...r, hash })), chainRevokedAt: r.chain_revoked_at == null ? null : Number(r.chain_revoked_at) };
}

/** The caller's address and the failed-authentication limit to check it against in the token lookup. */
export interface FailGuard {
  ip: string;
  limit: number;
  windowMs: number;
}

export interface AuthLookup {
  /** The token as the database holds it now, or null when no token has this hash. */
  token: (TokenRow & { chainRevoked: boolean }) | null;
  /** With a guard: when the window in which the address reached the limit started (null: not blocked). */
  blockedSince: number | null;
}

/** Told of every lookup authentication makes (the metrics): a hit or miss of SQLite's cache, or a read that is never cached (PostgreSQL, a guarded read). */
export interface TokenLookupObserver {
  hit(): void;
  miss(): void;
  uncached(): void;
}

/** Known tokens cached at most (one small entry each); beyond that the cache starts over. */
const AUTH_CACHE_MAX = 10_000;

export function tokenStoreFactory(db: Db, lookups: TokenLookupObserver | null = null) {
  // SQLite: the rows forAuth reads on every request, cached in this process.
  // The cache holds only while no token can have changed: it starts over
  // whenever another connection (another server process sharing the file,
  // the CLI, an operator's sqlite3) has committed anything, and whenever a
  // revocation made by this process has committed. Unknown tokens are never
  // cached. Expiry, revocation times and the CIDR list are still compared
  // with the clock and the caller on every request. PostgreSQL: nothing is
  // cached; every request reads the row (one statement), so a change made
  // through any server holds on every server once it has committed.
  const authCache = new Map<string, AuthHit>();
  let authCacheVersion: number | null = null;

  // PostgreSQL: concurrent lookups (with the same guard settings) go together.
  type Key = { hash: Buffer; ip: string | null; guard: FailGuard | null };
  const keyOf = (k: Key) => `${k.hash.toString('base64')}\u0000${k.ip ?? ''}`;
  let batch: LookupBatch<Key, { hit: AuthHit | undefined; blockedSince: number | null }> | null = null;
  let batchGuard: string | null = null;
  function batchFor(guard: FailGuard | null) {
    const g = guard ? `${guard.limit}/${guard.windowMs}` : '';
    if (batch && batchGuard === g) return batch;
    batchGuard = g;
    return (batch = lookupBatch(async (keys) => {
      const now = Date.now();
      const rows = await sql(db).all(
        Q.forAuthMany,
        keys.map((k) => k.hash),
        keys.map((k) => (guard ? k.ip : null)),
        guard?.limit ?? 1,
        now - (guard?.windowMs ?? 0),
      );
      return new Map(
        rows.map((r) => [
          keyOf({ hash: Buffer.from(r.k_h), ip: r.k_ip, guard }),
          {
            hit: r.id != null ? authRow(r, Buffer.from(r.k_h)) : undefined,
            blockedSince: r.blocked_since == null ? null : Number(r.blocked_since),
          },
        ]),
      );
    }, keyOf));
  }

  const store = {
    async insert(t: Omit<TokenRow, 'revokedAt' | 'lastUsedAt'>, tx: Tx): Promise<void> {
      await sql(db, tx).run(
        Q.insert,
        t.id,
        t.name,
        t.description,
        t.hash,
        JSON.stringify(t.scopes),
        t.parentId,
        JSON.stringify(t.cidrs),
        t.createdAt,
        t.expiresAt,
      );
    },
    /**
     * What authentication needs: the token with this hash, and whether any
     * ancestor is revoked at `now` (revokeTree marks descendants, but a
     * child inserted while its parent was being revoked escapes that
     * statement). As the database holds it now: read on every request, or on
     * SQLite from the cache above while nothing can have changed it. With
     * `guard`, the same statement also tells whether the address is blocked
     * by the failed-authentication limit (never cached).
     */
    async forAuth(hash: Buffer, now: number, opts: { guard?: FailGuard; tx?: Tx } = {}): Promise<AuthLookup> {
      const { guard, tx } = opts;
      const run = sql(db, tx);
      let hit: AuthHit | undefined;
      let blockedSince: number | null = null;
      if (run.engine === 'postgres' && (tx === undefined || tx === db)) {
        lookups?.uncached();
        const r = await batchFor(guard ?? null).load({ hash, ip: guard?.ip ?? null, guard: guard ?? null });
        hit = r?.hit;
        blockedSince = r?.blockedSince ?? null;
      } else if (guard) {
        lookups?.uncached();
        const r = await run.get(Q.forAuthGuarded, guard.ip, guard.limit, now - guard.windowMs, hash);
        blockedSince = r?.blocked_since == null ? null : Number(r.blocked_since);
        if (r?.id != null) hit = authRow(r, hash);
      } else if (run.engine === 'sqlite') {
        const version = tx === undefined ? foreignVersion(db) : null;
        if (version !== authCacheVersion) {
          authCache.clear();
          authCacheVersion = version;
        }
        const key = hash.toString('base64');
        hit = version === null ? undefined : authCache.get(key);
        if (hit) lookups?.hit();
        else lookups?.miss();
        if (!hit) {
          const r = await run.get(Q.forAuth, hash);
          if (r) {
            hit = authRow(r, hash);
            if (version !== null) {
              if (authCache.size >= AUTH_CACHE_MAX) authCache.clear();
              authCache.set(key, hit);
            }
          }
        }
      } else {
        lookups?.uncached();
        const r = await run.get(Q.forAuth, hash);
        if (r) hit = authRow(r, hash);
      }
      return {
        token: hit ? { ...hit.token, chainRevoked: hit.chainRevokedAt !== null && hit.chainRevokedAt <= now } : null,
        blockedSince,
      };
    },
    async byId(id: string, tx?: Tx): Promise<TokenRow | null> {
      const r = await sql(db, tx).get(Q.byId, id);
      return r ? toToken(r) : null;
    },
    async list(filter: { includeRevoked?: boolean; name?: string }, tx?: Tx): Promise<TokenRow[]> {
      return (await sql(db, tx).all(Q.list, !!filter.includeRevoked, filter.name || null)).map(toToken);
    },
    /** The token's ancestors, nearest first. */
    async ancestors(parentId: string | null, tx?: Tx): Promise<TokenRow[]> {
      if (!parentId) return [];
      return (await sql(db, tx).all(Q.ancestors, parentId)).map(toToken);
    },
    /** Revokes a token and every descendant; returns the ids of the whole tree. */
    async revokeTree(id: string, at: number, tx: Tx): Promise<string[]> {
      // No cached row may outlive this revocation: the cache starts over
      // once its transaction has ended (committed or rolled back). Rows
      // cached until then are the committed state, which this has not yet
      // changed.
      const ended = () => authCache.clear();
      const execution = transactionEnded(tx);
      if (execution) execution.then(ended, ended);
      try {
        const run = sql(db, tx);
        const ids = (await run.all<{ id: string }>(Q.tree, id)).map((r) => r.id);
        if (ids.length) await run.run(Q.revokeIds, at, JSON.stringify(ids));
        return ids;
      } finally {
        if (!execution) ended(); // outside a transaction each statement has committed by now
      }
    },
    async touch(id: string, at: number, tx?: Tx): Promise<void> {
      // Outside a transaction, sql() reads through SQLite's query-only reader: a write needs one.
      if (tx) await sql(db, tx).run(Q.touch, at, id);
      else
        await transaction(db, async (t) => {
          await sql(db, t).run(Q.touch, at, id);
        });
    },
    async all(tx?: Tx): Promise<TokenRow[]> {
      return (await sql(db, tx).all(Q.all)).map(toToken);
    },
  };
  return store;
}
export type TokenStore = ReturnType<typeof tokenStoreFactory>;
