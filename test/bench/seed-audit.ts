// Appends N audit events to an existing vault through the real audit service
// (chained, MACed, in batches of 1,000 per transaction), then times a plain
// read of every row (the baseline for `audit verify`: the store's paged read, and the same
// pages as raw rows). Prints JSON.
//   node dist/test/bench/seed-audit.js DATA_DIR COUNT [DATABASE_URL]
import { Writable } from 'node:stream';
import { loadConfig } from '../../vault/config.js';
import { buildServer } from '../../vault/server.js';

const [dataDir, countArg, databaseUrl] = process.argv.slice(2);
const count = Number(countArg);
const cfg = loadConfig(
  { 'data-dir': dataDir, listen: '127.0.0.1:0', 'log-level': 'silent', ...(databaseUrl ? { 'database-url': databaseUrl } : {}) },
  {},
);
const server = await buildServer(cfg, { logStream: new Writable({ write: (_c, _e, cb) => cb() }) });
const ctx = { actorId: 'tok_bench', actorName: 'bench', ip: '127.0.0.1', requestId: null };
const t0 = Date.now();
for (let done = 0; done < count; done += 1000) {
  const n = Math.min(1000, count - done);
  await server.container.audit.run(ctx, async (_tx, record) => {
    for (let i = 0; i < n; i++)
      await record({
        action: 'secret.read',
        outcome: 'ok',
        project: 'bench',
        env: 'prod',
        target: { keys: ['A', 'B', 'C'] },
        detail: { count: 3, i: done + i },
      });
  });
}
const seedMs = Date.now() - t0;
const t1 = process.hrtime.bigint();
let rows = 0;
for await (const _e of server.container.stores.audit.iterate(Number.MAX_SAFE_INTEGER)) rows++;
const readMs = Number(process.hrtime.bigint() - t1) / 1e6;
// The same query and pages with rows as arrays (what verify reads since issue 22): the strictest baseline.
const t2 = process.hrtime.bigint();
let raw = 0;
for await (const page of server.container.stores.audit.rawPages(Number.MAX_SAFE_INTEGER, 2000)) raw += page.length;
const rawReadMs = Number(process.hrtime.bigint() - t2) / 1e6;
if (raw !== rows) throw new Error(`raw read saw ${raw} rows, the paged read ${rows}`);
await server.close();
process.stdout.write(JSON.stringify({ seedMs, readMs, rawReadMs, rows }) + '\n');
