// Baseline for the bulk-read benchmark: a bare Fastify route in the same Node
// version returning a static JSON body of the same size as Hush's answer.
import Fastify from 'fastify';

const size = Number(process.argv[2] ?? 4000);
const secrets: Record<string, string> = {};
let i = 0;
while (JSON.stringify({ secrets, revision: 1 }).length < size) secrets[`SECRET_${String(i++).padStart(3, '0')}`] = 'x'.repeat(64);
const body = { secrets, revision: 1 };
const app = Fastify({ logger: false });
app.get('/v1/projects/:p/envs/:e/secrets', async () => body);
const addr = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`listening on ${addr}\n`);
process.on('SIGTERM', () => { app.close().then(() => process.exit(0)); });
