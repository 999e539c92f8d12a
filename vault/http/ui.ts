import type { FastifyInstance, FastifyReply } from 'fastify';
import { readFileSync } from 'node:fs';
import { UiUnavailableError } from '../errors.js';

/**
 * The web UI's files (built by scripts/build-ui.mjs into dist/ui/), served
 * from memory at /ui/ with a strict Content-Security-Policy: scripts,
 * styles and requests only from this origin, nothing inline, no framing.
 */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/** The tab's icon (a padlock-ish square), so the browser does not log a 404 for /favicon.ico. */
const FAVICON = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg"' +
    ' viewBox="0 0' +
    (' 16 16"><rect x="2" y="7"' + ' width="12" height="8" rx="1"') +
    (' fill="#2b4c7e"/><path d="M5 7V5a3 3 0 0 1 6 0v2"' + (' stroke="#2b4c7e" stroke-width="2"' + ' fill="none"/></svg>')),
);

function load(dir: URL): Map<string, Buffer> | null {
  try {
    return new Map(Object.keys(FILES).map((f) => [f, readFileSync(new URL(f, dir))]));
  } catch {
    return null;
  }
}

export function uiRoutes(app: FastifyInstance, dir = new URL('../../ui/', import.meta.url)): void {
  const files = load(dir);
  if (!files) app.log.warn({ dir: dir.pathname }, 'the web UI is not built (dist/ui is missing): /ui/ answers 503 ui_unavailable');
  const send = (reply: FastifyReply, name: string) => {
    if (!files) throw new UiUnavailableError('the web UI is not part of this build; run `npm run build`');
    return reply.type(FILES[name]).send(files.get(name));
  };
  // Every answer under /ui and the / redirect, 404s and errors included, carries the page's policy (no-store,
  // nosniff and X-Frame-Options are on every answer of the server: http/app.ts).
  app.addHook('onSend', (req, reply, payload, done) => {
    const path = req.url.split('?')[0];
    if (path === '/' || path === '/ui' || path.startsWith('/ui/')) {
      reply
        .header('content-security-policy', UI_CSP)
        .header('cross-origin-opener-policy', 'same-origin')
        .header('cross-origin-resource-policy', 'same-origin');
    }
    done(null, payload);
  });
  // Served while sealed too: the page then says so (login answers 503 sealed; the health page shows the seal).
  const opts = { schema: { hide: true }, config: { whileSealed: true } };
  app.get('/', opts, (_req, reply) => reply.redirect('/ui/', 302));
  app.get('/ui', opts, (_req, reply) => reply.redirect('/ui/', 302));
  app.get('/ui/', opts, (_req, reply) => send(reply, 'index.html'));
  app.get('/ui/app.js', opts, (_req, reply) => send(reply, 'app.js'));
  app.get('/ui/app.css', opts, (_req, reply) => send(reply, 'app.css'));
  app.get('/ui/favicon.svg', opts, (_req, reply) => reply.type('image/svg+xml').send(FAVICON));
}
