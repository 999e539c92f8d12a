// The soak run (`npm run soak`; not part of `npm test`): the crash test with 50 kill -9 cycles per engine
// under mixed load, and the hostile-input fuzz at 100,000+ cases, both on SQLite and PostgreSQL. The same
// test files as `npm test`, sized up through HUSH_TEST_CRASH_CYCLES and HUSH_TEST_FUZZ_SCALE. Bounded: the
// run is stopped, and fails, after 20 minutes. Prints the figures docs/security.md quotes.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const LIMIT_MS = 20 * 60_000;
const CYCLES = 50;
const MIN_FUZZ_CASES = 100_000;
// Every property runs at least its npm test size; the cheapest ones (any route, raw HTTP on SQLite) carry the rest of
// the cases, so the run fits its bound on a small machine.
const FUZZ_SCALE = '1,sqlite.routes=10,sqlite.raw=45';

if (!process.env.HUSH_TEST_PG_URL) {
  console.error(
    'soak: HUSH_TEST_PG_URL is not set; the soak run covers both engines (e.g. HUSH_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test npm run soak)',
  );
  process.exit(2);
}

const files = ['crash', 'fuzz'].map((f) => new URL(`../dist/test/reliability/${f}.test.js`, import.meta.url).pathname);
const start = Date.now();
// Every temp dir the tests make (data dirs, key files) goes under one of the soak's own, removed at the end,
// also when the run is interrupted or stopped (a test killed in the middle never runs its own clean-up).
const scratch = mkdtempSync(join(tmpdir(), 'hush-soak-'));
const env = { ...process.env, TMPDIR: scratch, HUSH_TEST_CRASH_CYCLES: String(CYCLES), HUSH_TEST_FUZZ_SCALE: FUZZ_SCALE };
// Its own process group (detached): the test runner, the test files and every server they start are stopped together.
const child = spawn(process.execPath, ['--test', '--test-concurrency=2', `--test-timeout=${LIMIT_MS}`, ...files], {
  env,
  stdio: ['ignore', 'pipe', 'inherit'],
  detached: true,
});
console.error(`soak: tests running as process group ${child.pid}, temp files in ${scratch}`);
const stopGroup = () => {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
};
const cleanUp = () => {
  stopGroup();
  rmSync(scratch, { recursive: true, force: true });
};
let timedOut = false;
const timer = setTimeout(() => {
  timedOut = true;
  console.error(`soak: still running after ${LIMIT_MS / 60_000} minutes; stopped`);
  stopGroup();
}, LIMIT_MS);

// Ctrl-C, SIGTERM, SIGHUP: the detached group does not get the terminal's signal, so it is stopped here, whole
// (SIGKILL: a test file would otherwise go on starting servers while it unwinds), and the temp files removed.
let interrupted = null;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = sig;
    clearTimeout(timer);
    console.error(`soak: ${sig}: stopping the tests (process group ${child.pid}) and removing ${scratch}`);
    cleanUp();
    // The exit itself waits for the runner's 'close' (its pipes end once the group is gone).
  });
}

const crash = {};
let fuzz = null;
createInterface({ input: child.stdout }).on('line', (line) => {
  process.stdout.write(line + '\n');
  const c = /RELIABILITY crash (\w+): cycles=(\d+) acked=(\d+) losses=(\d+) reads=(\d+) seed=(\d+)/.exec(line);
  if (c) crash[c[1]] = { cycles: +c[2], acked: +c[3], losses: +c[4], reads: +c[5], seed: +c[6] };
  const f = /RELIABILITY fuzz: cases=(\d+) requests=(\d+) fiveXX=(\d+) seed=(\d+)/.exec(line);
  if (f) fuzz = { cases: +f[1], requests: +f[2], fiveXX: +f[3], seed: +f[4] };
});

child.on('close', (code) => {
  clearTimeout(timer);
  // Whatever the runner left behind (a server whose test was cut short), and the temp files.
  cleanUp();
  if (interrupted) {
    console.error(`soak: interrupted by ${interrupted}; no figures`);
    process.exit(interrupted === 'SIGINT' ? 130 : interrupted === 'SIGHUP' ? 129 : 143);
  }
  const minutes = ((Date.now() - start) / 60_000).toFixed(1);
  const problems = [];
  if (timedOut) problems.push('the run was stopped at the time limit');
  if (code !== 0 && !timedOut) problems.push(`the tests failed (exit ${code})`);
  for (const e of ['sqlite', 'postgres']) {
    const c = crash[e];
    if (!c) problems.push(`no crash figures for ${e}`);
    else if (c.cycles < CYCLES || c.losses !== 0) problems.push(`crash ${e}: ${c.cycles} cycles, ${c.losses} lost`);
  }
  if (!fuzz) problems.push('no fuzz figures');
  else if (fuzz.cases < MIN_FUZZ_CASES || fuzz.fiveXX !== 0) problems.push(`fuzz: ${fuzz.cases} cases, ${fuzz.fiveXX} 5xx`);
  const lines = ['', '='.repeat(72), `  soak: ${minutes} min (limit ${LIMIT_MS / 60_000})`];
  for (const [e, c] of Object.entries(crash))
    lines.push(
      `  crash ${e}: ${c.cycles} kill -9 cycles, ${c.acked} acknowledged writes, ${c.losses} lost, ${c.reads} reads under load (seed ${c.seed})`,
    );
  if (fuzz) lines.push(`  fuzz: ${fuzz.cases} cases, ${fuzz.requests} requests, ${fuzz.fiveXX} x 5xx (seed ${fuzz.seed})`);
  lines.push(problems.length ? `  FAILED: ${problems.join('; ')}` : '  passed', '='.repeat(72));
  console.log(lines.join('\n'));
  process.exit(problems.length ? 1 : 0);
});
