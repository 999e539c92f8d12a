// CPU per request of the server process: utime + stime from /proc/PID/stat
// across a wrk run, divided by the requests served. Unlike req/s, this
// barely moves when other work shares the machine (it counts only this
// process's own CPU), so it shows what a change saved on a noisy machine.
//
//   HUSH_TEST_PG_URL=... node dist/test/bench/cpu-per-request.js [--path=read|put] [--seconds=8] [--runs=3] [--postgres] [-- extra server flags]
//   node dist/test/bench/cpu-per-request.js --bare [--path=read|put]   (the bare Fastify baseline, bare-server.ts)
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshPgDatabase } from '../helpers/server.js';
import { api, DIST, HUSH_BIN, median, spawnListening, wrk } from './lib.js';

const arg = (k: string) => process.argv.find((a) => a.startsWith(`--${k}=`))?.slice(k.length + 3);
const seconds = Number(arg('seconds') ?? 8);
const runs = Number(arg('runs') ?? 3);
const mode = arg('path') ?? 'read';
const pgWanted = process.argv.includes('--postgres');
const dash = process.argv.indexOf('--');
const serverFlags = dash >= 0 ? process.argv.slice(dash + 1) : [];

/** utime + stime of `pid`, in seconds. */
function cpuOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'hush-cpu-'));
  const pg = pgWanted ? await freshPgDatabase() : null;
  if (pgWanted && !pg) throw new Error('--postgres needs HUSH_TEST_PG_URL');
  const extra = pg ? ['--database-url', pg.url] : [];
  const bare = process.argv.includes('--bare');
  const s = bare
    ? await spawnListening([join(DIST, 'test/bench/bare-server.js'), '4000'])
    : await spawnListening([
        HUSH_BIN,
        'server',
        '--data-dir',
        join(tmp, 'data'),
        '--listen',
        '127.0.0.1:0',
        '--log-level',
        'warn',
        '--rate-limit',
        '10000000',
        ...extra,
        ...serverFlags,
      ]);
  try {
    const root = s.rootToken!;
    const project = bare ? 'api' : await seed(s.url, root);
    const tok = bare ? null : await token(s.url, root, project);
    const path = mode === 'put' ? `/v1/projects/${project}/envs/prod/secrets/CPU` : `/v1/projects/${project}/envs/prod/secrets`;
    const put = mode === 'put' ? randomBytes(6).toString('hex') : undefined;
    await wrk(s.url + path, { seconds: 2, token: tok, put });
    const per: number[] = [];
    const rps: number[] = [];
    for (let i = 0; i < runs; i++) {
      const c0 = cpuOf(s.child.pid!);
      const r = await wrk(s.url + path, { seconds, token: tok, put });
      const used = cpuOf(s.child.pid!) - c0;
      per.push((used * 1e6) / (r.rps * seconds));
      rps.push(r.rps);
      if (r.non2xx || r.socketErrors) console.log(`  run ${i + 1}: ${r.non2xx} non-2xx, ${r.socketErrors} socket errors`);
    }
    const what = bare ? 'bare Fastify' : `${pg ? 'postgres' : 'sqlite'} ${serverFlags.join(' ')}`;
    console.log(
      `${mode} ${what}: CPU per request ${median(per).toFixed(1)} µs (runs ${per.map((x) => x.toFixed(1)).join(', ')}), ${Math.round(median(rps))} req/s`,
    );
  } finally {
    await s.stop();
    rmSync(tmp, { recursive: true, force: true });
    await pg?.drop();
  }
}

async function seed(url: string, root: string): Promise<string> {
  const project = `cpu${randomBytes(4).toString('hex')}`;
  await api(url, root, 'POST', '/v1/projects', { name: project });
  await api(url, root, 'POST', `/v1/projects/${project}/envs`, { name: 'prod' });
  const set: Record<string, string> = {};
  for (let i = 0; i < 50; i++) set[`SECRET_${String(i).padStart(3, '0')}`] = randomBytes(64).toString('base64').slice(0, 64);
  await api(url, root, 'PATCH', `/v1/projects/${project}/envs/prod/secrets`, { set });
  return project;
}

async function token(url: string, root: string, project: string): Promise<string> {
  return (await api(url, root, 'POST', '/v1/tokens', { name: 'cpu', scopes: [`read:${project}/prod`, `write:${project}/prod`] }))
    .token as string;
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
