import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Container } from '../container.js';
import { CsrfRefusedError, InvalidRequestError } from '../errors.js';
import type { Principal } from '../services/token/token-service.js';
import { Token, withErrors } from './schemas.js';

/**
 * The web UI's session cookie (docs/ui.md). It holds the session's child
 * token, HttpOnly (no script reads it) and SameSite=Strict; under TLS
 * (direct, or a trusted proxy's X-Forwarded-Proto) also Secure with the
 * __Host- prefix (no Domain, Path=/, set only over HTTPS).
 */
const COOKIE = 'hush_session';
const cookieName = (req: FastifyRequest) => (req.protocol === 'https' ? `__Host-${COOKIE}` : COOKIE);

function readCookie(req: FastifyRequest): string | null {
  const h = req.headers.cookie;
  if (typeof h !== 'string') return null;
  const name = cookieName(req);
  for (const part of h.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim() || null;
  }
  return null;
}

function setCookie(req: FastifyRequest, reply: FastifyReply, value: string | null): void {
  const secure = req.protocol === 'https' ? '; Secure' : '';
  const life = value === null ? '; Max-Age=0' : '';
  reply.header('set-cookie', `${cookieName(req)}=${value ?? ''}; Path=/; HttpOnly; SameSite=Strict${secure}${life}`);
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * CSRF (docs/ui.md#csrf): besides SameSite=Strict, a request that changes
 * something with the cookie must come from this server's own origin: its
 * Origin header (every browser sends one on a non-GET fetch) must be the
 * origin it was sent to, and Sec-Fetch-Site, when sent, same-origin.
 */
export function assertSameOrigin(req: FastifyRequest): void {
  const origin = req.headers.origin;
  const site = req.headers['sec-fetch-site'];
  const own = `${req.protocol}://${req.host}`;
  if (typeof origin !== 'string' || origin !== own || (site !== undefined && site !== 'same-origin')) {
    throw new CsrfRefusedError('a request that changes something with the web UI session cookie must come from the UI itself (same origin)');
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The session token's id, when the request was authenticated by the web UI's cookie. */
    sessionTokenId: string | null;
  }
}

/**
 * For http/auth.ts: `fromCookie`, when a request carries no token header but
 * the session cookie, the way to authenticate it (null: no cookie), checking
 * the origin of a request that changes something before looking at the
 * session; `checkBearer` refuses a session's token sent as a bearer token.
 */
export function cookieAuth(app: FastifyInstance, c: Container, enabled: boolean) {
  app.decorateRequest('sessionTokenId', null);
  const fromCookie = (req: FastifyRequest, reply: FastifyReply): (() => Promise<Principal>) | null => {
    if (!enabled) return null;
    const token = readCookie(req);
    if (!token) return null;
    return async () => {
      if (!SAFE.has(req.method)) assertSameOrigin(req);
      try {
        const s = await c.sessions.resolve(token, req.ip);
        req.sessionTokenId = s.sessionTokenId;
        return s.principal;
      } catch (e) {
        // Only when the session is over (401): a locked-out address (429) or a database away for a moment (503) keeps it.
        if ((e as { statusCode?: number }).statusCode === 401) setCookie(req, reply, null);
        throw e;
      }
    };
  };
  // With --no-ui no session can be made, but one made before is still no bearer token.
  return { fromCookie, checkBearer: (p: Principal) => c.sessions.refuseAsBearer(p) };
}

export function sessionRoutes(app: FastifyInstance, c: Container) {
  const Session = Type.Object({ token: Token, expiresAt: Type.String(), idleTimeoutSeconds: Type.Number() });
  app.post('/v1/ui/session', {
    config: { auth: 'any', action: 'session.create' },
    schema: {
      summary: 'Web UI login: exchanges the bearer token sent for a session cookie (HttpOnly) bound to a child token with the same scopes (docs/ui.md)',
      response: withErrors({ 201: Session }),
    },
  }, async (req, reply) => {
    assertSameOrigin(req);
    if (req.sessionTokenId) throw new InvalidRequestError('log in with the token itself in the Authorization header, not with a session cookie');
    const s = await c.sessions.login(req.principal!, req.auditCtx);
    setCookie(req, reply, s.token);
    return reply.status(201).send({ token: await c.tokens.self(req.principal!), expiresAt: new Date(s.expiresAt).toISOString(), idleTimeoutSeconds: Math.round(c.sessions.idleMs / 1000) });
  });

  app.get('/v1/ui/session', {
    config: { auth: 'any' },
    schema: { summary: 'The token a web UI session acts for (docs/ui.md)', response: withErrors({ 200: Type.Object({ token: Token, idleTimeoutSeconds: Type.Number() }) }) },
  }, async (req) => ({ token: await c.tokens.self(req.principal!), idleTimeoutSeconds: Math.round(c.sessions.idleMs / 1000) }));

  app.delete('/v1/ui/session', {
    config: { auth: 'any', action: 'session.end' },
    schema: { summary: 'Web UI logout: revokes the session\'s token and clears the cookie', response: withErrors({ 204: Type.Null() }) },
  }, async (req, reply) => {
    if (!req.sessionTokenId) throw new InvalidRequestError('no web UI session: this request carries no session cookie');
    await c.sessions.logout(req.sessionTokenId, req.auditCtx);
    setCookie(req, reply, null);
    return reply.status(204).send();
  });
}
