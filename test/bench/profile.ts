// CPU profile of the bulk-read path: starts `hush server` under --cpu-prof,
// seeds an env with 50 secrets, drives GET .../secrets (or PUTs) with wrk in
// its own process (32 connections), stops the server and prints the top costs, by function (self
// time) and by component (inclusive, attributed to the package or Hush layer
// on the stack).
//
//   node dist/test/bench/profile.js [--seconds=10] [--path=read|put|verify|backup|restore] [--events=200000]
//                                   [--versions=100000] [--keep=DIR] [--database-url=postgres://...]
//   node dist/test/bench/profile.js --file=X.cpuprofile   (the same report of a profile written elsewhere, e.g.
//                                                           `node --cpu-prof dist/test/bench/restore-child.js ...`)
//
// --path=verify seeds --events audit events (seed-audit.js) and profiles GET /v1/audit/verify instead.
// --path=backup and --path=restore seed a vault of --versions versions as the bulk bench does (make-backup.js,
// restored), then profile the server's POST /v1/backups, or a restore of that backup (restore-child.js,
// what `hush backup restore` runs). With --database-url (an admin URL), source and target are fresh databases.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { freshPgDatabase } from '../helpers/server.js';
import { api, DIST, HUSH_BIN, spawnListening, wrk } from './lib.js';

const arg = (k: string) => process.argv.find((a) => a.startsWith(`--${k}=`))?.slice(k.length + 3);
const seconds = Number(arg('seconds') ?? 10);
const mode = arg('path') ?? 'read';
const dbUrl = arg('database-url');
const tmp = mkdtempSync(join(tmpdir(), 'hush-prof-'));
const profDir = arg('keep') ?? join(tmp, 'prof');
mkdirSync(profDir, { recursive: true });

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

/** Which component a frame belongs to: a package, a Hush layer, or a runtime bucket. */
function component(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)' || fn === '(program)' || fn === '(root)') return fn;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const hush = /dist\/(vault\/[^/]+|cli|sdk)/.exec(url);
  if (hush) return `hush ${hush[1]}`;
  if (url.startsWith('node:')) return `node ${url.slice(5).split('/')[0]}`;
  return url ? 'other' : `native ${fn || '(anonymous)'}`;
}

function analyse(p: Profile) {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const selfByFn = new Map<string, number>();
  const inclByComp = new Map<string, number>();
  const selfByComp = new Map<string, number>();
  const inclByHushFn = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const key =
      `${n.callFrame.functionName || '(anonymous)'} ` +
      `${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, '')}:${n.callFrame.lineNumber + 1}`;
    selfByFn.set(key, (selfByFn.get(key) ?? 0) + us);
    if (n.callFrame.functionName === '(idle)') continue;
    busy += us;
    const own = component(n.callFrame.url, n.callFrame.functionName);
    selfByComp.set(own, (selfByComp.get(own) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      const c = component(f.url, f.functionName);
      if (c === '(root)') continue;
      if (!seen.has(c)) {
        seen.add(c);
        inclByComp.set(c, (inclByComp.get(c) ?? 0) + us);
      }
      if (c.startsWith('hush ') || c.startsWith('fastify') || c.startsWith('@fastify') || c === 'knex') {
        const fn = `${c} ${f.functionName || '(anonymous)'}:${f.lineNumber + 1}`;
        if (!seen.has(fn)) {
          seen.add(fn);
          inclByHushFn.set(fn, (inclByHushFn.get(fn) ?? 0) + us);
        }
      }
    }
  }
  const top = (m: Map<string, number>, n: number, of: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `${((100 * v) / of).toFixed(1).padStart(5)}%  ${k}`);
  return {
    total,
    busy,
    self: top(new Map([...selfByFn].filter(([k]) => !k.startsWith('(idle)'))), 20, busy),
    components: top(inclByComp, 15, busy),
    hushFns: top(inclByHushFn, 40, busy),
    ownComponents: top(selfByComp, 15, busy),
  };
}

async function main() {
  const given = arg('file');
  if (given) {
    report([`profile ${given}`], given);
    rmSync(tmp, { recursive: true, force: true });
    return;
  }
  const dir = join(tmp, 'data');
  const extra = dbUrl ? ['--database-url', dbUrl] : [];
  if (mode === 'verify') return verifyProfile(dir, extra);
  if (mode === 'backup' || mode === 'restore') return bulkProfile(mode);
  const s = await spawnListening([
    '--cpu-prof',
    '--cpu-prof-dir',
    profDir,
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
    ...extra,
  ]);
  const root = s.rootToken!;
  await api(s.url, root, 'POST', '/v1/projects', { name: 'api' });
  await api(s.url, root, 'POST', '/v1/projects/api/envs', { name: 'prod' });
  const set: Record<string, string> = {};
  for (let i = 0; i < 50; i++) set[`SECRET_${String(i).padStart(3, '0')}`] = randomBytes(64).toString('base64').slice(0, 64);
  await api(s.url, root, 'PATCH', '/v1/projects/api/envs/prod/secrets', { set });
  const tok = (await api(s.url, root, 'POST', '/v1/tokens', { name: 'prof', scopes: ['read:api/prod', 'write:api/prod'] })).token as string;
  const path = mode === 'put' ? '/v1/projects/api/envs/prod/secrets/PROF' : '/v1/projects/api/envs/prod/secrets';
  const r = await wrk(s.url + path, { seconds, token: tok, put: mode === 'put' ? randomBytes(6).toString('hex') : undefined });
  await s.stop();
  report([
    `${mode} path (wrk): ${Math.round(r.rps)} req/s, p50 ${r.p50.toFixed(1)} ms, p99 ` +
      `${r.p99.toFixed(1)} ms, ${r.non2xx} non-2xx, ${r.socketErrors} socket errors`,
  ]);
  if (!arg('keep')) rmSync(tmp, { recursive: true, force: true });
}

function report(head: string[], given?: string) {
  const file =
    given ??
    readdirSync(profDir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(profDir, f))
      .pop();
  if (!file) throw new Error('no profile written');
  const a = analyse(JSON.parse(readFileSync(file, 'utf8')));
  process.stdout.write(
    [
      ...head,
      `profile ${file}: ${(a.busy / 1e6).toFixed(1)} s busy of ${(a.total / 1e6).toFixed(1)} s`,
      'inclusive by component (share of busy time):',
      ...a.components.map((l) => '  ' + l),
      'inclusive by function (Hush, Fastify, knex):',
      ...a.hushFns.map((l) => '  ' + l),
      'self time by component:',
      ...a.ownComponents.map((l) => '  ' + l),
      'self time by function:',
      ...a.self.map((l) => '  ' + l),
    ].join('\n') + '\n',
  );
}

async function verifyProfile(dir: string, extra: string[]) {
  const events = Number(arg('events') ?? 200_000);
  const init = spawnSync(process.execPath, [HUSH_BIN, 'operator', 'init', '--data-dir', dir, '--json', ...extra], { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(init.stderr);
  const root = JSON.parse(init.stdout).rootToken as string;
  const seed = spawnSync(process.execPath, [join(DIST, 'test/bench/seed-audit.js'), dir, String(events), ...(dbUrl ? [dbUrl] : [])], {
    encoding: 'utf8',
  });
  if (seed.status !== 0) throw new Error(seed.stderr);
  const s = await spawnListening([
    '--cpu-prof',
    '--cpu-prof-dir',
    profDir,
    HUSH_BIN,
    'server',
    '--data-dir',
    dir,
    '--listen',
    '127.0.0.1:0',
    '--log-level',
    'warn',
    ...extra,
  ]);
  const t = Date.now();
  const r = await api(s.url, root, 'GET', '/v1/audit/verify');
  const ms = Date.now() - t;
  await s.stop();
  report([`verify: ${r.checked} events in ${ms} ms (ok: ${r.ok})`]);
  if (!arg('keep')) rmSync(tmp, { recursive: true, force: true });
}

function runOk(cmd: string, args: string[], what: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${what} failed: ${r.stderr || r.stdout}`);
  return r.stdout;
}

async function bulkProfile(kind: 'backup' | 'restore') {
  const versions = Number(arg('versions') ?? 100_000);
  const pass = join(tmp, 'pass');
  writeFileSync(pass, 'bench-passphrase', { mode: 0o600 });
  const gpgHome = mkdtempSync(join(tmp, 'gnupg-'));
  const dbs: { url: string; drop: () => Promise<void> }[] = [];
  const target = async (name: string) => {
    const dir = join(tmp, name);
    if (!dbUrl) return { dir, extra: [] as string[] };
    const d = (await freshPgDatabase(undefined, dbUrl))!;
    dbs.push(d);
    return { dir, extra: [d.url] };
  };
  try {
    const body = join(tmp, 'seed.ndjson');
    const { rootToken } = JSON.parse(
      runOk(process.execPath, [join(DIST, 'test/bench/make-backup.js'), body, String(versions)], 'make-backup').trim(),
    );
    runOk(
      'gpg',
      [
        '--homedir',
        gpgHome,
        '--batch',
        '--yes',
        '--pinentry-mode',
        'loopback',
        '--passphrase-file',
        pass,
        '--compress-algo',
        'none',
        '--symmetric',
        '-o',
        `${body}.gpg`,
        body,
      ],
      'gpg',
    );
    const src = await target('source');
    runOk(process.execPath, [join(DIST, 'test/bench/restore-child.js'), `${body}.gpg`, pass, src.dir, ...src.extra], 'seed restore');
    const s = await spawnListening([
      ...(kind === 'backup' ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []),
      HUSH_BIN,
      'server',
      '--data-dir',
      src.dir,
      ...(src.extra.length ? ['--database-url', src.extra[0]] : []),
      '--listen',
      '127.0.0.1:0',
      '--log-level',
      'warn',
    ]);
    const out = join(tmp, 'backup.pgp');
    const t0 = Date.now();
    const res = await fetch(`${s.url}/v1/backups`, {
      method: 'POST',
      headers: { authorization: `Bearer ${rootToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ passphrase: 'bench-passphrase' }),
    });
    if (!res.ok) throw new Error(`backup -> ${res.status} ${await res.text()}`);
    writeFileSync(out, Buffer.from(await res.arrayBuffer()), { mode: 0o600 });
    const backupMs = Date.now() - t0;
    await s.stop();
    if (kind === 'backup') {
      report([`backup of ${versions} versions: ${backupMs} ms`]);
      return;
    }
    const dst = await target('restored');
    const t1 = Date.now();
    runOk(
      process.execPath,
      ['--cpu-prof', '--cpu-prof-dir', profDir, join(DIST, 'test/bench/restore-child.js'), out, pass, dst.dir, ...dst.extra],
      'restore',
    );
    report([`restore of ${versions} versions: ${Date.now() - t1} ms (under the profiler)`]);
  } finally {
    for (const d of dbs) await d.drop().catch(() => undefined);
    if (!arg('keep')) rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`profile failed: ${(e as Error).stack}\n`);
  rmSync(tmp, { recursive: true, force: true });
  process.exit(1);
});
