import type { FastifyBaseLogger } from 'fastify';
import { randomBytes, randomTokenString } from '../../crypto/keyring.js';
import { checkTokenFormat } from 'hush-vault-sdk/token-format';
import { refuseTokenText } from './redact.js';
import { formatDuration, parseDuration } from '../../../common/duration.js';
import { ForbiddenError, HushError, InvalidRequestError, TokenNotFoundError, UnauthorizedError } from '../../errors.js';
import type { Tx } from '../../store/db.js';
import type { TokenRow, TokenStore } from '../../store/token-store.js';
import type { AuditContext, AuditInput, AuditService } from '../audit/audit-service.js';
import type { KeyService } from '../key/key-service.js';
import type { AuthFailLimit } from '../limits/auth-fail-limit.js';
import { cidrList, cidrWithin, ipAllowed, parseCidr } from './cidr.js';
import { formatGrant, grantsCover, parseGrant, type Grant } from './grants.js';

/** An authenticated caller. Holds the token's id, never its string. */
export interface Principal {
  tokenId: string;
  name: string;
  grants: Grant[];
  scopes: string[];
  cidrs: string[];
  expiresAt: number | null;
  parentId: string | null;
}

export interface CreateTokenInput {
  name: string;
  scopes: string[];
  ttl?: string;
  cidrs?: string[];
  description?: string;
}

export interface TokenServiceDeps {
  tokenStore: TokenStore;
  keys: Pick<KeyService, 'tokenHash'>;
  audit: Pick<AuditService, 'run' | 'record'>;
  log: FastifyBaseLogger;
  failLimit: AuthFailLimit;
  defaultTtlMs: number;
  maxTtlMs: number;
  /** Failed authentications from one address within `windowMs` that make an `auth.fail_burst` event (webhooks' security alert). */
  failBurst?: { threshold: number; windowMs: number };
}

/** Why authentication failed: for logs and audit only, never sent to the caller. */
export type AuthFailReason = 'missing' | 'malformed' | 'unknown' | 'expired' | 'revoked' | 'cidr' | 'session_token_as_bearer';

export class AuthFailure extends UnauthorizedError {
  constructor(readonly reason: AuthFailReason) {
    super('missing, invalid, expired or revoked token');
  }
}

/** The address reached the failed-authentication limit: every authenticated request from it gets 429 until its window ends. */
/** A token that services/identity may not issue (the reason goes to the audit event, not the caller). */
export class IssueRefused extends Error {}

export class AuthLockedOut extends HushError {
  constructor(readonly retryAfterS: number) {
    super('rate_limited', 429, 'too many failed authentications from this address; retry after the time in Retry-After');
  }
}

const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
async function newTokenId(): Promise<string> {
  const bytes = await randomBytes(40);
  let id = 'tok_';
  for (const b of bytes) if (b < 248 && id.length < 24) id += ALNUM[b % 62];
  return id;
}

export function publicToken(t: TokenRow) {
  return {
    id: t.id,
    name: t.name,
    description: t.description,
    scopes: t.scopes,
    parentId: t.parentId,
    cidrs: t.cidrs,
    createdAt: new Date(t.createdAt).toISOString(),
    expiresAt: t.expiresAt === null ? null : new Date(t.expiresAt).toISOString(),
    revokedAt: t.revokedAt === null ? null : new Date(t.revokedAt).toISOString(),
    lastUsedAt: t.lastUsedAt === null ? null : new Date(t.lastUsedAt).toISOString(),
  };
}

export function tokenServiceFactory({ tokenStore, keys, audit, log, failLimit, defaultTtlMs, maxTtlMs, failBurst }: TokenServiceDeps) {
  const TOUCH_EVERY_MS = 60_000;
  const lastTouch = new Map<string, number>();

  // Parsed grants by scope list: parsing is a pure function of the scopes
  // read on every request, so this caches no validity, only the parse.
  const parsedGrants = new Map<string, Grant[]>();
  function grantsOf(scopes: string[]): Grant[] {
    const k = scopes.join('\n');
    let g = parsedGrants.get(k);
    if (!g) {
      if (parsedGrants.size >= 10_000) parsedGrants.clear();
      parsedGrants.set(k, (g = Object.freeze(scopes.map((x) => Object.freeze(parseGrant(x)))) as Grant[]));
    }
    return g;
  }

  function toPrincipal(t: TokenRow): Principal {
    return {
      tokenId: t.id,
      name: t.name,
      grants: grantsOf(t.scopes),
      scopes: t.scopes,
      cidrs: t.cidrs,
      expiresAt: t.expiresAt,
      parentId: t.parentId,
    };
  }

  function touch(t: TokenRow, now: number): void {
    const last = Math.max(t.lastUsedAt ?? 0, lastTouch.get(t.id) ?? 0);
    if (now - last < TOUCH_EVERY_MS) return;
    lastTouch.set(t.id, now);
    tokenStore
      .touch(t.id, now)
      .catch((e) => log.warn({ tokenId: t.id, err: { message: (e as Error).message } }, 'could not update token last_used_at'));
  }

  const isRoot = (p: Principal) => p.grants.some((g) => g.kind === 'root');

  /**
   * Who may see and revoke a token: root; the token itself; any ancestor;
   * and an admin:P holder when every grant of the token lies within its
   * admin grants ("tokens within P"). A token's descendants never hold more
   * than it does, so revoking its tree never reaches outside P either.
   */
  function manages(p: Principal, t: TokenRow, ancestorIds: ReadonlySet<string>): boolean {
    if (isRoot(p) || t.id === p.tokenId || ancestorIds.has(p.tokenId)) return true;
    const admin = p.grants.filter((g) => g.kind === 'admin');
    if (admin.length === 0) return false;
    try {
      return t.scopes.every((s) => grantsCover(admin, parseGrant(s)));
    } catch {
      return false;
    }
  }

  async function managedToken(p: Principal, id: string): Promise<TokenRow | null> {
    const t = await tokenStore.byId(id);
    if (!t) return null;
    const chain = await tokenStore.ancestors(t.parentId);
    return manages(p, t, new Set(chain.map((a) => a.id))) ? t : null;
  }

  return {
    /**
     * Resolves a bearer token to a Principal. Every failure throws the same
     * AuthFailure (one public message); `reason` is for logs and audit. An
     * address blocked by the failed-authentication limit gets AuthLockedOut
     * before its token is looked at, valid or not.
     */
    async authenticate(token: string | undefined, ip: string | null, now = Date.now()): Promise<Principal> {
      if (ip !== null) {
        const since = failLimit.localBlockedSince(ip, now);
        if (since !== null) throw new AuthLockedOut(failLimit.retryAfter(since, now));
      }
      const guard = ip === null ? null : failLimit.guard(ip);
      if (!token || !checkTokenFormat(token).ok) {
        // No lookup to carry the shared check: read it on its own (this request fails either way).
        const since = guard ? await failLimit.sharedBlockedSince(ip!, now) : null;
        if (since !== null) throw new AuthLockedOut(failLimit.retryAfter(since, now));
        throw new AuthFailure(token ? 'malformed' : 'missing');
      }
      const hash = await keys.tokenHash(token);
      // The row and its ancestors' revocation as the database holds them now,
      // read on every request: a revocation is effective on the very next one.
      // With a shared limit, the same statement reads the address's block.
      const { token: t, blockedSince } = await tokenStore.forAuth(hash, now, guard ? { guard } : {});
      if (blockedSince !== null) throw new AuthLockedOut(failLimit.retryAfter(blockedSince, now));
      if (!t) throw new AuthFailure('unknown');
      if (t.revokedAt !== null && t.revokedAt <= now) throw new AuthFailure('revoked');
      if (t.expiresAt !== null && t.expiresAt <= now) throw new AuthFailure('expired');
      // revokeTree marks every descendant, but a child inserted while its
      // parent was being revoked would escape that statement; checking the
      // chain here closes the race on every process sharing the database.
      if (t.chainRevoked) throw new AuthFailure('revoked');
      if (!ipAllowed(cidrList(t.cidrs), ip)) throw new AuthFailure('cidr');
      touch(t, now);
      return toPrincipal(t);
    },

    /** Throws AuthLockedOut when `ip` is blocked by the failed-authentication limit (a login that makes no token lookup). */
    async assertNotLockedOut(ip: string | null, now = Date.now()): Promise<void> {
      if (ip === null) return;
      const since = failLimit.localBlockedSince(ip, now) ?? (failLimit.guard(ip) ? await failLimit.sharedBlockedSince(ip, now) : null);
      if (since !== null) throw new AuthLockedOut(failLimit.retryAfter(since, now));
    },

    /** Counts a failed authentication from `ip`; returns the address's failures in its current window. */
    /**
     * Counts a failed authentication. The one that brings the address's
     * count in the window to the burst threshold also records an
     * `auth.fail_burst` event: once per address and window, on every
     * server together on PostgreSQL (the count is shared there).
     */
    async recordFailure(ip: string, now: number, requestId: string | null = null): Promise<number> {
      const failures = await failLimit.fail(ip, now);
      if (failBurst && failures === failBurst.threshold) {
        await audit
          .record(
            { actorId: 'anonymous', actorName: 'anonymous', ip, requestId },
            {
              action: 'auth.fail_burst',
              outcome: 'denied',
              detail: { count: failures, threshold: failBurst.threshold, windowSeconds: Math.round(failBurst.windowMs / 1000) },
            },
          )
          .catch((e: Error) => log.warn({ err: { message: e.message } }, 'auth.fail_burst could not be recorded'));
      }
      return failures;
    },

    /** Creates the first root token (init). Returns the token string, shown once. */
    async createRoot(tx: Tx, name = 'root'): Promise<{ token: string; id: string }> {
      const token = await randomTokenString();
      const id = await newTokenId();
      await tokenStore.insert(
        {
          id,
          name,
          description: 'initial root token',
          hash: await keys.tokenHash(token, tx),
          scopes: ['root'],
          parentId: null,
          cidrs: [],
          createdAt: Date.now(),
          expiresAt: null,
        },
        tx,
      );
      return { token, id };
    },

    /**
     * A token for a workload that proved its identity another way (a JWT
     * login, services/identity), issued as a child of `parentId` (the token
     * that created the role): it lives no longer than that token, carries its
     * CIDRs, and is revoked with it. Refused (IssueRefused) when that token is
     * revoked or expired, or when `ip` is outside its CIDRs. `check` runs in
     * the same transaction (the role still exists); `event` is the audit event.
     */
    async issue(
      input: { name: string; description: string; scopes: string[]; expiresAt: number; parentId: string; ip: string | null },
      ctx: AuditContext,
      opts: { check?: (tx: Tx) => Promise<void>; event: (tokenId: string, t: { expiresAt: number; cidrs: string[] }) => AuditInput },
    ): Promise<{ token: string; id: string; expiresAt: number; scopes: string[] }> {
      const token = await randomTokenString();
      const id = await newTokenId();
      const hash = await keys.tokenHash(token);
      const scopes = input.scopes.map((x) => formatGrant(parseGrant(x)));
      let expiresAt = input.expiresAt;
      await audit.run(ctx, async (tx, record) => {
        const now = Date.now();
        const chain = await tokenStore.ancestors(input.parentId, tx);
        const parent = chain[0];
        if (!parent) throw new IssueRefused('the token that created the role no longer exists');
        if (chain.some((t) => t.revokedAt !== null && t.revokedAt <= now))
          throw new IssueRefused('the token that created the role (or one of its ancestors) is revoked');
        if (parent.expiresAt !== null && parent.expiresAt <= now) throw new IssueRefused('the token that created the role has expired');
        if (parent.cidrs.length && !ipAllowed(cidrList(parent.cidrs), input.ip))
          throw new IssueRefused('the address is outside the CIDRs of the token that created the role');
        if (parent.expiresAt !== null) expiresAt = Math.min(expiresAt, parent.expiresAt);
        await opts.check?.(tx);
        await tokenStore.insert(
          {
            id,
            name: input.name,
            description: input.description,
            hash,
            scopes,
            parentId: parent.id,
            cidrs: parent.cidrs,
            createdAt: now,
            expiresAt,
          },
          tx,
        );
        await record(opts.event(id, { expiresAt, cidrs: parent.cidrs }));
      });
      return { token, id, expiresAt, scopes };
    },

    /** `also`: more to write in the same transaction (a web UI session's row, services/session). */
    async create(
      p: Principal,
      input: CreateTokenInput,
      ctx: AuditContext,
      also?: (tx: Tx, tokenId: string, record: (i: AuditInput) => Promise<void>) => Promise<void>,
    ) {
      // PostgreSQL cannot store NUL, and a lone surrogate would be stored as U+FFFD: refuse both on every engine.
      for (const [field, v] of [
        ['name', input.name],
        ['description', input.description ?? ''],
      ] as const) {
        if (!v.isWellFormed() || v.includes('\u0000'))
          throw new InvalidRequestError(`${field} must be text without NUL characters or lone surrogates`);
      }
      refuseTokenText('name', input.name);
      refuseTokenText('description', input.description);
      // A name that looks like a token id would make `hush tokens revoke NAME` revoke another token (ids win).
      if (/^tok_/i.test(input.name)) throw new InvalidRequestError('a token name must not start with "tok_" (that is how token ids look)');
      const grants = input.scopes.map(parseGrant);
      if (grants.length === 0) throw new InvalidRequestError('a token needs at least one scope');
      for (const g of grants) {
        if (!grantsCover(p.grants, g))
          throw new ForbiddenError(`cannot grant ${formatGrant(g)}: a token can only create tokens within its own grants`);
      }
      const now = Date.now();
      let ttl = defaultTtlMs;
      if (input.ttl !== undefined) {
        const parsed = parseDuration(input.ttl);
        if (parsed === null) throw new InvalidRequestError('invalid ttl: use a duration such as 1h, 30d or 1y');
        ttl = parsed;
        if (ttl > maxTtlMs) throw new InvalidRequestError(`ttl ${input.ttl} exceeds the maximum of ${formatDuration(maxTtlMs)}`);
      }
      let expiresAt = now + ttl;
      if (p.expiresAt !== null && expiresAt > p.expiresAt) {
        if (input.ttl !== undefined) throw new ForbiddenError('ttl exceeds the remaining lifetime of the token creating it');
        expiresAt = p.expiresAt;
      }
      let cidrs = (input.cidrs ?? []).map((c) => {
        const x = parseCidr(c);
        return `${x.addr}/${x.prefix}`;
      });
      if (p.cidrs.length > 0) {
        if (cidrs.length === 0) cidrs = p.cidrs;
        for (const c of cidrs) if (!cidrWithin(p.cidrs, c)) throw new ForbiddenError(`cidr ${c} is outside the creating token's allowlist`);
      }
      const token = await randomTokenString();
      const id = await newTokenId();
      const row = {
        id,
        name: input.name,
        description: input.description ?? '',
        hash: await keys.tokenHash(token),
        scopes: grants.map(formatGrant),
        parentId: p.tokenId,
        cidrs,
        createdAt: now,
        expiresAt,
      };
      await audit.run(ctx, async (tx, record) => {
        await tokenStore.insert(row, tx);
        await record({
          action: 'token.create',
          outcome: 'ok',
          target: { tokenId: id, name: input.name },
          detail: { scopes: row.scopes, expiresAt: new Date(expiresAt).toISOString(), cidrs },
        });
        await also?.(tx, id, record);
      });
      return { token, ...publicToken({ ...row, revokedAt: null, lastUsedAt: null }) };
    },

    async list(p: Principal, filter: { includeRevoked?: boolean; name?: string }) {
      const all = await tokenStore.list({ includeRevoked: true });
      const byId = new Map(all.map((t) => [t.id, t]));
      const ancestorIds = (t: TokenRow) => {
        const out = new Set<string>();
        for (let cur = t.parentId; cur && !out.has(cur); cur = byId.get(cur)?.parentId ?? null) out.add(cur);
        return out;
      };
      return all
        .filter((t) => (filter.includeRevoked || t.revokedAt === null) && (!filter.name || t.name === filter.name))
        .filter((t) => manages(p, t, ancestorIds(t)))
        .map(publicToken);
    },

    async self(p: Principal) {
      const t = await tokenStore.byId(p.tokenId);
      if (!t) throw new TokenNotFoundError('token not found');
      return publicToken(t);
    },

    /** Revokes a token and all its descendants in one transaction. */
    async revoke(p: Principal, id: string, ctx: AuditContext) {
      const t = await managedToken(p, id);
      if (!t) throw new TokenNotFoundError(`token ${id} not found`);
      // A token never revokes its own ancestors (docs/tokens.md): revoking one revokes its whole tree, so a
      // delegated token (a child admin:P) could otherwise cut off the token that delegated to it, and every
      // other token that one made. The ancestor's own token, or a root token outside its tree, revokes it.
      if (p.parentId !== null && (await tokenStore.ancestors(p.parentId)).some((a) => a.id === id)) {
        throw new ForbiddenError(
          `token ${id} is an ancestor of the calling token: a token cannot revoke the tokens above it ` +
            `(revoke it with that token itself, or with a root token outside its tree)`,
        );
      }
      const now = Date.now();
      const ids = await audit.run(ctx, async (tx, record) => {
        const revoked = await tokenStore.revokeTree(id, now, tx);
        await record({ action: 'token.revoke', outcome: 'ok', target: { tokenId: id, name: t.name }, detail: { revoked: revoked.length } });
        return revoked;
      });
      return { id, revoked: ids };
    },
  };
}
export type TokenService = ReturnType<typeof tokenServiceFactory>;
