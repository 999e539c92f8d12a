// The bench harness at tiny sizes, so it cannot rot. Benchmarks are not
// tests: nothing here looks at a timing, only that every row was produced.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const RUN = new URL('./run.js', import.meta.url).pathname;

describe('bench harness (--smoke)', () => {
  it('runs every group, exits 0 and writes every row with a value', { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hush-bench-smoke-'));
    const out = join(dir, 'results.json');
    try {
      const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [RUN, '--smoke', `--out=${out}`], { stdio: ['ignore', 'pipe', 'pipe'] });
        let so = '';
        let se = '';
        child.stdout.on('data', (d) => { so += d; });
        child.stderr.on('data', (d) => { se += d; });
        child.on('exit', (c) => resolve({ code: c, stdout: so, stderr: se }));
      });
      assert.equal(code, 0, stderr.slice(-2000));
      const results = JSON.parse(readFileSync(out, 'utf8')) as { smoke: boolean; rows: { name: string; value: number; unit: string }[] };
      assert.equal(results.smoke, true);
      const names = results.rows.map((r) => r.name);
      const expected = [
        /^bulk read sqlite req\/s$/, /^bulk read sqlite p99$/, /^PUT sqlite req\/s$/, /^PUT sqlite p99$/, /^server RSS idle$/, /^server RSS under bulk-read load$/,
        /^bulk read sqlite, --value-cache 0 req\/s$/, /^bulk read sqlite, --value-cache 0 p99$/,
        /^hush run -- true \(median\)$/, /^hush run overhead over true$/,
        /^rotate master key/, /^backup \d+ versions \(wall\)$/, /^backup: server peak RSS$/, /^restore \d+ versions \(wall\)$/, /^restore: peak RSS$/,
        /^audit verify \(\d+ events\)$/,
        ...(process.env.HUSH_TEST_PG_URL ? [/^bulk read postgres req\/s$/, /^bulk read postgres p99$/, /^PUT postgres req\/s$/, /^PUT postgres p99$/] : []),
      ];
      for (const re of expected) assert.ok(names.some((n) => re.test(n)), `row ${re} missing from ${JSON.stringify(names)}`);
      for (const r of results.rows) assert.ok(Number.isFinite(r.value) && r.value >= 0, `${r.name}: ${r.value}`);
      // The table on stdout has one line per row.
      for (const r of results.rows) assert.ok(stdout.includes(`| ${r.name} |`), `table lacks ${r.name}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
