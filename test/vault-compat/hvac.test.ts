/**
 * A real Python Vault client, hvac (Debian: python3-hvac), against the KV v2
 * routes: write, cas, patch (hvac reads then writes with cas), read, old
 * versions, metadata, LIST, delete, 404 and 403. Skipped, with the reason,
 * where no python3 can import hvac.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../helpers/server.js';
import { seed } from '../helpers/seed.js';
import { createToken } from '../audit/util.js';

const SCRIPT = new URL('../../../test/fixtures/hvac_client.py', import.meta.url).pathname;

/** A python3 that has hvac: the one on PATH, else Debian's own (a pyenv on PATH does not see Debian's packages). */
const PYTHON: string | null =
  ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import hvac'], { stdio: 'ignore' }).status === 0) ?? null;
const SKIP = PYTHON ? false : 'hvac not installed: apt-get install -y python3-hvac (or pip install hvac)';

describe('KV v2 through hvac (Python)', { skip: SKIP }, () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
    await seed(s.api, { api: { prod: {}, staging: { S: 'staging-value' } }, web: { prod: {} } });
  });
  after(async () => {
    await s?.close();
  });

  it('hvac writes, reads, patches, lists and deletes, and gets its usual exceptions', async () => {
    const scoped = await createToken(s, 'staging-reader', ['read:api/staging']);
    // Asynchronously: the server runs in this process and must go on answering.
    const r = await promisify(execFile)(PYTHON!, [SCRIPT], {
      env: { PATH: process.env.PATH, VAULT_ADDR: s.url, VAULT_TOKEN: s.rootToken, SCOPED_TOKEN: scoped.token },
      encoding: 'utf8',
      timeout: 120_000,
    }).catch((e: { stdout?: string; stderr?: string; message: string }) =>
      assert.fail(`hvac script failed: ${e.message}\n${e.stdout}\n${e.stderr}`),
    );
    const seen = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.deepEqual(seen, {
      authenticated: true,
      health: { initialized: true, sealed: false, standby: false },
      v1: 1,
      v2: 2,
      cas_conflict: 'InvalidRequest',
      patched: 3,
      current: { A: '2', C: '3' },
      at_v1: { A: '1', B: '2' },
      versions: ['1', '2', '3'],
      list_root: ['api/', 'web/'],
      list_api: ['prod', 'staging'],
      after_delete: 'InvalidPath',
      missing: 'InvalidPath',
      scoped_staging: { S: 'staging-value' },
      scoped_prod: 'Forbidden',
      scoped_write: 'Forbidden',
    });
  });
});
