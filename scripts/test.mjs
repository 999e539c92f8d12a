// Runs every compiled test file with node's built-in runner.
// Node 20's `--test` takes no globs, so the files are listed here.
//   node scripts/test.mjs [substring ...]   only the files whose path contains one of them
// A banner before and after the run says which storage engines were tested and
// lists the suites that were skipped, with their reasons.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

// A test that deadlocks fails after this instead of hanging the run (the slowest test takes about two minutes).
const TEST_TIMEOUT_MS = 300_000;

const root = new URL('../dist/test/', import.meta.url).pathname;
const only = process.argv.slice(2);
function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
let files = walk(root);
if (only.length) files = files.filter((f) => only.some((o) => f.includes(o)));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}

function engines() {
  const url = process.env.HUSH_TEST_PG_URL;
  if (!url) return 'SQLite only. PostgreSQL suites are registered but SKIPPED: set HUSH_TEST_PG_URL=postgres://... to run them';
  let where = 'HUSH_TEST_PG_URL';
  try {
    const u = new URL(url);
    where = `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    /* shown as the variable's name */
  }
  return `SQLite and PostgreSQL (${where})`;
}
const banner = (lines) => console.log(['', '='.repeat(72), ...lines.map((l) => `  ${l}`), '='.repeat(72), ''].join('\n'));
banner([`hush tests: ${files.length} file(s)`, `engines: ${engines()}`]);

const start = Date.now();
const args = ['--test', '--test-concurrency=2', `--test-timeout=${TEST_TIMEOUT_MS}`, ...files];
const child = spawn(process.execPath, args, { stdio: ['inherit', 'pipe', 'inherit'] });
const skipped = new Map();
const totals = {};
createInterface({ input: child.stdout }).on('line', (line) => {
  process.stdout.write(line + '\n');
  const s = /^\s*ok \d+ - (.*) # SKIP ?(.*)$/.exec(line);
  if (s) {
    const reason = s[2] || '(no reason given)';
    if (!skipped.has(reason)) skipped.set(reason, []);
    skipped.get(reason).push(s[1]);
  }
  const t = /^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$/.exec(line);
  if (t) totals[t[1]] = Number(t[2]);
});
child.on('close', (code, signal) => {
  const lines = [`engines: ${engines()}`, `wall time: ${((Date.now() - start) / 1000).toFixed(1)} s`];
  if (Object.keys(totals).length)
    lines.push(
      Object.entries(totals)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    );
  if (skipped.size) {
    lines.push('skipped suites and tests:');
    for (const [reason, names] of skipped) {
      lines.push(`  ${names.length} x ${reason}`);
      for (const n of names) lines.push(`      - ${n}`);
    }
  }
  banner(lines);
  process.exit(code ?? (signal ? 1 : 0));
});
