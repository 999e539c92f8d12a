import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { spawnServer, type Listening } from '../helpers/cli.js';
import { apiFor, jsonRequest, type JsonRequestOptions, type JsonResponse } from '../helpers/http.js';
import { seedEnvs } from '../helpers/seed.js';
import { observe, remember as rememberSecret } from '../helpers/leaks.js';
import { pgAdmin, tempDir } from '../helpers/server.js';

// ---------------------------------------------------------------------------
// Leak registry: every secret value and token a test handles is remembered,
// every log line, error body and audit event is observed, and the last test of
// each file asserts that no remembered string (and nothing token-shaped)
// appears in anything observed.
// ---------------------------------------------------------------------------

export { assertNoLeaks, markedValue, observe, remember as rememberSecret, scanForLeaks, scanText, secretValue, type LeakReport } from '../helpers/leaks.js';

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

export interface RawResponse { status: number; headers: Record<string, string>; body: string; closedWithoutResponse: boolean }

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
      while (/^HTTP\/1\.[01] 1\d\d /.test(all.subarray(0, 16).toString('latin1')) && all.indexOf('\r\n\r\n') >= 0) all = all.subarray(all.indexOf('\r\n\r\n') + 4);
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
export async function spawnHush(args: string[], env: NodeJS.ProcessEnv = {}, opts: { uid?: number; gid?: number; label?: string } = {}): Promise<Spawned> {
  const label = opts.label ?? 'hush server';
  const s = await spawnServer(args, env, {
    uid: opts.uid, gid: opts.gid,
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
export async function failingStart(args: string[], env: NodeJS.ProcessEnv = {}, opts: { uid?: number; gid?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const onExit = (out: string, err: string) => { observe('failing start stdout', out); observe('failing start stderr', err); };
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
  const rows = await pgAdmin('select count(pg_terminate_backend(pid)) as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [dbNameOf(url)]);
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
      h.update(JSON.stringify(cols.map((c) => {
        const v = (r as Record<string, unknown>)[c];
        return Buffer.isBuffer(v) ? v.toString('hex') : typeof v === 'boolean' ? Number(v) : v === null || v === undefined ? null : String(v);
      })));
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
export const makeEnv = (base: string, token: string, project: string, ...envs: string[]): Promise<void> => seedEnvs(apiFor(base, token), project, ...envs);

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
