import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { spawnServer, waitFor, type Listening } from '../helpers/cli.js';
import { apiFor, closedPort, jsonRequest, type JsonRequestOptions, type JsonResponse } from '../helpers/http.js';
import { seedEnvs } from '../helpers/seed.js';
import { observe, remember as rememberSecret, secretValue } from '../helpers/leaks.js';
import { pgAdmin, tempDir } from '../helpers/server.js';

// ---------------------------------------------------------------------------
// Leak registry: every secret value and token a test handles is remembered,
// every log line, error body and audit event is observed, and the last test of
// each file asserts that no remembered string (and nothing token-shaped)
// appears in anything observed.
// ---------------------------------------------------------------------------

export {
  assertNoLeaks,
  markedValue,
  observe,
  remember as rememberSecret,
  scanForLeaks,
  scanText,
  secretValue,
  type LeakReport,
} from '../helpers/leaks.js';

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

export type Res = JsonResponse;

/** One request (see jsonRequest: never hangs); error bodies (status >= 400) are observed for the leak scan. */
export async function call(base: string, method: string, path: string, opts: JsonRequestOptions = {}): Promise<Res> {
  const r = await jsonRequest(base, method, path, opts);
  if (r.status >= 400) observe(`error body ${method} ${path.slice(0, 80)} -> ${r.status}`, r.text);
  return r;
}

/** Asserts the standard error shape {error:{code,message,requestId}}. */
export function assertErrorShape(r: { status: number; body: any; headers?: Headers | Record<string, unknown> }, ctx = ''): void {
  const e = r.body?.error;
  assert.ok(e && typeof e === 'object', `${ctx}: ${r.status} without the error shape: ${JSON.stringify(r.body).slice(0, 300)}`);
  assert.equal(typeof e.code, 'string', `${ctx}: error.code`);
  assert.match(e.code, /^[a-z][a-z0-9_]*$/, `${ctx}: error.code is snake_case`);
  assert.equal(typeof e.message, 'string', `${ctx}: error.message`);
  assert.equal(typeof e.requestId, 'string', `${ctx}: error.requestId`);
  assert.ok(e.requestId.length > 0, `${ctx}: empty requestId`);
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  closedWithoutResponse: boolean;
}

/**
 * Sends raw bytes on a fresh TCP connection and reads until the server
 * closes it (or `timeoutMs`). For requests fetch refuses to send: bad
 * framing, NUL bytes in headers, overlong headers, garbage.
 */
export function rawHttp(base: string, bytes: Buffer, timeoutMs = 5000): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = connect({ host: u.hostname, port: Number(u.port) });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      let all = Buffer.concat(chunks);
      // Interim answers (100 Continue) precede the real one.
      while (/^HTTP\/1\.[01] 1\d\d /.test(all.subarray(0, 16).toString('latin1')) && all.indexOf('\r\n\r\n') >= 0)
        all = all.subarray(all.indexOf('\r\n\r\n') + 4);
      if (all.length === 0) return resolve({ status: 0, headers: {}, body: '', closedWithoutResponse: true });
      const sep = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, sep < 0 ? all.length : sep).toString('latin1');
      const [statusLine, ...lines] = head.split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let body: Buffer = sep < 0 ? Buffer.alloc(0) : all.subarray(sep + 4);
      if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']));
      else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body);
      resolve({ status: m ? Number(m[1]) : -1, headers, body: body.toString('utf8'), closedWithoutResponse: false });
    };
    const timer = setTimeout(() => {
      if (chunks.length) return finish();
      sock.destroy();
      reject(new Error(`raw request got no answer within ${timeoutMs} ms: ${JSON.stringify(bytes.subarray(0, 120).toString('latin1'))}`));
    }, timeoutMs);
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      // One response is enough: stop once the declared body has arrived.
      const all = Buffer.concat(chunks);
      const sep = all.indexOf('\r\n\r\n');
      if (sep >= 0 && !/^HTTP\/1\.[01] 1\d\d /.test(all.subarray(0, 16).toString('latin1'))) {
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(all.subarray(0, sep).toString('latin1'));
        if (cl && all.length - sep - 4 >= Number(cl[1])) finish();
      }
    });
    sock.on('end', finish);
    sock.on('close', finish);
    sock.on('error', () => finish());
    // Half-close: a request that promised more body than it sent is then
    // refused at once (the server sees EOF) instead of waiting for bytes.
    sock.end(bytes);
  });
}

function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  while (i < b.length) {
    const eol = b.indexOf('\r\n', i);
    if (eol < 0) break;
    const n = parseInt(b.subarray(i, eol).toString('latin1'), 16);
    if (!Number.isFinite(n) || n === 0) break;
    out.push(b.subarray(eol + 2, eol + 2 + n));
    i = eol + 2 + n + 2;
  }
  return Buffer.concat(out);
}

/**
 * A connection cap seen from outside: opens `open` idle connections, waits
 * until `over` of them are closed by the server, asks the rest for
 * /v1/sys/health, then closes everything and waits until a new connection is
 * served again. Returns how many were closed unanswered and how many served.
 */
export async function connectionsPastCap(base: string, open: number, over: number): Promise<{ closedUnanswered: number; served: number }> {
  const u = new URL(base);
  const socks: { sock: ReturnType<typeof connect>; got: string; closed: boolean }[] = [];
  for (let i = 0; i < open; i++) {
    const sock = connect({ host: '127.0.0.1', port: Number(u.port) });
    const entry = { sock, got: '', closed: false };
    sock.on('data', (d) => {
      entry.got += d.toString('latin1');
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      entry.closed = true;
    });
    await new Promise((r) => sock.once('connect', r));
    socks.push(entry);
  }
  await waitFor(() => socks.filter((x) => x.closed).length >= over, `the ${over} connections over the cap to be closed`);
  for (const x of socks) if (!x.closed) x.sock.write('GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(
    () => socks.filter((x) => !x.closed).every((x) => x.got.includes('\r\n\r\n')),
    'the connections within the cap to be answered',
  );
  const result = {
    closedUnanswered: socks.filter((x) => x.closed && x.got === '').length,
    served: socks.filter((x) => x.got.startsWith('HTTP/1.1 200')).length,
  };
  for (const x of socks) x.sock.destroy();
  await waitFor(
    async () => (await rawHttp(base, Buffer.from('GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).status === 200,
    'a new connection to be accepted once the others closed',
  );
  return result;
}

// ---------------------------------------------------------------------------
// Real `hush server` processes
// ---------------------------------------------------------------------------

export type Spawned = Listening;

/** A master key file (mode 0600) outside any data dir, as production would have it. */
export function masterKeyFile(): string {
  const dir = tempDir('hush-rel-key-');
  const file = join(dir, 'master.key');
  writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

/** Settings that keep a test's own traffic from tripping the rate limits. */
export const NO_LIMITS = ['--rate-limit', '10000000', '--auth-fail-limit', '1000000'];

/**
 * Starts the built `hush server` as a child process; all of its stdout (JSON
 * log lines) and stderr go to the leak scan when it exits.
 */
export async function spawnHush(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  opts: { uid?: number; gid?: number; label?: string } = {},
): Promise<Spawned> {
  const label = opts.label ?? 'hush server';
  const s = await spawnServer(args, env, {
    uid: opts.uid,
    gid: opts.gid,
    onExit: (out, err) => {
      observe(`${label} stdout`, out);
      // The banner that shows the root token once at init is the one place a token is meant to appear.
      observe(`${label} stderr`, err.replace(/Root token \(shown once, store it now\):\s+hush_[0-9A-Za-z]+/, 'Root token: [banner]'));
    },
  });
  if (s.rootToken) rememberSecret(s.rootToken);
  return s;
}

/** Runs `hush server ...` expecting it to fail at start; returns its exit code and output (a start that listens is killed). */
export async function failingStart(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  opts: { uid?: number; gid?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const onExit = (out: string, err: string) => {
    observe('failing start stdout', out);
    observe('failing start stderr', err);
  };
  try {
    const s = await spawnServer(args, env, { ...opts, onExit });
    await s.kill9();
    return { code: s.child.exitCode, stdout: s.stdout(), stderr: s.stderr() };
  } catch (e) {
    const { code, stdout, stderr } = e as { code: number | null; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

// ---------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------

export { pgAdmin } from '../helpers/server.js';

export function dbNameOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1));
}

/** Terminates every backend connected to one database (a gentle stand-in for a PostgreSQL restart). */
export async function terminateBackends(url: string): Promise<number> {
  const rows = await pgAdmin(
    'select count(pg_terminate_backend(pid)) as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
    [dbNameOf(url)],
  );
  return Number(rows[0]?.n ?? 0);
}

// ---------------------------------------------------------------------------
// State digest: everything a request could change, except the audit log
// (reads append events too) and token last-use stamps.
// ---------------------------------------------------------------------------

export async function stateDigest(db: Knex): Promise<{ hash: string; counts: Record<string, number> }> {
  const h = createHash('sha256');
  const counts: Record<string, number> = {};
  const tables: [string, string[], string[]][] = [
    ['projects', ['id', 'name', 'dek_version'], ['id']],
    ['environments', ['id', 'project_id', 'name', 'revision'], ['id']],
    ['secrets', ['id', 'env_id', 'name', 'version', 'deleted'], ['id']],
    ['secret_versions', ['id', 'secret_id', 'version', 'deleted', 'dek_version', 'created_by', 'nonce'], ['id']],
    ['tokens', ['id', 'name', 'description', 'scopes', 'parent_id', 'cidrs', 'expires_at', 'revoked_at'], ['id']],
    ['keys', ['purpose', 'scope', 'version', 'mk_fingerprint', 'wrapped'], ['purpose', 'scope', 'version']],
  ];
  for (const [t, cols, order] of tables) {
    const rows = await db(t).select(cols).orderBy(order);
    counts[t] = rows.length;
    h.update(t);
    for (const r of rows) {
      h.update(
        JSON.stringify(
          cols.map((c) => {
            const v = (r as Record<string, unknown>)[c];
            return Buffer.isBuffer(v)
              ? v.toString('hex')
              : typeof v === 'boolean'
                ? Number(v)
                : v === null || v === undefined
                  ? null
                  : typeof v === 'string'
                    ? v
                    : JSON.stringify(v);
          }),
        ),
      );
    }
  }
  return { hash: h.digest('hex'), counts };
}

// ---------------------------------------------------------------------------
// Small things
// ---------------------------------------------------------------------------

/** mulberry32: a seeded PRNG, so a failing run can be replayed with its printed seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function seedFromEnv(): number {
  const s = process.env.HUSH_TEST_SEED;
  return s && /^\d+$/.test(s) ? Number(s) : (Date.now() ^ (process.pid << 8)) >>> 0;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns true or `ms` passes. */
export async function until(fn: () => Promise<boolean>, ms: number, every = 100): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return true;
    await sleep(every);
  }
  return false;
}

export function ensureDir(p: string): string {
  mkdirSync(p, { recursive: true, mode: 0o700 });
  return p;
}

/** Creates a project and its environments as `token`, tolerating ones that exist. */
export const makeEnv = (base: string, token: string, project: string, ...envs: string[]): Promise<void> =>
  seedEnvs(apiFor(base, token), project, ...envs);

/** Every audit event (following the cursor), observed for the leak scan. */
export async function auditEvents(base: string, token: string): Promise<any[]> {
  const out: any[] = [];
  let cursor: string | null = null;
  for (;;) {
    const r: Res = await call(base, 'GET', `/v1/audit?limit=1000${cursor ? `&cursor=${cursor}` : ''}`, { token });
    assert.equal(r.status, 200, r.text);
    observe('audit events', r.text);
    out.push(...r.body.events);
    cursor = r.body.nextCursor;
    if (!cursor) return out;
  }
}

export async function auditVerify(base: string, token: string): Promise<{ ok: boolean; checked: number; reason: string | null }> {
  const r = await call(base, 'GET', '/v1/audit/verify', { token, timeoutMs: 60_000 });
  assert.equal(r.status, 200, r.text);
  return r.body;
}

// ---------------------------------------------------------------------------
// Load under faults: clients writing and reading, every answer classified
// ---------------------------------------------------------------------------

/** The environment the fault suites write to (create it with makeEnv(url, token, 'fault', 'prod')). */
export const BASE = '/v1/projects/fault/envs/prod/secrets';
const CLEAR_503 = new Set(['storage_unavailable', 'audit_unavailable']);

/** An acknowledged (200) write: this value must read back at this version. */
export interface Ack {
  key: string;
  value: string;
  version: number;
}

export interface LoadOptions {
  /** Clients, each writing and reading in a loop (default 4). */
  clients?: number;
  valueBytes?: number;
  /** Only PUTs (each client writes its own keys), no reads in between. */
  writesOnly?: boolean;
  /**
   * The target is a load balancer: its own 502/503/504 (a request in flight
   * on a node that died, no node up) and a connection it closes without an
   * answer (a request in flight on a reused connection to a node that died)
   * are counted as gateway errors, not failures; a failure is still any
   * answer a Hush node should never give, or a hang.
   */
  behindProxy?: boolean;
}

/**
 * Clients writing and reading in a loop against `target().url`. Every answer
 * is classified: 200, a 503 with a clear code, a gateway error (behindProxy),
 * or a failure (any other status, a hang, a dropped connection while the
 * server is up).
 */
export function load(target: () => { url: string }, token: string, opts: LoadOptions = {}) {
  const { clients = 4, valueBytes = 256 } = opts;
  const acks: Ack[] = [];
  const written = new Set<string>();
  const failures: string[] = [];
  const counts = { ok: 0, unavailable: 0, gateway: 0, byCode: new Map<string, number>() };
  let stop = false;
  let lastOkAt = Date.now();
  let lastErrorAt = 0;
  /** When each request that did not get a 200 was sent. */
  const errorsSentAt: number[] = [];
  const count = (code: string, sentAt: number) => {
    counts.byCode.set(code, (counts.byCode.get(code) ?? 0) + 1);
    lastErrorAt = Date.now();
    errorsSentAt.push(sentAt);
  };
  const classify = (r: Res, what: string, sentAt: number) => {
    if (r.status === 200) {
      counts.ok++;
      lastOkAt = Date.now();
      return true;
    }
    if (opts.behindProxy && [502, 503, 504].includes(r.status) && typeof r.body?.error?.code !== 'string') {
      counts.gateway++;
      count(`proxy_${r.status}`, sentAt);
      return false;
    }
    if (r.status === 503) {
      try {
        assertErrorShape(r, what);
      } catch (e) {
        failures.push((e as Error).message);
        return false;
      }
      count(r.body.error.code, sentAt);
      if (!CLEAR_503.has(r.body.error.code)) failures.push(`${what}: 503 with code ${r.body.error.code}`);
      counts.unavailable++;
      return false;
    }
    failures.push(`${what}: ${r.status} ${r.text.slice(0, 300)}`);
    return false;
  };
  const run = async (c: number) => {
    for (let n = 0; !stop; n++) {
      const key = opts.writesOnly ? `C${c}_N${n}` : `C${c}_K${n % 6}`;
      const value = secretValue(`-${c}-${n}-` + 'v'.repeat(valueBytes));
      let sentAt = Date.now();
      try {
        const w = await call(target().url, 'PUT', `${BASE}/${key}`, { token, body: { value }, timeoutMs: 15_000 });
        if (classify(w, `PUT ${key}`, sentAt)) {
          acks.push({ key, value, version: w.body.version });
          written.add(key);
        }
        if (!opts.writesOnly) {
          // One key, when it exists for sure; otherwise all of them.
          sentAt = Date.now();
          const r = await call(target().url, 'GET', n % 3 !== 0 && written.has(key) ? `${BASE}/${key}` : BASE, {
            token,
            timeoutMs: 15_000,
          });
          classify(r, 'GET', sentAt);
        }
      } catch (e) {
        // Through a proxy, a request in flight on a node that dies may have its connection closed without an answer.
        if (opts.behindProxy && (e as Error).name !== 'TimeoutError') {
          counts.gateway++;
          count('proxy_closed_connection', sentAt);
        } else failures.push(`request failed (hang or dropped connection): ${(e as Error).message}`);
      }
      // Just after an error, a short pause: clients spinning on a down database would only burn the CPU the recovery needs.
      if (Date.now() - lastErrorAt < 50) await sleep(20);
    }
  };
  const running = Array.from({ length: clients }, (_, c) => run(c));
  return {
    acks,
    failures,
    counts,
    lastOkAt: () => lastOkAt,
    lastErrorAt: () => lastErrorAt,
    /** How many requests sent at or after `t` did not get a 200. */
    errorsSentSince: (t: number) => errorsSentAt.filter((x) => x >= t).length,
    /** The counts as they are now (a copy). */
    snapshot: () => ({ ...counts, byCode: new Map(counts.byCode) }),
    async stop() {
      stop = true;
      await Promise.all(running);
    },
  };
}

/** "code xN, ..." of a snapshot's error codes, for diagnostics. */
export function codesOf(c: { byCode: Map<string, number> }): string {
  return [...c.byCode].map(([code, n]) => `${code} x${n}`).join(', ') || 'none';
}

/**
 * Every acknowledged write reads back exactly, at its version. A read is an
 * audited request, so on a machine under load it may still meet a transient
 * 503 just after recovery: that is retried (and counted); a 404 or another
 * value is a loss.
 */
export async function verifyAcks(url: string, token: string, acks: Ack[]): Promise<{ retried503: number }> {
  let retried503 = 0;
  for (let i = 0; i < acks.length; i += 16) {
    await Promise.all(
      acks.slice(i, i + 16).map(async (a) => {
        let r = await call(url, 'GET', `${BASE}/${a.key}?version=${a.version}`, { token });
        for (let n = 0; r.status === 503 && n < 10; n++) {
          retried503++;
          await sleep(200);
          r = await call(url, 'GET', `${BASE}/${a.key}?version=${a.version}`, { token });
        }
        assert.equal(r.status, 200, `LOST: ${a.key} v${a.version}: ${r.text}`);
        assert.equal(r.body.value, a.value, `CORRUPT: ${a.key} v${a.version}`);
      }),
    );
  }
  return { retried503 };
}

// ---------------------------------------------------------------------------
// A PostgreSQL server of the test's own
// ---------------------------------------------------------------------------

/**
 * A PostgreSQL cluster of this test's own (initdb into a temp dir, its own
 * port and socket directory), so that it can really be stopped, restarted
 * and frozen while other test files use the shared server. As root the
 * server runs as the `postgres` user.
 */
function pgServerBin(): string | null {
  const dirs: string[] = [];
  try {
    dirs.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {
    /* not on PATH */
  }
  try {
    for (const v of readdirSync('/usr/lib/postgresql').sort().reverse()) dirs.push(`/usr/lib/postgresql/${v}/bin`);
  } catch {
    /* none */
  }
  return dirs.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl'))) ?? null;
}
const PG_BIN = pgServerBin();
const IS_ROOT = process.getuid?.() === 0;
const pgUser = (() => {
  if (!IS_ROOT) return null;
  try {
    return Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
  } catch {
    return null;
  }
})();

/** Why a private PostgreSQL cluster cannot be run here, or false. */
export const PRIVATE_PG_SKIP: string | false =
  (!PG_BIN && 'PostgreSQL server binaries (initdb, pg_ctl) not found') ||
  (IS_ROOT && pgUser === null && 'running as root, and there is no postgres user to run a cluster as') ||
  false;

export interface PrivatePg {
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust authentication). */
  url: string;
  /** pg_ctl stop -m fast, start, restart -m fast: each resolves once pg_ctl is done (the event loop, and any load in it, runs meanwhile). */
  stop(): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Every process of the cluster (the postmaster and its children). */
  pids(): number[];
  destroy(): Promise<void>;
}

export async function privatePgCluster(): Promise<PrivatePg> {
  const dir = tempDir('hush-pgc-');
  if (pgUser !== null) chownSync(dir, pgUser, pgUser);
  const data = join(dir, 'data');
  const port = await closedPort();
  const pgRun = async (tool: string, args: string[]) => {
    await promisify(execFile)(
      pgUser !== null ? 'runuser' : join(PG_BIN!, tool),
      pgUser !== null ? ['-u', 'postgres', '--', join(PG_BIN!, tool), ...args] : args,
      { timeout: 60_000, cwd: dir },
    );
  };
  await pgRun('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-instructions']);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`;
  const ctl = (...args: string[]) => pgRun('pg_ctl', ['-D', data, '-l', join(dir, 'pg.log'), '-o', opts, '-w', '-t', '60', ...args]);
  await ctl('start');
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: () => ctl('stop', '-m', 'fast'),
    start: () => ctl('start'),
    restart: () => ctl('restart', '-m', 'fast'),
    pids() {
      const main = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      const children = readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .map(Number)
        .filter((p) => {
          try {
            return (
              Number(
                readFileSync(`/proc/${p}/stat`, 'utf8')
                  .replace(/^.*\) /, '')
                  .split(' ')[1],
              ) === main
            );
          } catch {
            return false;
          }
        });
      return [main, ...children];
    },
    async destroy() {
      await ctl('stop', '-m', 'immediate').catch(() => {
        /* already down */
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
