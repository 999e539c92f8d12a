/**
 * The OpenPGP layer's errors are HushErrors: over HTTP they keep their own documented code (docs/errors.md),
 * not the generic invalid_request that a foreign 400 becomes.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BACKENDS, onBackend, startOn, type TestServer } from '../helpers/server.js';
import { backupOverHttp } from './support.js';

for (const backend of BACKENDS) {
  describe(`POST /v1/backups with unusable keys (${backend})`, onBackend(backend), () => {
    let s: TestServer;
    before(async () => {
      s = await startOn(backend);
    });
    after(async () => {
      await s.close();
    });

    it('a recipient that is not an OpenPGP key answers 400 backup_key_invalid in the JSON error shape', async () => {
      const r = await backupOverHttp(s, join(s.dataDir, 'never.pgp'), {
        recipients: ['-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n'],
      });
      assert.equal(r.status, 400);
      assert.equal(r.error.error.code, 'backup_key_invalid');
      assert.match(r.error.error.message, /key/);
      assert.equal(typeof r.error.error.requestId, 'string');
    });

    it('a signing key that is not a private key answers 400 backup_key_invalid', async () => {
      const r = await backupOverHttp(s, join(s.dataDir, 'never.pgp'), {
        passphrase: 'correct horse battery staple',
        signingKey: 'not a key',
      });
      assert.equal(r.status, 400);
      assert.equal(r.error.error.code, 'backup_key_invalid');
    });
  });
}
