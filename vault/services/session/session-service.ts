import { formatDuration } from '../../../common/duration.js';
import { SessionExpiredError } from '../../errors.js';
import type { SessionStore } from '../../store/session-store.js';
import type { TokenStore } from '../../store/token-store.js';
import { SYSTEM_CONTEXT, type AuditContext, type AuditService } from '../audit/audit-service.js';
import { AuthFailure, type Principal, type TokenService } from '../token/token-service.js';

export interface SessionServiceDeps {
  tokens: Pick<TokenService, 'authenticate' | 'create'>;
  tokenStore: Pick<TokenStore, 'revokeTree'>;
  sessionStore: SessionStore;
  audit: Pick<AuditService, 'run'>;
  idleMs: number;
  maxMs: number;
  tokenMaxTtlMs: number;
  /** Where a failed last-use update is reported (it never fails the request). */
  log?: { warn(obj: object, msg: string): void };
}

/** The name every session token carries (tokens list shows them; revoking one ends that session). */
export const SESSION_TOKEN_NAME = 'web UI session';

/**
 * Web UI sessions (docs/ui.md). Logging in with a token makes a child token
 * with the same scopes (so revoking the token logged in with, or any of its
 * ancestors, ends the session on the next request), lasting at most
 * `maxMs` and no longer than its parent. The child's string lives only in
 * the HttpOnly cookie. A row per session (vault/store/session-store.ts)
 * carries the last time it was used, read and moved by every server on the
 * database, so the idle timeout holds on each of them. A request with the
 * cookie acts as the token logged in with: the same grants, audit actor,
 * and token tree (tokens made in the UI are that token's children, and
 * outlive the session).
 */
export function sessionServiceFactory({ tokens, tokenStore, sessionStore, audit, idleMs, maxMs, tokenMaxTtlMs, log }: SessionServiceDeps) {
  const touchEveryMs = Math.max(1000, Math.min(30_000, Math.floor(idleMs / 4)));

  async function end(tokenId: string, ctx: AuditContext, reason: 'logout' | 'idle', now: number): Promise<void> {
    await audit.run(ctx, async (tx, record) => {
      const revoked = await tokenStore.revokeTree(tokenId, now, tx);
      await sessionStore.remove(tokenId, tx);
      if (revoked.length) await record({ action: 'session.end', outcome: 'ok', target: { tokenId }, detail: { reason } });
    });
  }

  return {
    idleMs,

    /** Starts a session for `parent` (already authenticated). Returns the child token string for the cookie, its id, and when it expires. */
    async login(parent: Principal, ctx: AuditContext, now = Date.now()): Promise<{ token: string; tokenId: string; expiresAt: number }> {
      // Sessions left idle are revoked as others log in (a session's own next request finds its timeout anyway).
      for (const id of await sessionStore.idle(now)) await end(id, SYSTEM_CONTEXT, 'idle', now);
      const max = Math.min(maxMs, tokenMaxTtlMs);
      // Without a ttl, create() gives the default TTL cut to the parent's remaining lifetime.
      const ttl = parent.expiresAt !== null && parent.expiresAt - now <= max ? undefined : formatDuration(max);
      const made = await tokens.create(
        parent,
        { name: SESSION_TOKEN_NAME, scopes: parent.scopes, ttl, description: 'web UI login (docs/ui.md)' },
        ctx,
        async (tx, id, record) => {
          await sessionStore.insert({ tokenId: id, parentId: parent.tokenId, createdAt: now, lastSeenAt: now, idleMs }, tx);
          await record({
            action: 'session.create',
            outcome: 'ok',
            target: { tokenId: id },
            detail: { idleSeconds: Math.round(idleMs / 1000) },
          });
        },
      );
      return { token: made.token, tokenId: made.id, expiresAt: Date.parse(made.expiresAt!) };
    },

    /**
     * The principal of a request carrying session token `token`: the token
     * it was made from, with the session token's grants. Throws the token
     * service's AuthFailure for a bad, revoked or expired token, and
     * SessionExpiredError (revoking the token) for an idle session.
     */
    async resolve(token: string, ip: string | null, now = Date.now()): Promise<{ principal: Principal; sessionTokenId: string }> {
      const child = await tokens.authenticate(token, ip, now);
      const s = await sessionStore.get(child.tokenId);
      if (!s || !s.parent) throw new SessionExpiredError('this token is not a web UI session: log in again');
      if (now - s.lastSeenAt > s.idleMs) {
        await end(child.tokenId, { actorId: child.tokenId, actorName: child.name, ip, requestId: null }, 'idle', now);
        throw new SessionExpiredError('the web UI session was idle too long: log in again');
      }
      if (now - s.lastSeenAt >= touchEveryMs) {
        // A valid session is never refused because its last-use time could not be moved (a database busy for a
        // moment): the request goes on, the failure is logged, and the next request past the interval tries again.
        // Should every update fail for a whole timeout, the session ends as idle: fail closed.
        try {
          await sessionStore.touch(child.tokenId, now);
        } catch (e) {
          log?.warn(
            { sessionTokenId: child.tokenId, err: { message: (e as Error).message } },
            "could not update the web UI session's last use",
          );
        }
      }
      const principal: Principal = {
        tokenId: s.parentId,
        name: s.parent.name,
        grants: child.grants,
        scopes: child.scopes,
        cidrs: child.cidrs,
        expiresAt: s.parent.expiresAt,
        parentId: s.parent.parentId,
      };
      return { principal, sessionTokenId: child.tokenId };
    },

    /**
     * A session's token is accepted only in its cookie, where the idle
     * timeout applies: sent as a bearer token it is an authentication failure.
     * Costs a lookup only for tokens with the session tokens' name.
     */
    async refuseAsBearer(p: Principal): Promise<void> {
      if (p.name === SESSION_TOKEN_NAME && (await sessionStore.get(p.tokenId)) !== null) throw new AuthFailure('session_token_as_bearer');
    },

    /** Logs out: revokes the session token (and so the session) at once. */
    async logout(sessionTokenId: string, ctx: AuditContext, now = Date.now()): Promise<void> {
      await end(sessionTokenId, ctx, 'logout', now);
    },
  };
}
export type SessionService = ReturnType<typeof sessionServiceFactory>;
