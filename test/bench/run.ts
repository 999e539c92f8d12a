// `npm run bench`: Hush against baselines measured in the same run, the same way.
// Prints a table and writes bench-results.json. `--smoke` runs tiny sizes (used by the test suite).
import autocannon from 'autocannon';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, DIST, fmt, HUSH_BIN, median, resetPeakRss, rssOf, seedEnv, spawnListening, timeCommand, type Spawned } from './lib.js';

const smoke = process.argv.includes('--smoke');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
/** Where to write the JSON results (the smoke test points this at a temp file). */
const OUT = process.argv.find((a) => a.startsWith('--out='))?.slice(6) ?? new URL('../../../bench-results.json', import.meta.url).pathname;
const RUNS = smoke ? 1 : 3;
const DURATION = smoke ? 1 : 5;
const PG_URL = process.env.HUSH_TEST_PG_URL || null;
const SIZES = smoke
  ? { rotationProjects: 10, perProject: 10, auditEvents: 2_000, runs: 3 }
  : { rotationProjects: 1000, perProject: 100, auditEvents: 1_000_000, runs: 20 };

interface Row { name: string; value: number; unit: string; baseline: number | null; baselineName: string; ratio: number | null; budget: string; extra?: Record<string, number> }
const rows: Row[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'hush-bench-'));
const want = (n: string) => !only || only.includes(n);

function record(r: Omit<Row, 'ratio'> & { ratio?: number | null }) {
  const ratio = r.ratio !== undefined ? r.ratio : r.baseline ? r.value / r.baseline : null;
  rows.push({ ...r, ratio });
  process.stderr.write(`  ${r.name}: ${fmt(r.value)} ${r.unit} (baseline ${r.baselineName}: ${r.baseline === null ? '-' : fmt(r.baseline)}; ratio ${ratio === null ? '-' : ratio.toFixed(2)})\n`);
}

async function startHush(name: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Spawned & { dir: string }> {
  const dir = join(tmp, name);
  const s = await spawnListening([HUSH_BIN, 'server', '--data-dir', dir, '--listen', '127.0.0.1:0', '--log-level', 'warn', '--rate-limit', '10000000', '--auth-fail-limit', '1000000', ...extra], env);
  return { ...s, dir };
}

async function freshPg(): Promise<{ url: string; drop: () => Promise<void> }> {
  const { default: pg } = await import('pg');
  const name = `hush_bench_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const c = new pg.Client({ connectionString: PG_URL! }); await c.connect(); await c.query(`create database ${name}`); await c.end();
  const u = new URL(PG_URL!); u.pathname = `/${name}`;
  return { url: u.toString(), drop: async () => { const d = new pg.Client({ connectionString: PG_URL! }); await d.connect(); await d.query(`drop database if exists ${name} with (force)`); await d.end(); } };
}


async function load(url: string, path: string, token: string | null, opts: { method?: string; body?: () => string } = {}) {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  if (opts.body) headers['content-type'] = 'application/json';
  const r = await autocannon({
    url: url + path, connections: 32, duration: DURATION, method: opts.method ?? 'GET', headers,
    requests: opts.body ? [{ method: opts.method, path, headers, setupRequest: (req) => ({ ...req, body: opts.body!() }) }] : undefined,
  });
  if (r.errors || r.non2xx) process.stderr.write(`    (warning: ${r.errors} errors, ${r.non2xx} non-2xx)\n`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
}

/** Bulk read and PUT on one backend, interleaved with the bare-Fastify baseline. */
async function httpBench(label: string, extra: string[], env: NodeJS.ProcessEnv, opts: { put?: boolean } = {}) {
  const withPut = opts.put ?? true;
  const s = await startHush(`http-${label}`, extra, env);
  try {
    await seedEnv(s, 'api', 'prod', 50);
    const tok = (await api(s.url, s.rootToken!, 'POST', '/v1/tokens', { name: 'bench', scopes: ['read:api/prod', 'write:api/prod'] })).token as string;
    const readTok = (await api(s.url, s.rootToken!, 'POST', '/v1/tokens', { name: 'bench-read', scopes: ['read:api/prod'] })).token as string;
    const size = JSON.stringify(await api(s.url, readTok, 'GET', '/v1/projects/api/envs/prod/secrets')).length;
    const bare = await spawnListening([join(DIST, 'test/bench/bare-server.js'), String(size)]);
    const idle = rssOf(s.child.pid!);
    const bareIdle = rssOf(bare.child.pid!);
    try {
      const hushR: Awaited<ReturnType<typeof load>>[] = [];
      const bareR: Awaited<ReturnType<typeof load>>[] = [];
      const hushW: Awaited<ReturnType<typeof load>>[] = [];
      const bareW: Awaited<ReturnType<typeof load>>[] = [];
      let peakDuringLoad = 0;
      for (let i = 0; i < RUNS; i++) {
        bareR.push(await load(bare.url, '/v1/projects/api/envs/prod/secrets', null));
        const sampler = setInterval(() => { peakDuringLoad = Math.max(peakDuringLoad, rssOf(s.child.pid!).rssMb); }, 200);
        hushR.push(await load(s.url, '/v1/projects/api/envs/prod/secrets', readTok));
        clearInterval(sampler);
        if (!withPut) continue;
        let n = 0;
        const body = () => JSON.stringify({ value: `v-${n++}-${randomBytes(24).toString('hex')}` });
        bareW.push(await load(bare.url, '/v1/projects/api/envs/prod/secrets', null, { method: 'GET' }));
        hushW.push(await load(s.url, `/v1/projects/api/envs/prod/secrets/PUT_${i}`, tok, { method: 'PUT', body }));
      }
      const m = (xs: { rps: number; p50: number; p99: number }[], k: 'rps' | 'p50' | 'p99') => median(xs.map((x) => x[k]));
      record({ name: `bulk read ${label} req/s`, value: m(hushR, 'rps'), unit: 'req/s', baseline: m(bareR, 'rps'), baselineName: 'bare Fastify static JSON', budget: withPut ? '>= 0.35x' : '- (cache off)', extra: { p50: m(hushR, 'p50'), p99: m(hushR, 'p99'), bodyBytes: size } });
      record({ name: `bulk read ${label} p99`, value: m(hushR, 'p99'), unit: 'ms', baseline: m(bareR, 'p99'), baselineName: 'bare Fastify p99', budget: withPut ? '< 20 ms' : '- (cache off)' });
      if (!withPut) return;
      record({ name: `PUT ${label} req/s`, value: m(hushW, 'rps'), unit: 'req/s', baseline: m(bareW, 'rps'), baselineName: 'bare Fastify static JSON', budget: label === 'sqlite' ? '>= 2000/s' : '-', extra: { p99: m(hushW, 'p99') } });
      record({ name: `PUT ${label} p99`, value: m(hushW, 'p99'), unit: 'ms', baseline: m(bareW, 'p99'), baselineName: 'bare Fastify p99', budget: '-' });
      if (label === 'sqlite') {
        record({ name: 'server RSS idle', value: idle.rssMb, unit: 'MB', baseline: bareIdle.rssMb, baselineName: 'bare Fastify idle', budget: '< 120 MB' });
        record({ name: 'server RSS under bulk-read load', value: peakDuringLoad, unit: 'MB', baseline: idle.rssMb, baselineName: 'Hush idle', budget: '-' });
      }
    } finally {
      await bare.stop();
    }
  } finally {
    await s.stop();
  }
}

async function runBench() {
  const s = await startHush('run');
  try {
    await seedEnv(s, 'api', 'prod', 20);
    const tok = (await api(s.url, s.rootToken!, 'POST', '/v1/tokens', { name: 'run', scopes: ['read:api/prod'] })).token as string;
    const env = { HUSH_ADDR: s.url, HUSH_TOKEN: tok, HUSH_PROJECT: 'api', HUSH_ENV: 'prod' };
    const t: number[] = []; const n: number[] = []; const h: number[] = [];
    const trueBin = spawnSync('sh', ['-c', 'command -v true']).stdout.toString().trim() || '/bin/true';
    for (let i = 0; i < SIZES.runs; i++) {
      t.push(timeCommand(trueBin, []).ms);
      n.push(timeCommand(process.execPath, ['-e', '0']).ms);
      const r = timeCommand(process.execPath, [HUSH_BIN, 'run', '--', trueBin], env);
      if (r.code !== 0) throw new Error(`hush run -- true exited ${r.code}`);
      h.push(r.ms);
    }
    record({ name: 'hush run -- true (median)', value: median(h), unit: 'ms', baseline: median(n), baselineName: 'node -e 0', budget: '-', extra: { true: median(t) } });
    record({ name: 'hush run overhead over true', value: median(h) - median(t), unit: 'ms', baseline: median(n) - median(t), baselineName: 'node -e 0 over true', budget: '< 150 ms' });
  } finally {
    await s.stop();
  }
}

async function rotationAndBackupBench() {
  const s = await startHush('bulk');
  try {
    const t0 = Date.now();
    for (let p = 0; p < SIZES.rotationProjects; p++) await seedEnv(s, `p${p}`, 'prod', SIZES.perProject, 32);
    process.stderr.write(`  seeded ${SIZES.rotationProjects} projects x ${SIZES.perProject} secrets in ${Date.now() - t0} ms\n`);
    const rotate = async () => {
      const t = process.hrtime.bigint();
      await api(s.url, s.rootToken!, 'POST', '/v1/sys/rotate-master', { newKey: randomBytes(32).toString('base64') });
      return Number(process.hrtime.bigint() - t) / 1e6;
    };
    // Baseline: the same rotation on a vault with the same projects but 1 version each.
    const small = await startHush('bulk-small');
    for (let p = 0; p < SIZES.rotationProjects; p++) await seedEnv(small, `p${p}`, 'prod', 1, 32);
    const rotSmall = median(await seq(RUNS, () => rotateOn(small)));
    await small.stop();
    const rot = median(await seq(RUNS, rotate));
    const versions = SIZES.rotationProjects * SIZES.perProject;
    record({ name: `rotate master key (${SIZES.rotationProjects} projects, ${versions} versions)`, value: rot, unit: 'ms', baseline: rotSmall, baselineName: `same projects, ${SIZES.rotationProjects} versions`, budget: '< 2000 ms' });

    // Backup: stream from the server into a file; baseline: gpg --symmetric of the raw SQLite file.
    // The server's peak RSS is reset first (clear_refs), so it is the backup's peak, not the seeding's.
    const pass = join(tmp, 'pass'); writeFileSync(pass, 'bench-passphrase', { mode: 0o600 });
    const out = join(tmp, 'bench-backup.pgp');
    const backups: number[] = [];
    let serverPeak = 0;
    for (let i = 0; i < RUNS; i++) {
      resetPeakRss(s.child.pid!);
      const tb = process.hrtime.bigint();
      const res = await fetch(`${s.url}/v1/backups`, { method: 'POST', headers: { authorization: `Bearer ${s.rootToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ passphrase: 'bench-passphrase' }) });
      if (!res.ok) throw new Error(`backup -> ${res.status}`);
      writeFileSync(out, Buffer.from(await res.arrayBuffer()), { mode: 0o600 });
      backups.push(Number(process.hrtime.bigint() - tb) / 1e6);
      serverPeak = Math.max(serverPeak, rssOf(s.child.pid!).peakMb);
    }
    const gpgHome = mkdtempSync(join(tmp, 'gnupg-'));
    const dbCopy = join(tmp, 'hush-db-copy.db');
    spawnSync('sqlite3', [join(s.dir, 'hush.db'), `.backup ${dbCopy}`]);
    const gpgIn = statSync(dbCopy, { throwIfNoEntry: false }) ? dbCopy : join(s.dir, 'hush.db');
    const gpgB = median(Array.from({ length: RUNS }, () => timeCommand('gpg', ['--homedir', gpgHome, '--batch', '--yes', '--pinentry-mode', 'loopback', '--passphrase-file', pass, '--symmetric', '-o', join(tmp, 'raw.gpg'), gpgIn]).ms));
    record({ name: `backup ${versions} versions (wall)`, value: median(backups), unit: 'ms', baseline: gpgB, baselineName: 'gpg --symmetric of hush.db', budget: '< 20000 ms', extra: { serverPeakRssMb: serverPeak, bytes: statSync(out).size } });
    record({ name: 'backup: server peak RSS', value: serverPeak, unit: 'MB', baseline: null, baselineName: '-', budget: '< 300 MB' });

    // Restore in a child process (CLI when available), peak RSS from the child's rusage.
    const restores: number[] = [];
    let restorePeak = 0;
    for (let i = 0; i < RUNS; i++) {
      const target = join(tmp, `restored-${i}`);
      const tr = process.hrtime.bigint();
      const child = spawnSync(process.execPath, [join(DIST, 'test/bench/restore-child.js'), out, pass, target], { encoding: 'utf8' });
      restores.push(Number(process.hrtime.bigint() - tr) / 1e6);
      if (child.status !== 0) throw new Error(`restore failed: ${child.stderr}`);
      const rr = JSON.parse(child.stdout.trim().split('\n').pop()!);
      restorePeak = Math.max(restorePeak, rr.maxRssMb);
      rmSync(target, { recursive: true, force: true });
    }
    const gpgD = median(Array.from({ length: RUNS }, () => timeCommand('gpg', ['--homedir', gpgHome, '--batch', '--yes', '--pinentry-mode', 'loopback', '--passphrase-file', pass, '-o', join(tmp, 'raw.db'), '--decrypt', join(tmp, 'raw.gpg')]).ms));
    record({ name: `restore ${versions} versions (wall)`, value: median(restores), unit: 'ms', baseline: gpgD, baselineName: 'gpg --decrypt of hush.db', budget: '< 20000 ms', extra: { peakRssMb: restorePeak } });
    record({ name: 'restore: peak RSS', value: restorePeak, unit: 'MB', baseline: null, baselineName: '-', budget: '< 300 MB' });
  } finally {
    await s.stop();
  }
}

async function rotateOn(s: Spawned) {
  const t = process.hrtime.bigint();
  await api(s.url, s.rootToken!, 'POST', '/v1/sys/rotate-master', { newKey: randomBytes(32).toString('base64') });
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function seq<T>(n: number, fn: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(await fn());
  return out;
}

async function auditBench() {
  const dir = join(tmp, 'audit');
  const init = spawnSync(process.execPath, [HUSH_BIN, 'operator', 'init', '--data-dir', dir, '--json'], { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(init.stderr);
  const root = JSON.parse(init.stdout).rootToken as string;
  const seed = spawnSync(process.execPath, [join(DIST, 'test/bench/seed-audit.js'), dir, String(SIZES.auditEvents)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (seed.status !== 0) throw new Error(seed.stderr);
  const seeded = JSON.parse(seed.stdout.trim().split('\n').pop()!);
  const s = await startHush('audit');
  try {
    const times: number[] = [];
    let checked = 0;
    for (let i = 0; i < RUNS; i++) {
      const t = process.hrtime.bigint();
      const r = await api(s.url, root, 'GET', '/v1/audit/verify');
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (!r.ok) throw new Error(`verify failed: ${JSON.stringify(r)}`);
      checked = r.checked;
    }
    record({ name: `audit verify (${checked} events)`, value: median(times), unit: 'ms', baseline: seeded.readMs, baselineName: 'plain paged read of every event', budget: '< 10000 ms' });
  } finally {
    await s.stop();
  }
}

async function main() {
  process.stderr.write(`hush bench (${smoke ? 'smoke' : 'full'}, median of ${RUNS}) on ${process.version}\n`);
  if (want('http')) {
    await httpBench('sqlite', [], {});
    // The same bulk read with the decrypted-value cache off: every read decrypts every value.
    await httpBench('sqlite, --value-cache 0', ['--value-cache', '0'], {}, { put: false });
    if (PG_URL) {
      const pg = await freshPg();
      try { await httpBench('postgres', ['--database-url', pg.url], {}); } finally { await pg.drop(); }
    }
  }
  if (want('run')) await runBench();
  if (want('bulk')) await rotationAndBackupBench();
  if (want('audit')) await auditBench();
  const lines = [
    '| Benchmark | Hush | Baseline | Ratio | Budget |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.name} | ${fmt(r.value)} ${r.unit} | ${r.baseline === null ? '-' : `${fmt(r.baseline)} (${r.baselineName})`} | ${r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`} | ${r.budget} |`),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  writeFileSync(OUT, JSON.stringify({ date: new Date().toISOString(), node: process.version, smoke, runs: RUNS, rows }, null, 2) + '\n');
  rmSync(tmp, { recursive: true, force: true });
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
  rmSync(tmp, { recursive: true, force: true });
  process.exit(1);
});
