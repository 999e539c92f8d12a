// `npm run bench:startup`: what `hush run -- true` adds to a container's
// start, for each way of shipping the client, against `node -e 0` measured
// in the same run. A real server (its own process) holds 50 secrets; every
// variant runs 15 times after 3 warm-ups, interleaved round-robin so that
// the machine's drift hits each the same. Prints a markdown table.
import { existsSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { api, DIST, fmt, HUSH_BIN, median, seedEnv, spawnListening, timeCommand } from './lib.js';

const RUNS = Number(process.argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? 15);
const WARMUP = 3;
const SINGLE_FILE = `${DIST}client/hush.cjs`;
const BINARY = `${DIST}bin/hush`;
const BUDGET_MS = 25;

const tmp = mkdtempSync(join(tmpdir(), 'hush-bench-startup-'));
const server = await spawnListening(
  [HUSH_BIN, 'server', '--data-dir', join(tmp, 'data'), '--listen', '127.0.0.1:0', '--log-level', 'warn'],
  {},
);
try {
  await seedEnv(server, 'api', 'prod', 50);
  const token = (await api(server.url, server.rootToken!, 'POST', '/v1/tokens', { name: 'startup', scopes: ['read:api/prod'] }))
    .token as string;
  const env = {
    HUSH_ADDR: server.url,
    HUSH_TOKEN: token,
    HUSH_PROJECT: 'api',
    HUSH_ENV: 'prod',
    HOME: tmp,
    XDG_CONFIG_HOME: join(tmp, 'cfg'),
  };
  const trueBin = spawnSync('sh', ['-c', 'command -v true']).stdout.toString().trim() || '/bin/true';
  const variants: [string, string, string[]][] = [
    ['node -e 0 (baseline)', process.execPath, ['-e', '0']],
    ['single file: node dist/client/hush.cjs run -- true', process.execPath, [SINGLE_FILE, 'run', '--', trueBin]],
    ...(existsSync(BINARY) ? [['binary: dist/bin/hush run -- true', BINARY, ['run', '--', trueBin]] as [string, string, string[]]] : []),
    ['full CLI: node dist/cli/main.js run -- true', process.execPath, [HUSH_BIN, 'run', '--', trueBin]],
    ['true alone', trueBin, []],
  ];
  if (!existsSync(BINARY)) process.stderr.write('dist/bin/hush is missing (npm run build:binary): the binary is not measured\n');
  const times = variants.map(() => [] as number[]);
  const load0 = loadavg()[0];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    variants.forEach(([name, cmd, args], v) => {
      const r = timeCommand(cmd, args, env);
      if (r.code !== 0) throw new Error(`${name} exited ${r.code}`);
      if (i >= WARMUP) times[v].push(r.ms);
    });
  }
  const base = median(times[0]);
  const lines = [
    `| variant | median of ${RUNS} (ms) | over node -e 0 (ms) | ratio to node -e 0 |`,
    '| --- | --- | --- | --- |',
    ...variants.map(
      ([name], v) =>
        `| ${name} | ${fmt(median(times[v]))} | ` +
        `${v === 0 || name === 'true alone' ? '-' : fmt(median(times[v]) - base)} | ` +
        `${(median(times[v]) / base).toFixed(2)} |`,
    ),
  ];
  process.stdout.write(
    `${lines.join('\n')}\n\n50 secrets; load average ${load0.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end; Node ${process.version}.\n`,
  );
  const single = median(times[1]) - base;
  process.stdout.write(
    `single file over node -e 0: ${fmt(single)} ms (budget ${BUDGET_MS} ms: ${single <= BUDGET_MS ? 'met' : 'missed'})\n`,
  );
} finally {
  await server.stop();
  rmSync(tmp, { recursive: true, force: true });
}
