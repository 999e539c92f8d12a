/**
 * Shared fixtures for the backup suites: seeding a vault with history over
 * HTTP, fetching a backup over HTTP, logical dumps of a live or restored
 * vault, and a CLI run that measures its peak RSS.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HUSH_BIN, type RunResult } from '../helpers/cli.js';
import { samplePeakRss } from '../helpers/memory.js';
import type { TestServer } from '../helpers/server.js';
import { bodyLines } from '../../vault/backup/dump.js';
import { decryptBackupStream, type DecryptOptions } from '../../vault/backup/pgp.js';
import { readLines } from '../../vault/backup/restore.js';
import { buildContainer } from '../../vault/container.js';
import { createLogger } from '../../vault/server.js';
import { openConfiguredDb, resolveMasterKey } from '../../vault/vault.js';
import type { Config } from '../../vault/config.js';

export interface Seeded {
  /** project/env -> name -> current value (deleted secrets absent). */
  values: Map<string, Map<string, string>>;
  /** A token with read:p0/e0 created by root, and a child it created. */
  reader: { id: string; token: string };
  child: { id: string; token: string };
  revoked: { id: string; token: string };
}

async function ok(r: Promise<{ status: number; body: any }>, what: string): Promise<any> {
  const res = await r;
  assert.ok(res.status >= 200 && res.status < 300, `${what}: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  return res.body;
}

const val = (seed: string, n = 64) => {
  let s = '';
  while (s.length < n) s += `${seed}:${s.length}|`;
  return s.slice(0, n);
};

/**
 * `projects` x `envs` environments with `secrets` each, plus history: every
 * 5th secret gets a second version, every 7th a third, every 11th is
 * deleted, every 13th deleted and set again. One extra empty environment,
 * a few tokens (one child token, one revoked) and whatever audit events
 * all that writes.
 */
export async function seedVault(s: TestServer, o: { projects?: number; envs?: number; secrets?: number } = {}): Promise<Seeded> {
  const P = o.projects ?? 3;
  const E = o.envs ?? 3;
  const N = o.secrets ?? 200;
  const values = new Map<string, Map<string, string>>();
  for (let p = 0; p < P; p++) {
    const proj = `p${p}`;
    await ok(s.api('POST', '/v1/projects', { name: proj }), 'create project');
    for (let e = 0; e < E; e++) {
      const env = `e${e}`;
      await ok(s.api('POST', `/v1/projects/${proj}/envs`, { name: env }), 'create env');
      const m = new Map<string, string>();
      const set: Record<string, string> = {};
      // Mixed case and underscores: names whose order differs between byte order and locale collations.
      for (let i = 0; i < N; i++) set[i % 3 === 0 ? `Key_${i}` : i % 3 === 1 ? `key${i}` : `KEY_${i}_x`] = val(`${proj}/${env}/${i}`);
      await ok(s.api('PATCH', `/v1/projects/${proj}/envs/${env}/secrets`, { set }), 'bulk set');
      for (const [k, v] of Object.entries(set)) m.set(k, v);
      const names = Object.keys(set);
      const v2: Record<string, string> = {};
      names.forEach((k, i) => {
        if (i % 5 === 0) v2[k] = val(`${k}-v2`);
      });
      await ok(s.api('PATCH', `/v1/projects/${proj}/envs/${env}/secrets`, { set: v2 }), 'bulk v2');
      const v3: Record<string, string> = {};
      names.forEach((k, i) => {
        if (i % 7 === 0) v3[k] = `multi\nline = "${k}" ünïcødé ✓ 🔑`;
      });
      await ok(s.api('PATCH', `/v1/projects/${proj}/envs/${env}/secrets`, { set: v3 }), 'bulk v3');
      for (const [k, v] of [...Object.entries(v2), ...Object.entries(v3)]) m.set(k, v);
      const del = names.filter((_, i) => i % 11 === 0 || i % 13 === 0);
      await ok(s.api('PATCH', `/v1/projects/${proj}/envs/${env}/secrets`, { delete: del }), 'bulk delete');
      for (const k of del) m.delete(k);
      for (const k of names.filter((_, i) => i % 13 === 0).slice(0, 5)) {
        await ok(s.api('PUT', `/v1/projects/${proj}/envs/${env}/secrets/${k}`, { value: `back-${k}` }), 'set again');
        m.set(k, `back-${k}`);
      }
      values.set(`${proj}/${env}`, m);
    }
  }
  await ok(s.api('POST', '/v1/projects/p0/envs', { name: 'empty' }), 'empty env');
  values.set('p0/empty', new Map());
  const reader = await ok(
    s.api('POST', '/v1/tokens', { name: 'reader', scopes: ['read:p0/e0', 'list:p0/e0'], ttl: '30d' }),
    'reader token',
  );
  const child = await ok(
    s.api('POST', '/v1/tokens', { name: 'reader-child', scopes: ['read:p0/e0'], ttl: '7d' }, reader.token),
    'child token',
  );
  const revoked = await ok(s.api('POST', '/v1/tokens', { name: 'gone', scopes: ['read:p1/e1'] }), 'token');
  await ok(s.api('DELETE', `/v1/tokens/${revoked.id}`), 'revoke');
  await ok(s.api('POST', '/v1/tokens', { name: 'backup-bot', scopes: ['backup'], description: 'nightly' }), 'backup token');
  return {
    values,
    reader: { id: reader.id, token: reader.token },
    child: { id: child.id, token: child.token },
    revoked: { id: revoked.id, token: revoked.token },
  };
}

/** POST /v1/backups and save the body; returns the file and the counts header. */
export async function backupOverHttp(
  s: TestServer,
  file: string,
  body: Record<string, unknown>,
  token = s.rootToken,
): Promise<{ status: number; counts: any; bytes: number; error?: any }> {
  const res = await fetch(`${s.url}/v1/backups`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const buf = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) return { status: res.status, counts: null, bytes: 0, error: JSON.parse(buf.toString('utf8')) };
  writeFileSync(file, buf, { mode: 0o600 });
  return { status: res.status, counts: JSON.parse(res.headers.get('x-hush-backup-counts') ?? 'null'), bytes: buf.length };
}

/** The decrypted lines of a backup file (header first). */
export async function backupFileLines(file: string, keys: Pick<DecryptOptions, 'identities' | 'passphrase'>): Promise<string[]> {
  const { plain } = await decryptBackupStream(createReadStream(file), keys);
  const out: string[] = [];
  for await (const l of readLines(plain)) out.push(JSON.stringify(l));
  return out;
}

/** The logical dump (body lines, as JSON text) of a live server's vault. */
export async function liveDump(s: TestServer): Promise<string[]> {
  const out: string[] = [];
  for await (const l of bodyLines(s.server.container.db, { keys: s.server.container.keys, store: s.server.container.stores.backup }))
    out.push(JSON.stringify(l));
  return out;
}

/** The logical dump of a vault at rest (no server), e.g. a restore target. */
export async function storedDump(config: Readonly<Config>): Promise<string[]> {
  const opened = openConfiguredDb(config);
  try {
    const mk = await resolveMasterKey(config);
    assert.ok(mk, 'restored vault has a master key');
    const c = buildContainer({ db: opened.db, storage: opened.storage, masterKey: mk.key, config, log: createLogger('silent') });
    const out: string[] = [];
    for await (const l of bodyLines(opened.db, { keys: c.keys, store: c.stores.backup })) out.push(JSON.stringify(l));
    return out;
  } finally {
    await opened.db.destroy();
  }
}

/**
 * A restored vault's dump equals the backup body (without format 5's end line), except for what the
 * restore itself appends: one backup.restore audit event, first of a stream
 * of its own, and that stream's registry line. A format 1 backup (before
 * audit streams) is compared as the restore turns it into format 2: its
 * events are stream 0, its audit_head becomes stream 0's registry line
 * (whose creation and closing times are the restore's).
 */
export function assertSameAsBackup(backupBody: string[], restored: string[]): void {
  const rows = restored.map((l) => JSON.parse(l));
  const restoreEvents = rows.filter((r) => r.t === 'audit' && r.action === 'backup.restore');
  const last = restoreEvents.at(-1);
  assert.ok(last, 'the restore recorded backup.restore');
  assert.equal(last.streamSeq, 1, 'in a stream of its own');
  assert.equal(last.prevHash, Buffer.alloc(32).toString('base64'));
  const isRestoreLine = (r: any) => r === last || (r.t === 'audit_stream' && r.id === last.stream);
  assert.equal(rows.filter(isRestoreLine).length, 2, 'the event and its stream');
  const timesOfStream0 = (r: any) => (r.t === 'audit_stream' && r.id === 0 ? { ...r, createdAt: 0, closedAt: 0 } : r);
  // Formats before 4 carry no version revisions: the restore rebuilt them (docs/history.md); they are checked, then left out.
  const withoutRevisions = !backupBody.some((l) => l.startsWith('{"t":"version"') && l.includes('"revision":'));
  const rebuilt = (r: any) => {
    if (!withoutRevisions || r.t !== 'version') return r;
    assert.ok(
      Number.isSafeInteger(r.revision) && r.revision >= 1,
      `version ${r.project}/${r.env}/${r.name} v${r.version} got a revision: ${r.revision}`,
    );
    const { revision: _r, ...rest } = r;
    return rest;
  };
  const b = rows.filter((r) => !isRestoreLine(r)).map((r) => JSON.stringify(timesOfStream0(rebuilt(r))));
  const formatOne = backupBody.some((l) => l.startsWith('{"t":"audit_head"'));
  // Format 5's end line (the body's hash) is not part of the body a dump writes.
  const a = backupBody
    .filter((l) => !l.startsWith('{"t":"end"'))
    .map((l) => {
      if (!formatOne) return l;
      const r = JSON.parse(l);
      if (r.t === 'audit') return JSON.stringify({ ...r, stream: 0, streamSeq: r.seq });
      if (r.t === 'audit_head') {
        if (r.seq === 0) return null;
        return JSON.stringify({
          t: 'audit_stream',
          id: 0,
          node: 'single chain (before streams)',
          createdAt: 0,
          headSeq: r.seq,
          headEvent: r.seq,
          headHash: r.hash,
          checkpointSeq: 0,
          closedAt: 0,
        });
      }
      return l;
    })
    .filter((l): l is string => l !== null)
    .map((l) => JSON.stringify(timesOfStream0(JSON.parse(l))));
  assert.equal(b.length, a.length, 'same number of lines');
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i]) assert.fail(`line ${i + 2} differs:\n  backup:   ${a[i].slice(0, 300)}\n  restored: ${b[i].slice(0, 300)}`);
}

/** Every file under `dir` (relative paths), or [] when it does not exist. */
export function listTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p, `${rel}${n}/`);
      else out.push(`${rel}${n}`);
    }
  };
  walk(dir, '');
  return out;
}

/** Runs the real `hush` binary to completion, like runHush, and reads its peak RSS (VmHWM) while it runs: it throws when none could be read. */
export async function runHushPeakRss(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult & { peakRss: number }> {
  const r = await new Promise<RunResult & { rss: ReturnType<typeof samplePeakRss> }>((resolve, reject) => {
    const child = spawn(process.execPath, [HUSH_BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const rss = samplePeakRss(child.pid!);
    let stdout = '';
    let stderr = '';
    const poll = setInterval(rss.sample, 50);
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('exit', () => rss.sample());
    child.on('close', (code, signal) => {
      clearTimeout(t);
      clearInterval(poll);
      resolve({ code, signal, stdout, stderr, rss });
    });
  });
  return { code: r.code, signal: r.signal, stdout: r.stdout, stderr: r.stderr, peakRss: r.rss.peak() };
}
