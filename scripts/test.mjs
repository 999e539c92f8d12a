// Runs every compiled test file with node's built-in runner.
// Node 20's `--test` takes no globs, so the files are listed here.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('../dist/test/', import.meta.url).pathname;
const only = process.argv.slice(2);
function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) { if (name !== 'bench' || true) out.push(...walk(p)); }
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
let files = walk(root);
if (only.length) files = files.filter((f) => only.some((o) => f.includes(o)));
if (files.length === 0) { console.error('no test files found'); process.exit(1); }
const args = ['--test', '--test-concurrency=2', ...files];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
