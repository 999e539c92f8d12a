// `npm run bench`: Hush against baselines measured in the same run, the same way.
// Prints a table and writes bench-results.json. `--smoke` runs tiny sizes (used by the test suite).
// Groups (--only=a,b): http, cluster, run, rotate, bulk (backup/restore at 10k and 100k versions; --bulk-1m adds 1M),
// audit (verify of --audit-events=N events, 1M by default).
// HTTP load comes from wrk in its own process (installed from Debian's packages when missing, as root).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHaproxy } from '../helpers/haproxy.js';
import { closedPort } from '../helpers/http.js';
import { freshPgDatabase } from '../helpers/server.js';
import { ensureTool } from '../helpers/tools.js';
import {
  api,
  DIST,
  fmt,
  HUSH_BIN,
  median,
  rssOf,
  seedEnv,
  spawnListening,
  timeCommand,
  wrk,
  type LoadResult,
  type Spawned,
} from './lib.js';
import { bulkFigures } from './bulk.js';

const smoke = process.argv.includes('--smoke');
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',');
/** Where to write the JSON results (the smoke test points this at a temp file). */
const OUT = process.argv.find((a) => a.startsWith('--out='))?.slice(6) ?? new URL('../../../bench-results.json', import.meta.url).pathname;
const RUNS = smoke ? 1 : 3;
const DURATION = smoke ? 1 : 5;
const PG_URL = process.env.HUSH_TEST_PG_URL || null;
const SIZES = smoke
  ? { rotationProjects: 10, perProject: 10, auditEvents: 2_000, runs: 3 }
  : {
      rotationProjects: 1000,
      perProject: 100,
      auditEvents: Number(process.argv.find((a) => a.startsWith('--audit-events='))?.slice(15) ?? 1_000_000),
      runs: 20,
    };

interface Row {
  name: string;
  value: number;
  unit: string;
  baseline: number | null;
  baselineName: string;
  ratio: number | null;
  budget: string;
  extra?: Record<string, number>;
}
const rows: Row[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'hush-bench-'));
const want = (n: string) => !only || only.includes(n);

function record(r: Omit<Row, 'ratio'> & { ratio?: number | null }) {
  const ratio = r.ratio !== undefined ? r.ratio : r.baseline ? r.value / r.baseline : null;
  rows.push({ ...r, ratio });
  process.stderr.write(
    `  ${r.name}: ${fmt(r.value)} ${r.unit} (baseline ${r.baselineName}: ` +
      `${r.baseline === null ? '-' : fmt(r.baseline)}; ratio ${ratio === null ? '-' : ratio.toFixed(2)})\n`,
  );
}

async function startHush(name: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Spawned & { dir: string }> {
  const dir = join(tmp, name);
  const s = await spawnListening(
    [
      HUSH_BIN,
      'server',
      '--data-dir',
      dir,
      '--listen',
      '127.0.0.1:0',
      '--log-level',
      'warn',
      '--rate-limit',
      '10000000',
      '--auth-fail-limit',
      '1000000',
      ...extra,
    ],
    env,
  );
  return { ...s, dir };
}

const SECRETS_PATH = '/v1/projects/api/envs/prod/secrets';

/** wrk against `url` (32 connections, DURATION seconds); `put` names the key each PUT writes. */
function load(url: string, path: string, token: string | null, opts: { put?: boolean } = {}): Promise<LoadResult> {
  return wrk(url + path, { seconds: DURATION, token, put: opts.put ? randomBytes(6).toString('hex') : undefined });
}

/** Load before the measured runs, so none of them measures a cold server (JIT, caches, pools). Not in --smoke. */
async function warmUp(url: string, path: string, token: string | null): Promise<void> {
  if (!smoke) await wrk(url + path, { seconds: 2, token });
}

const m = (xs: LoadResult[], k: keyof LoadResult) => median(xs.map((x) => x[k]));
/** What a row keeps of its runs besides the median: latency, and every request that did not get a 2xx (summed over the runs). */
const detail = (xs: LoadResult[]) => ({
  p50: m(xs, 'p50'),
  p99: m(xs, 'p99'),
  non2xx: xs.reduce((a, x) => a + x.non2xx, 0),
  socketErrors: xs.reduce((a, x) => a + x.socketErrors, 0),
});

/** A req/s row and a p99 row: Hush (or what is measured) next to its baseline, both with their own figures. */
function recordPair(name: string, hush: LoadResult[], base: LoadResult[], baseName: string, budgets: [string, string]) {
  const d = detail(hush);
  const sum = (xs: LoadResult[]) => xs.reduce((a, x) => a + x.requests, 0);
  const errors = {
    requests: sum(hush),
    non2xx: d.non2xx,
    socketErrors: d.socketErrors,
    baselineRequests: sum(base),
    baselineNon2xx: detail(base).non2xx,
    baselineSocketErrors: detail(base).socketErrors,
  };
  record({
    name: `${name} req/s`,
    value: m(hush, 'rps'),
    unit: 'req/s',
    baseline: m(base, 'rps'),
    baselineName: `${baseName} req/s`,
    budget: budgets[0],
    extra: { p50: d.p50, p99: d.p99, baselineP50: m(base, 'p50'), ...errors },
  });
  record({
    name: `${name} p99`,
    value: m(hush, 'p99'),
    unit: 'ms',
    baseline: m(base, 'p99'),
    baselineName: `${baseName} p99`,
    budget: budgets[1],
    extra: errors,
  });
}

/** The bare-Fastify baseline (bare-server.ts), answering bulk reads with a body of `size` bytes. */
function startBare(size: number): Promise<Spawned> {
  return spawnListening([join(DIST, 'test/bench/bare-server.js'), String(size)]);
}

/** Bulk read and PUT on one backend, each interleaved with the bare-Fastify baseline measured the same way. */
async function httpBench(label: string, extra: string[], env: NodeJS.ProcessEnv, opts: { put?: boolean } = {}) {
  const withPut = opts.put ?? true;
  const s = await startHush(`http-${label}`, extra, env);
  try {
    await seedEnv(s, 'api', 'prod', 50);
    const tok = (await api(s.url, s.rootToken!, 'POST', '/v1/tokens', { name: 'bench', scopes: ['read:api/prod', 'write:api/prod'] }))
      .token as string;
    const readTok = (await api(s.url, s.rootToken!, 'POST', '/v1/tokens', { name: 'bench-read', scopes: ['read:api/prod'] }))
      .token as string;
    const size = JSON.stringify(await api(s.url, readTok, 'GET', SECRETS_PATH)).length;
    const bare = await startBare(size);
    const idle = rssOf(s.child.pid!);
    const bareIdle = rssOf(bare.child.pid!);
    try {
      const hushR: LoadResult[] = [];
      const bareR: LoadResult[] = [];
      const hushW: LoadResult[] = [];
      const bareW: LoadResult[] = [];
      let peakDuringLoad = 0;
      await warmUp(bare.url, SECRETS_PATH, null);
      await warmUp(s.url, SECRETS_PATH, readTok);
      for (let i = 0; i < RUNS; i++) {
        bareR.push(await load(bare.url, SECRETS_PATH, null));
        const sampler = setInterval(() => {
          peakDuringLoad = Math.max(peakDuringLoad, rssOf(s.child.pid!).rssMb);
        }, 200);
        hushR.push(await load(s.url, SECRETS_PATH, readTok));
        clearInterval(sampler);
        if (!withPut) continue;
        bareW.push(await load(bare.url, `${SECRETS_PATH}/PUT_${i}`, null, { put: true }));
        hushW.push(await load(s.url, `${SECRETS_PATH}/PUT_${i}`, tok, { put: true }));
      }
      recordPair(
        `bulk read ${label}`,
        hushR,
        bareR,
        'bare Fastify GET',
        withPut ? ['>= 0.35x', '< 20 ms'] : ['- (cache off)', '- (cache off)'],
      );
      if (!withPut) return;
      recordPair(`PUT ${label}`, hushW, bareW, 'bare Fastify PUT', [label === 'sqlite' ? '>= 2000/s' : '-', '-']);
      if (label === 'sqlite') {
        record({
          name: 'server RSS idle',
          value: idle.rssMb,
          unit: 'MB',
          baseline: bareIdle.rssMb,
          baselineName: 'bare Fastify idle',
          budget: '< 120 MB',
        });
        record({
          name: 'server RSS under bulk-read load',
          value: peakDuringLoad,
          unit: 'MB',
          baseline: idle.rssMb,
          baselineName: 'Hush idle',
          budget: '-',
        });
      }
    } finally {
      await bare.stop();
    }
  } finally {
    await s.stop();
  }
}

/**
 * Two Hush nodes on one PostgreSQL behind HAProxy, on the same machine as
 * everything else. In one run, the same way: the bulk read on one node
 * directly, on that node through HAProxy, and on both through HAProxy; and
 * the bare baseline directly and through HAProxy, so HAProxy's own cost shows.
 */
async function clusterBench() {
  ensureTool('haproxy');
  const pg = (await freshPgDatabase())!;
  const keyFile = join(tmp, 'cluster-master.key');
  writeFileSync(keyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  const shared = ['--database-url', pg.url, '--master-key-file', keyFile];
  const started: Spawned[] = [];
  try {
    const a = await startHush('cluster-a', shared);
    started.push(a);
    const b = await startHush('cluster-b', shared);
    started.push(b);
    await seedEnv(a, 'api', 'prod', 50);
    const readTok = (await api(a.url, a.rootToken!, 'POST', '/v1/tokens', { name: 'bench-read', scopes: ['read:api/prod'] }))
      .token as string;
    const size = JSON.stringify(await api(b.url, readTok, 'GET', SECRETS_PATH)).length;
    const bare = await startBare(size);
    started.push(bare);
    const host = (u: string) => new URL(u).host;
    const dir = join(tmp, 'haproxy');
    mkdirSync(dir);
    const bind = async () => `127.0.0.1:${await closedPort()}`;
    const lb = await startHaproxy(dir, [
      {
        name: 'hush2',
        bind: await bind(),
        servers: [
          { name: 'node1', address: host(a.url) },
          { name: 'node2', address: host(b.url) },
        ],
      },
      { name: 'hush1', bind: await bind(), servers: [{ name: 'node1', address: host(a.url) }] },
      { name: 'bare', bind: await bind(), servers: [{ name: 'bare1', address: host(bare.url) }] },
    ]);
    try {
      for (const srv of ['hush2_nodes/node1', 'hush2_nodes/node2', 'hush1_nodes/node1', 'bare_nodes/bare1'])
        await lb.waitStatus(srv, /^UP$/);
      const bareDirect: LoadResult[] = [];
      const bareVia: LoadResult[] = [];
      const one: LoadResult[] = [];
      const oneVia: LoadResult[] = [];
      const two: LoadResult[] = [];
      await warmUp(lb.url.bare, SECRETS_PATH, null);
      await warmUp(lb.url.hush2, SECRETS_PATH, readTok);
      for (let i = 0; i < RUNS; i++) {
        bareDirect.push(await load(bare.url, SECRETS_PATH, null));
        bareVia.push(await load(lb.url.bare, SECRETS_PATH, null));
        one.push(await load(a.url, SECRETS_PATH, readTok));
        oneVia.push(await load(lb.url.hush1, SECRETS_PATH, readTok));
        two.push(await load(lb.url.hush2, SECRETS_PATH, readTok));
      }
      recordPair('bulk read postgres, 2 nodes via HAProxy', two, one, '1 node direct', ['>= 0.8x', '-']);
      recordPair('bulk read postgres, 1 node via HAProxy', oneVia, one, '1 node direct', ['-', '-']);
      recordPair('bare Fastify GET via HAProxy', bareVia, bareDirect, 'bare Fastify GET direct', ['-', '-']);
    } finally {
      await lb.stop();
    }
  } finally {
    for (const s of started.reverse()) await s.stop();
    await pg.drop();
  }
}

async function runBench() {
  const s = await startHush('run');
  try {
    await seedEnv(s, 'api', 'prod', 20);
    const tok = (await api(s.url, s.rootToken!, 'POST', '/v1/tokens', { name: 'run', scopes: ['read:api/prod'] })).token as string;
    const env = { HUSH_ADDR: s.url, HUSH_TOKEN: tok, HUSH_PROJECT: 'api', HUSH_ENV: 'prod' };
    const t: number[] = [];
    const n: number[] = [];
    const h: number[] = [];
    const trueBin = spawnSync('sh', ['-c', 'command -v true']).stdout.toString().trim() || '/bin/true';
    for (let i = 0; i < SIZES.runs; i++) {
      t.push(timeCommand(trueBin, []).ms);
      n.push(timeCommand(process.execPath, ['-e', '0']).ms);
      const r = timeCommand(process.execPath, [HUSH_BIN, 'run', '--', trueBin], env);
      if (r.code !== 0) throw new Error(`hush run -- true exited ${r.code}`);
      h.push(r.ms);
    }
    record({
      name: 'hush run -- true (median)',
      value: median(h),
      unit: 'ms',
      baseline: median(n),
      baselineName: 'node -e 0',
      budget: '-',
      extra: { true: median(t) },
    });
    record({
      name: 'hush run overhead over true',
      value: median(h) - median(t),
      unit: 'ms',
      baseline: median(n) - median(t),
      baselineName: 'node -e 0 over true',
      budget: '< 150 ms',
    });
  } finally {
    await s.stop();
  }
}

async function rotationBench() {
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
    record({
      name: `rotate master key (${SIZES.rotationProjects} projects, ${versions} versions)`,
      value: rot,
      unit: 'ms',
      baseline: rotSmall,
      baselineName: `same projects, ${SIZES.rotationProjects} versions`,
      budget: '< 2000 ms',
    });
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

/**
 * Backup and restore (bulk.ts) on each engine at each size, with their
 * ratios to gpg in the same run and their peak RSS. 1M versions only with
 * --bulk-1m (a few minutes per engine).
 */
async function bulkBench() {
  const sizes = smoke ? [300] : [10_000, 100_000, ...(process.argv.includes('--bulk-1m') ? [1_000_000] : [])];
  // The smoke run (npm test) keeps to SQLite here: the PostgreSQL path is the same harness, and the test suite restores on PostgreSQL anyway.
  const engines: ('sqlite' | 'postgres')[] = PG_URL && !smoke ? ['sqlite', 'postgres'] : ['sqlite'];
  if (!PG_URL) process.stderr.write('  bulk: postgres skipped (needs HUSH_TEST_PG_URL)\n');
  for (const engine of engines) {
    for (const n of sizes) {
      const f = await bulkFigures(tmp, engine, n, n >= 1_000_000 ? 1 : RUNS);
      const file = engine === 'sqlite' ? 'hush.db' : 'pg_dump of the database';
      record({
        name: `backup ${n} versions (${engine})`,
        value: median(f.backupMs),
        unit: 'ms',
        baseline: median(f.backupBaselineMs),
        baselineName: `gpg --symmetric of ${file}`,
        budget: '<= 3x',
        extra: { bytes: f.backupBytes, baselineBytes: f.baselineFileBytes },
      });
      record({
        name: `restore ${n} versions (${engine})`,
        value: median(f.restoreMs),
        unit: 'ms',
        baseline: median(f.restoreBaselineMs),
        baselineName: `gpg --decrypt of ${file}`,
        budget: '<= 10x',
      });
      record({
        name: `backup: server peak RSS (${n} versions, ${engine})`,
        value: f.backupPeakRssMb,
        unit: 'MB',
        baseline: null,
        baselineName: '-',
        budget: '< 200 MB',
      });
      record({
        name: `restore: peak RSS (${n} versions, ${engine})`,
        value: f.restorePeakRssMb,
        unit: 'MB',
        baseline: null,
        baselineName: '-',
        budget: '< 200 MB',
      });
    }
  }
}

async function auditBench(engine: 'sqlite' | 'postgres') {
  const dir = join(tmp, `audit-${engine}`);
  const pg = engine === 'postgres' ? (await freshPgDatabase())! : null;
  const dbArgs = pg ? ['--database-url', pg.url] : [];
  const init = spawnSync(process.execPath, [HUSH_BIN, 'operator', 'init', '--data-dir', dir, ...dbArgs, '--json'], { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(init.stderr);
  const root = JSON.parse(init.stdout).rootToken as string;
  const seed = spawnSync(
    process.execPath,
    [join(DIST, 'test/bench/seed-audit.js'), dir, String(SIZES.auditEvents), ...(pg ? [pg.url] : [])],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  if (seed.status !== 0) throw new Error(seed.stderr);
  const seeded = JSON.parse(seed.stdout.trim().split('\n').pop()!);
  const s = await startHush(`audit-${engine}`, dbArgs);
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
    record({
      name: `audit verify (${checked} events, ${engine})`,
      value: median(times),
      unit: 'ms',
      baseline: seeded.readMs,
      baselineName: 'plain paged read of every event',
      budget: '<= 1.5x',
    });
    record({
      name: `audit verify over a raw read (${checked} events, ${engine})`,
      value: median(times),
      unit: 'ms',
      baseline: seeded.rawReadMs,
      baselineName: 'the same pages as raw rows, no MAC',
      budget: '-',
    });
  } finally {
    await s.stop();
    await pg?.drop();
  }
}

async function main() {
  process.stderr.write(`hush bench (${smoke ? 'smoke' : 'full'}, median of ${RUNS}) on ${process.version}\n`);
  if (want('http')) {
    await httpBench('sqlite', [], {});
    // The same bulk read with the decrypted-value cache off: every read decrypts every value.
    await httpBench('sqlite, --value-cache 0', ['--value-cache', '0'], {}, { put: false });
    if (PG_URL) {
      const pg = (await freshPgDatabase())!;
      try {
        await httpBench('postgres', ['--database-url', pg.url], {});
      } finally {
        await pg.drop();
      }
    }
  }
  if (want('cluster')) {
    if (PG_URL) await clusterBench();
    else process.stderr.write('  cluster: skipped (2 nodes on one PostgreSQL need HUSH_TEST_PG_URL)\n');
  }
  if (want('run')) await runBench();
  if (want('rotate')) await rotationBench();
  if (want('bulk')) await bulkBench();
  if (want('audit')) {
    await auditBench('sqlite');
    if (PG_URL) await auditBench('postgres');
  }
  // Errors: requests without a 2xx (non-2xx answers plus socket errors) of the measured side / of the baseline, over all runs.
  const errors = (r: Row) =>
    r.extra?.non2xx === undefined
      ? '-'
      : `${r.extra.non2xx + r.extra.socketErrors} / ${r.extra.baselineNon2xx + r.extra.baselineSocketErrors}`;
  const lines = [
    '| Benchmark | Hush | Baseline | Ratio | Budget | Errors |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${fmt(r.value)} ${r.unit} | ` +
        `${r.baseline === null ? '-' : `${fmt(r.baseline)} (${r.baselineName})`} | ` +
        `${r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`} | ${r.budget} | ${errors(r)} |`,
    ),
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
