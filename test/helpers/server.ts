import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../vault/config.js';
import { waitFor } from './cli.js';
import { apiFor, type Api } from './http.js';
import { buildServer, type BuildOptions, type HushServer } from '../../vault/server.js';

/** Every log line written by servers started through this helper, for leak checks. */
export const capturedLogs: string[] = [];

/**
 * Resolves once a server started through this helper has received a
 * long-poll (`?wait=`) logged after line `from` of capturedLogs: the watcher
 * is then parked in it, observably, instead of "probably, after a sleep".
 * With `reqIdPrefix`, only a request whose client id (the X-Request-Id it
 * sent, logged as clientRequestId) starts with it counts, so a late request
 * of an earlier watcher in the same process cannot be taken for it.
 */
export function longPollArrived(from: number, what = 'a long-poll to reach the server', reqIdPrefix = ''): Promise<void> {
  const mine = reqIdPrefix ? `"clientRequestId":"${reqIdPrefix}` : '"reqId":"';
  return waitFor(
    () => capturedLogs.slice(from).some((l) => l.includes('"incoming request"') && l.includes(mine) && /"url":"[^"]*[?&]wait=/.test(l)),
    what,
  );
}

/**
 * Resolves once, after line `from` of capturedLogs, a long-poll was answered
 * 200 (the revision moved) and the watcher then sent its next long-poll: it
 * has seen and handled the change.
 */
export function longPollChangeHandled(from: number, what = 'the watcher to handle a change'): Promise<void> {
  return waitFor(() => {
    const polls = new Set<string>();
    let answered = false;
    for (const [i, line] of capturedLogs.entries()) {
      let l: { msg?: string; reqId?: string; req?: { url?: string }; res?: { statusCode?: number } };
      try {
        l = JSON.parse(line);
      } catch {
        continue;
      }
      // The long-poll that gets the answer may have arrived before `from`.
      if (l.msg === 'incoming request' && /[?&]wait=/.test(l.req?.url ?? '')) {
        if (answered) return true;
        polls.add(l.reqId!);
      } else if (i >= from && l.msg === 'request completed' && polls.has(l.reqId!) && l.res?.statusCode === 200) {
        answered = true;
      }
    }
    return false;
  }, what);
}

export function logCapture(): Writable {
  return new Writable({
    write(chunk, _enc, cb) {
      capturedLogs.push(String(chunk));
      cb();
    },
  });
}

export function tempDir(prefix = 'hush-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface TestServer {
  server: HushServer;
  url: string;
  rootToken: string;
  dataDir: string;
  config: Readonly<Config>;
  /** fetch against the server with the root token (or another). */
  api: Api;
  close(opts?: { keepDir?: boolean }): Promise<void>;
}

/**
 * Starts a real, migrated Hush server listening on 127.0.0.1 port 0 with
 * its data in a fresh temp dir (SQLite) or in `databaseUrl` (PostgreSQL).
 */
export async function startServer(
  opts: { settings?: Record<string, unknown>; env?: NodeJS.ProcessEnv; dataDir?: string; build?: BuildOptions } = {},
): Promise<TestServer> {
  const dataDir = opts.dataDir ?? tempDir();
  const config = loadConfig({ 'data-dir': dataDir, listen: '127.0.0.1:0', 'log-level': 'info', ...opts.settings }, opts.env ?? {});
  const server = await buildServer(config, { logStream: logCapture(), ...opts.build });
  const url = await server.listen();
  const rootToken = server.init?.rootToken ?? '';
  const api = apiFor(url, rootToken);
  return {
    server,
    url,
    rootToken,
    dataDir,
    config,
    api,
    async close(o = {}) {
      await server.close();
      if (!o.keepDir && !opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** PostgreSQL URL for storage tests, or null when HUSH_TEST_PG_URL is unset. */
export const PG_URL = process.env.HUSH_TEST_PG_URL || null;

/** Runs one statement on the maintenance database, as the user in HUSH_TEST_PG_URL (or in `adminUrl`, another server's). */
export async function pgAdmin(sql: string, params: unknown[] = [], adminUrl = PG_URL): Promise<any[]> {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: adminUrl! });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/**
 * A fresh PostgreSQL database for one test (created and dropped here), so
 * tests on PostgreSQL never share state; with `template`, a copy of that
 * database (which must have no open connections). On the server of
 * HUSH_TEST_PG_URL, or of `adminUrl` (a test's own server).
 */
export async function freshPgDatabase(
  template?: string,
  adminUrl = PG_URL,
): Promise<{ url: string; name: string; drop: () => Promise<void> } | null> {
  if (!adminUrl) return null;
  const name = `hush_t_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  await pgAdmin(`create database ${name}${template ? ` template ${template}` : ''}`, [], adminUrl);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    name,
    drop: async () => {
      await pgAdmin(`drop database if exists ${name} with (force)`, [], adminUrl);
    },
  };
}

/** Why a PostgreSQL suite did not run: printed as its skip reason, so a green run without it says so. */
export const PG_SKIP = 'PostgreSQL not tested: HUSH_TEST_PG_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)';

/** Options for a suite or test that needs PostgreSQL: registered always, skipped visibly without it. */
export const NEEDS_PG: { skip: string | false } = { skip: PG_URL ? false : PG_SKIP };

/** The storage backends every storage suite is registered for; PostgreSQL's are skipped (see onBackend) without HUSH_TEST_PG_URL. */
export const BACKENDS: readonly ('sqlite' | 'postgres')[] = ['sqlite', 'postgres'];

/** Options for a suite registered per backend: the PostgreSQL one is skipped, with its reason, when there is no database. */
export function onBackend(backend: 'sqlite' | 'postgres'): { skip: string | false } {
  return backend === 'postgres' ? NEEDS_PG : { skip: false };
}

/** Starts a server on the given backend; PostgreSQL gets its own fresh database. */
export async function startOn(
  backend: 'sqlite' | 'postgres',
  settings: Record<string, unknown> = {},
  build?: BuildOptions,
): Promise<TestServer & { backend: string }> {
  if (backend === 'sqlite') return { ...(await startServer({ settings, build })), backend };
  const db = (await freshPgDatabase())!;
  const s = await startServer({ settings: { 'database-url': db.url, ...settings }, build });
  return {
    ...s,
    backend,
    async close(o) {
      await s.close(o);
      await db.drop();
    },
  };
}
