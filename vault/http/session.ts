import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Container } from '../container.js';
import { CsrfRefusedError, InvalidRequestError, SessionAmbiguousError } from '../errors.js';
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

/** Every value of the session cookie the request carries (a browser sends one per path and domain it holds). */
function readCookies(req: FastifyRequest): string[] {
  const h = req.headers.cookie;
  if (typeof h !== 'string') return [];
  const name = cookieName(req);
  const values: string[] = [];
  for (const part of h.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) values.push(part.slice(i + 1).trim());
  }
  return values;
}

/**
 * Paths a cookie planted by another page of this host (another port, or a
 * sibling subdomain over plain HTTP) could use to be sent before ours; a
 * refused request clears the cookie on each of them.
 */
const PLANTABLE_PATHS = ['/', '/v1', '/v1/', '/v1/ui', '/ui', '/ui/'];

function setCookie(req: FastifyRequest, reply: FastifyReply, value: string | null): void {
  const secure = req.protocol === 'https' ? '; Secure' : '';
  if (value !== null) {
    reply.header('set-cookie', `${cookieName(req)}=${value}; Path=/; HttpOnly; SameSite=Strict${secure}`);
    return;
  }
  // __Host- cookies exist only with Path=/ (the browser refuses any other).
  const paths = req.protocol === 'https' ? ['/'] : PLANTABLE_PATHS;
  reply.header(
    'set-cookie',
    paths.map((p) => `${cookieName(req)}=; Path=${p}; HttpOnly; SameSite=Strict${secure}; Max-Age=0`),
  );
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Sec-Fetch-Site values of a request the UI itself made (or typed into the address bar); absent: no browser. */
const OWN_SITE = new Set(['same-origin', 'none']);

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
    throw new CsrfRefusedError(
      'a request that changes something with the web UI session cookie must come from the UI itself (same origin)',
    );
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
    const values = readCookies(req);
    if (values.length === 0) return null;
    return async () => {
      if (values.length > 1) {
        // Which one is ours cannot be told: one may have been planted (session fixation). Refuse and clear them all.
        setCookie(req, reply, null);
        throw new SessionAmbiguousError(
          'this request carries the web UI session cookie more than once (one may have been set by another page on this host): log in again',
        );
      }
      // Reads too: an <img> or fetch from another site (another port of this host included) must not act as the
      // user. Browsers always send Sec-Fetch-Site; a client without it is no browser, so no CSRF victim.
      const site = req.headers['sec-fetch-site'];
      if (site !== undefined && !OWN_SITE.has(String(site))) {
        throw new CsrfRefusedError('a request with the web UI session cookie must come from the UI itself (Sec-Fetch-Site same-origin)');
      }
      if (!SAFE.has(req.method)) assertSameOrigin(req);
      try {
        const s = await c.sessions.resolve(values[0], req.ip);
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
  // sessionTokenId: the session's own token (shown in the token list as "web UI session").
  const Session = Type.Object({ token: Token, sessionTokenId: Type.String(), expiresAt: Type.String(), idleTimeoutSeconds: Type.Number() });
  app.post(
    '/v1/ui/session',
    {
      config: { auth: 'any', action: 'session.create' },
      schema: {
        summary:
          'Web UI login: exchanges the bearer token sent for a session cookie (HttpOnly) bound to a child token with the same scopes (docs/ui.md)',
        response: withErrors({ 201: Session }),
      },
    },
    async (req, reply) => {
      assertSameOrigin(req);
      if (req.sessionTokenId)
        throw new InvalidRequestError('log in with the token itself in the Authorization header, not with a session cookie');
      const s = await c.sessions.login(req.principal!, req.auditCtx);
      setCookie(req, reply, s.token);
      return reply.status(201).send({
        token: await c.tokens.self(req.principal!),
        sessionTokenId: s.tokenId,
        expiresAt: new Date(s.expiresAt).toISOString(),
        idleTimeoutSeconds: Math.round(c.sessions.idleMs / 1000),
      });
    },
  );

  // The page's first question. Without any credential (no cookie, no token header) the answer is "no session"
  // (token null), not an authentication failure: a page load must not count toward --auth-fail-limit.
  app.get(
    '/v1/ui/session',
    {
      config: { auth: 'any', anonymous: true },
      schema: {
        summary: 'The token a web UI session acts for, or token null when the request carries no credential at all (docs/ui.md)',
        response: withErrors({
          200: Type.Object({
            token: Type.Union([Token, Type.Null()]),
            sessionTokenId: Type.Union([Type.String(), Type.Null()]),
            idleTimeoutSeconds: Type.Number(),
          }),
        }),
      },
    },
    async (req) => ({
      token: req.principal ? await c.tokens.self(req.principal) : null,
      sessionTokenId: req.sessionTokenId,
      idleTimeoutSeconds: Math.round(c.sessions.idleMs / 1000),
    }),
  );

  app.delete(
    '/v1/ui/session',
    {
      config: { auth: 'any', action: 'session.end' },
      schema: { summary: "Web UI logout: revokes the session's token and clears the cookie", response: withErrors({ 204: Type.Null() }) },
    },
    async (req, reply) => {
      if (!req.sessionTokenId) throw new InvalidRequestError('no web UI session: this request carries no session cookie');
      await c.sessions.logout(req.sessionTokenId, req.auditCtx);
      setCookie(req, reply, null);
      return reply.status(204).send();
    },
  );
}
