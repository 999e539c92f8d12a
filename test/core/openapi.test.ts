/**
 * The OpenAPI document a real server serves (GET /v1/openapi.json): every
 * operation has a unique, readable operationId, every operation declares a
 * 2xx and a 4xx answer, the error shape is a component, and `redocly lint`
 * (the recommended rules, redocly.yaml) finds nothing. Offline: redocly runs
 * from node_modules on a file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { operationIdFor, operationIds } from '../../vault/http/openapi.js';
import { startOn, tempDir, type TestServer } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

describe('the OpenAPI document', () => {
  let s: TestServer;
  let doc: any;
  before(async () => {
    s = await startOn('sqlite');
    const r = await fetch(`${s.url}/v1/openapi.json`);
    assert.equal(r.status, 200);
    doc = await r.json();
  });
  after(async () => {
    await s?.close();
  });

  const operations = () =>
    Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) =>
      Object.entries(ops)
        .filter(([m]) => METHODS.includes(m))
        .map(([m, op]) => ({ route: `${m.toUpperCase()} ${path}`, op })),
    );

  it('every operation has an operationId, and no two share one', (t) => {
    const ops = operations();
    const missing = ops
      .filter((o) => typeof o.op.operationId !== 'string' || !/^[a-z][A-Za-z0-9]*$/.test(o.op.operationId))
      .map((o) => o.route);
    assert.deepEqual(missing, []);
    const ids = ops.map((o) => o.op.operationId);
    assert.equal(new Set(ids).size, ids.length, 'duplicate operationIds');
    t.diagnostic(`${ops.length} operations, ${ids.length} unique operationIds`);
  });

  it('operationIds follow from method and path, so routes added later get theirs too', () => {
    const id = (route: string) => operations().find((o) => o.route === route)?.op.operationId;
    assert.equal(id('GET /v1/projects/{p}/envs/{e}/secrets/{key}/versions'), 'getProjectEnvSecretVersions');
    assert.equal(id('DELETE /v1/tokens/{id}'), 'deleteToken');
    assert.equal(id('POST /v1/sys/rotate-master'), 'postSysRotateMaster');
    assert.equal(id('GET /v1/sys/metrics'), 'getSysMetrics');
    // Shapes no route has yet (a mount parameter first, a wildcard tail).
    assert.equal(operationIdFor('GET', '/v1/:mount/data/*'), 'getByMountDataPath');
    assert.equal(operationIdFor('PUT', '/v1/secret/data/*'), 'putSecretDataPath');
  });

  it('a second route with the same operationId is refused when it is registered', async () => {
    const app = Fastify();
    operationIds(app);
    await assert.rejects(async () => {
      app.get('/v1/projects', async () => ({}));
      app.get('/v1/projects/:other', { schema: { operationId: 'getProjects' } }, async () => ({}));
      await app.ready();
    }, /operationId getProjects of GET \/v1\/projects\/:other is already GET \/v1\/projects's/);
    await app.close();
  });

  it('every operation declares a 2xx and a 4xx answer; POST /v1/backups declares its stream', () => {
    const bad = operations().filter(
      (o) =>
        !Object.keys(o.op.responses ?? {}).some((c) => c.startsWith('2')) ||
        !Object.keys(o.op.responses ?? {}).some((c) => c.startsWith('4')),
    );
    assert.deepEqual(
      bad.map((o) => o.route),
      [],
    );
    const backup = doc.paths['/v1/backups'].post.responses['200'];
    assert.ok(backup.content['application/octet-stream'], JSON.stringify(backup));
  });

  it('the error shape is one component that the error answers refer to', () => {
    assert.ok(doc.components.schemas.Error, Object.keys(doc.components?.schemas ?? {}).join(','));
    const ref = doc.paths['/v1/projects'].get.responses['403'].content['application/json'].schema.$ref;
    assert.equal(ref, '#/components/schemas/Error');
  });

  it('redocly lint (recommended rules) finds no problem', (t) => {
    const file = join(tempDir('hush-openapi-'), 'openapi.json');
    writeFileSync(file, JSON.stringify(doc, null, 2));
    const r = spawnSync(
      join(ROOT, 'node_modules/.bin/redocly'),
      ['lint', file, '--config', join(ROOT, 'redocly.yaml'), '--format', 'stylish'],
      {
        encoding: 'utf8',
        cwd: ROOT,
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
      },
    );
    const out = `${r.stdout}${r.stderr}`
      .split('\n')
      .filter((l) => l.trim() && !/[║╔╚]/.test(l))
      .join('\n');
    t.diagnostic(`redocly lint: exit ${r.status}\n${out}`);
    assert.equal(r.status, 0, out);
    assert.doesNotMatch(out, /warning|error/i);
  });
});
