import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as openpgp from 'openpgp';
import { startServer, type TestServer } from '../helpers/server.js';
import { exposeGc } from '../helpers/memory.js';
import { createClient, isForbiddenError, type HushClient } from 'hush-vault-sdk';

const PASSPHRASE = 'correct horse battery staple';
let s: TestServer;
let root: HushClient;

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts);
}

before(async () => {
  s = await startServer();
  root = createClient({ addr: s.url, token: s.rootToken });
  await root.projects.create('api');
  await root.envs.create('api', 'prod');
  await root.secrets.set('api', 'prod', 'DB_PASSWORD', 'backup-me-7Yq');
});
after(async () => {
  await s.close();
});

describe('backups', () => {
  test('backups.create streams a passphrase-encrypted OpenPGP message with file name and counts', async () => {
    const b = await root.backups.create({ passphrase: PASSPHRASE });
    assert.match(b.fileName ?? '', /^hush-backup-\d{8}T\d{6}\d*Z\.pgp$/);
    assert.equal(b.contentType, 'application/octet-stream');
    assert.ok(b.counts && typeof b.counts === 'object');
    const bytes = await readAll(b.body);
    assert.ok(!Buffer.from(bytes).includes('backup-me-7Yq'));
    const message = await openpgp.readMessage({ binaryMessage: bytes });
    const { data } = await openpgp.decrypt({ message, passwords: [PASSPHRASE], format: 'binary' });
    assert.ok((data as Uint8Array).length > 0);
  });

  test('regression: a backup body survives garbage collection of its Response before it is read', async () => {
    // undici cancels the body of a garbage-collected Response; `hush backup create`
    // imported modules between receiving the headers and reading, and wrote 0-byte files.
    const gc = exposeGc();
    const b = await root.backups.create({ passphrase: PASSPHRASE });
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    const bytes = await readAll(b.body);
    assert.ok(bytes.length > 100, `read ${bytes.length} bytes`);
  });

  test('backups.export returns just the stream; armor gives an ASCII-armored message', async () => {
    const stream = await root.backups.export({ passphrase: PASSPHRASE, armor: true });
    const text = Buffer.from(await readAll(stream)).toString('utf8');
    assert.match(text, /^-----BEGIN PGP MESSAGE-----/);
  });

  test('a token without the backup grant gets ForbiddenError', async () => {
    const { token } = await root.tokens.create({ name: 'reader', scopes: ['read:api/prod'] });
    const err = await createClient({ addr: s.url, token })
      .backups.export({ passphrase: PASSPHRASE })
      .catch((e: unknown) => e);
    assert.ok(isForbiddenError(err), String(err));
  });

  test('an unusable recipient key is refused before anything streams', async () => {
    await assert.rejects(root.backups.export({ recipients: ['not a key'] }), (e: unknown) => {
      assert.equal((e as { status?: number }).status, 400);
      assert.equal((e as Error).name, 'ValidationError');
      return true;
    });
  });
});

describe('backup stream cancellation', () => {
  test("the caller's signal still ends the stream after the headers arrived", async () => {
    const ac = new AbortController();
    const stream = await root.backups.export({ passphrase: PASSPHRASE, signal: ac.signal });
    ac.abort(new Error('stop'));
    await assert.rejects(readAll(stream));
  });
});
