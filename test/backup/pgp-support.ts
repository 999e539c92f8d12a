/** Helpers of the OpenPGP layer tests: sample bodies, file round trips, and the checks on a refused backup. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackupError } from '../../vault/backup/errors.js';
import { decryptBackupStream, encryptBackupStream, type DecryptOptions, type EncryptOptions } from '../../vault/backup/pgp.js';

/** A small NDJSON backup body (~200 KB, several stream chunks). */
export function sampleNdjson(lines = 2000): Buffer {
  const out: string[] = [JSON.stringify({ type: 'header', format: 1, created_at: '2024-01-01T00:00:00Z' })];
  for (let i = 0; i < lines; i++) {
    out.push(JSON.stringify({ type: 'secret', project: 'p', env: 'prod', key: `KEY_${i}`, value: randomBytes(24).toString('base64') }));
  }
  return Buffer.from(out.join('\n') + '\n', 'utf8');
}

export async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function encryptToFile(plain: Buffer, opts: EncryptOptions, file: string): Promise<void> {
  const enc = await encryptBackupStream(Readable.from([plain]), opts);
  await pipeline(enc, createWriteStream(file));
}

export async function decryptFile(file: string, opts: DecryptOptions) {
  const { plain, signed } = await decryptBackupStream(createReadStream(file), opts);
  const data = await collect(plain);
  return { data, status: await signed };
}

/** Asserts `p` rejects with a BackupError of `code` whose message is one clean line. */
export async function rejectsWithCode(p: Promise<unknown>, code: string, cls?: new (...a: never[]) => BackupError): Promise<BackupError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof BackupError, `expected BackupError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, `message: ${caught.message}`);
  assert.equal(caught.statusCode, 400);
  if (cls) assert.ok(caught instanceof cls);
  assert.ok(!caught.message.includes('\n'), 'message is one line');
  assert.ok(!/BEGIN PGP|KEY_\d|"type":/.test(caught.message), 'message leaks nothing');
  return caught;
}

/** Decrypt expecting the call to succeed and the plaintext stream to fail; `signed` must reject with the same error. */
export async function decryptFails(file: string, opts: DecryptOptions, code: string): Promise<BackupError> {
  const attempt = (async () => {
    const { plain, signed } = await decryptBackupStream(createReadStream(file), opts);
    const streamErr = await collect(plain).then(
      () => undefined,
      (e: unknown) => e,
    );
    const signedErr = await signed.then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(streamErr, 'plaintext stream must error');
    assert.equal(signedErr, streamErr, '`signed` rejects with the stream error');
    throw streamErr as Error;
  })();
  return rejectsWithCode(attempt, code);
}
