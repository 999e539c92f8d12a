// Baseline for the HTTP benchmarks: a bare Fastify server in the same Node
// version, with the same routes as the ones measured and no work behind them.
// GET returns a static JSON body of the same size as Hush's bulk-read answer;
// PUT parses and validates a JSON body as Hush's does and answers with a small
// JSON object of the same shape as Hush's.
import Fastify from 'fastify';

const size = Number(process.argv[2] ?? 4000);
const secrets: Record<string, string> = {};
let i = 0;
while (JSON.stringify({ secrets, revision: 1 }).length < size) secrets[`SECRET_${String(i++).padStart(3, '0')}`] = 'x'.repeat(64);
const body = { secrets, revision: 1 };
let version = 0;
const app = Fastify({ logger: false });
app.get('/v1/projects/:p/envs/:e/secrets', async () => body);
// For a load balancer's health check (the cluster bench puts this server behind HAProxy too).
app.get('/v1/sys/health', async () => ({ status: 'ok' }));
app.put(
  '/v1/projects/:p/envs/:e/secrets/:key',
  {
    schema: { body: { type: 'object', required: ['value'], additionalProperties: false, properties: { value: { type: 'string' } } } },
  },
  async (req) => ({ key: (req.params as { key: string }).key, version: ++version, revision: version }),
);
const addr = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`listening on ${addr}\n`);
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
