// Appends N audit events to an existing vault through the real audit service
// (chained, MACed, in batches of 1,000 per transaction), then times a plain
// read of every row (the baseline for `audit verify`). Prints JSON.
import { Writable } from 'node:stream';
import { loadConfig } from '../../vault/config.js';
import { buildServer } from '../../vault/server.js';

const [dataDir, countArg, databaseUrl] = process.argv.slice(2);
const count = Number(countArg);
const cfg = loadConfig({ 'data-dir': dataDir, listen: '127.0.0.1:0', 'log-level': 'silent', ...(databaseUrl ? { 'database-url': databaseUrl } : {}) }, {});
const server = await buildServer(cfg, { logStream: new Writable({ write: (_c, _e, cb) => cb() }) });
const ctx = { actorId: 'tok_bench', actorName: 'bench', ip: '127.0.0.1', requestId: null };
const t0 = Date.now();
for (let done = 0; done < count; done += 1000) {
  const n = Math.min(1000, count - done);
  await server.container.audit.run(ctx, async (_tx, record) => {
    for (let i = 0; i < n; i++) await record({ action: 'secret.read', outcome: 'ok', project: 'bench', env: 'prod', target: { keys: ['A', 'B', 'C'] }, detail: { count: 3, i: done + i } });
  });
}
const seedMs = Date.now() - t0;
const t1 = process.hrtime.bigint();
let rows = 0;
for await (const _e of server.container.stores.audit.iterate(Number.MAX_SAFE_INTEGER)) rows++;
const readMs = Number(process.hrtime.bigint() - t1) / 1e6;
await server.close();
process.stdout.write(JSON.stringify({ seedMs, readMs, rows }) + '\n');
