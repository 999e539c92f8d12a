// The bench harness at tiny sizes, so it cannot rot. Benchmarks are not
// tests: nothing here looks at a timing, only that every row was produced.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HAPROXY_SKIP } from '../helpers/haproxy.js';
import { which } from '../helpers/tools.js';

const RUN = new URL('./run.js', import.meta.url).pathname;
const IS_ROOT = process.getuid?.() === 0;
/** The bench installs wrk and HAProxy itself when it runs as root; otherwise they must be there. */
const missing = IS_ROOT
  ? false
  : !which('wrk')
    ? 'wrk is not installed (apt-get install -y wrk, as root; the bench installs it itself when run as root)'
    : process.env.HUSH_TEST_PG_URL && HAPROXY_SKIP;

describe('bench harness (--smoke)', () => {
  it('runs every group, exits 0 and writes every row with a value', { timeout: 180_000, skip: missing }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hush-bench-smoke-'));
    const out = join(dir, 'results.json');
    try {
      const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [RUN, '--smoke', `--out=${out}`], { stdio: ['ignore', 'pipe', 'pipe'] });
        let so = '';
        let se = '';
        child.stdout.on('data', (d) => {
          so += d;
        });
        child.stderr.on('data', (d) => {
          se += d;
        });
        child.on('exit', (c) => resolve({ code: c, stdout: so, stderr: se }));
      });
      assert.equal(code, 0, stderr.slice(-2000));
      const results = JSON.parse(readFileSync(out, 'utf8')) as {
        smoke: boolean;
        rows: { name: string; value: number; unit: string; extra?: Record<string, number> }[];
      };
      assert.equal(results.smoke, true);
      const names = results.rows.map((r) => r.name);
      const expected = [
        /^bulk read sqlite req\/s$/,
        /^bulk read sqlite p99$/,
        /^PUT sqlite req\/s$/,
        /^PUT sqlite p99$/,
        /^server RSS idle$/,
        /^server RSS under bulk-read load$/,
        /^bulk read sqlite, --value-cache 0 req\/s$/,
        /^bulk read sqlite, --value-cache 0 p99$/,
        /^hush run -- true \(median\)$/,
        /^hush run overhead over true$/,
        /^rotate master key/,
        /^backup \d+ versions \(sqlite\)$/,
        /^backup: server peak RSS \(\d+ versions, sqlite\)$/,
        /^restore \d+ versions \(sqlite\)$/,
        /^restore: peak RSS \(\d+ versions, sqlite\)$/,
        /^audit verify \(\d+ events, sqlite\)$/,
        /^audit verify over a raw read \(\d+ events, sqlite\)$/,
        ...(process.env.HUSH_TEST_PG_URL
          ? [
              /^bulk read postgres req\/s$/,
              /^bulk read postgres p99$/,
              /^PUT postgres req\/s$/,
              /^PUT postgres p99$/,
              /^audit verify \(\d+ events, postgres\)$/,
              /^bulk read postgres, 2 nodes via HAProxy req\/s$/,
              /^bulk read postgres, 1 node via HAProxy req\/s$/,
              /^bare Fastify GET via HAProxy req\/s$/,
            ]
          : []),
      ];
      for (const re of expected)
        assert.ok(
          names.some((n) => re.test(n)),
          `row ${re} missing from ${JSON.stringify(names)}`,
        );
      for (const r of results.rows) assert.ok(Number.isFinite(r.value) && r.value >= 0, `${r.name}: ${r.value}`);
      // A load row measures answers, not errors: a misconfigured run (every request a 404 or 503) must not pass as a figure.
      for (const r of results.rows.filter((x) => x.extra?.requests !== undefined)) {
        const e = r.extra!;
        assert.ok(
          e.requests > 0 && e.non2xx + e.socketErrors <= e.requests / 100,
          `${r.name}: ${e.non2xx + e.socketErrors} of ${e.requests} requests failed`,
        );
        assert.ok(
          e.baselineRequests > 0 && e.baselineNon2xx + e.baselineSocketErrors <= e.baselineRequests / 100,
          `${r.name}: baseline: ${e.baselineNon2xx + e.baselineSocketErrors} of ${e.baselineRequests} requests failed`,
        );
      }
      // The table on stdout has one line per row.
      for (const r of results.rows) assert.ok(stdout.includes(`| ${r.name} |`), `table lacks ${r.name}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
