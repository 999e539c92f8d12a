import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { capturedLogs, startServer, tempDir } from '../helpers/server.js';
import { allEvents, makeEnv, verify } from './util.js';

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe('audit file sink (--audit-file)', () => {
  it('appends every committed event as one JSON line, identical to GET /v1/audit, in seq order, mode 0600', async () => {
    const file = join(tempDir('hush-sink-'), 'audit.jsonl');
    const s = await startServer({ settings: { 'audit-file': file } });
    try {
      await makeEnv(s, 'api', 'prod');
      await Promise.all(Array.from({ length: 20 }, (_, i) => s.api('PUT', `/v1/projects/api/envs/prod/secrets/K${i}`, { value: `v${i}` })));
      assert.equal((await s.api('GET', '/v1/projects/api/envs/prod/secrets')).status, 200);
      const inDb = await allEvents(s);
      const inFile = lines(file);
      assert.deepEqual(inFile, inDb, 'the file holds exactly the events the database holds, from vault.init on');
      assert.equal(inFile[0].action, 'vault.init');
      assert.equal(statSync(file).mode & 0o777, 0o600);
    } finally {
      await s.close();
    }
  });

  it('a refused (rolled back) request writes nothing to the file', async () => {
    const file = join(tempDir('hush-sink-'), 'audit.jsonl');
    const s = await startServer({ settings: { 'audit-file': file } });
    try {
      await makeEnv(s, 'api', 'prod');
      const before = lines(file).length;
      assert.equal((await s.api('PUT', '/v1/projects/api/envs/prod/secrets/A', { value: 'x', cas: 7 })).status, 409);
      const after = lines(file);
      // only the error event, which has its own transaction
      assert.equal(after.length, before + 1);
      assert.deepEqual([after[before].action, after[before].outcome, after[before].detail.code], ['secret.write', 'error', 'cas_conflict']);
    } finally {
      await s.close();
    }
  });

  it('a file line is an anchor: verify with its seq and hash passes', async () => {
    const file = join(tempDir('hush-sink-'), 'audit.jsonl');
    const s = await startServer({ settings: { 'audit-file': file } });
    try {
      await makeEnv(s, 'api', 'prod');
      const last = lines(file).at(-1);
      const v = await verify(s, `anchorSeq=${last.seq}&anchorHash=${last.hash}`);
      assert.equal(v.ok, true, v.reason ?? '');
      assert.equal(v.headHash, last.hash);
    } finally {
      await s.close();
    }
  });

  it('a log rotator may rename the file: the next event starts a new one', async () => {
    const dir = tempDir('hush-sink-');
    const file = join(dir, 'audit.jsonl');
    const s = await startServer({ settings: { 'audit-file': file } });
    try {
      await makeEnv(s, 'api');
      renameSync(file, join(dir, 'audit.jsonl.1'));
      assert.equal((await s.api('POST', '/v1/projects/api/envs', { name: 'prod' })).status, 201);
      const fresh = lines(file);
      assert.equal(fresh.length, 1);
      assert.equal(fresh[0].action, 'env.create');
      assert.equal(fresh[0].seq, lines(join(dir, 'audit.jsonl.1')).at(-1).seq + 1);
    } finally {
      await s.close();
    }
  });

  it('a sink write failure is logged loudly and does not fail the request', async () => {
    const bad = join(tempDir('hush-sink-'), 'is-a-directory');
    mkdirSync(bad);
    const s = await startServer({ settings: { 'audit-file': bad } });
    try {
      await makeEnv(s, 'api', 'prod');
      const put = await s.api('PUT', '/v1/projects/api/envs/prod/secrets/TOKEN_X', { value: 'sink-failure-value-9f' });
      assert.equal(put.status, 200);
      assert.equal((await s.api('GET', '/v1/projects/api/envs/prod/secrets/TOKEN_X')).body.value, 'sink-failure-value-9f');
      const ours = capturedLogs
        .join('')
        .split('\n')
        .filter((l) => l.includes(bad))
        .map((l) => JSON.parse(l))
        .filter((l) => l.auditFile === bad);
      assert.ok(ours.length >= 3, 'one line per failed write');
      for (const l of ours) {
        assert.equal(l.level, 50, 'logged at error level');
        assert.match(l.msg, /^AUDIT FILE SINK WRITE FAILED/);
        assert.equal(l.err.code, 'EISDIR');
        assert.ok(Number.isInteger(l.firstSeq) && l.lastSeq >= l.firstSeq, 'names the seqs to copy from GET /v1/audit');
      }
      const write = (await allEvents(s, 'action=secret.write'))[0];
      assert.ok(ours.some((l) => l.firstSeq <= write.seq && write.seq <= l.lastSeq));
      assert.ok(!capturedLogs.join('').includes('sink-failure-value-9f'));
      assert.equal((await verify(s)).ok, true, 'the database chain is whole');
    } finally {
      await s.close();
    }
  });
});
