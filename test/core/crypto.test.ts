import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  generateMasterKeyBase64,
  masterKeyFromBase64,
  newWrappedKey,
  rewrapKey,
  secretAd,
  secretCipher,
  verifyKeyCheck,
} from '../../vault/crypto/keyring.js';

describe('envelope encryption', () => {
  it('a ciphertext only decrypts at the location it was written for', async () => {
    const mk = await masterKeyFromBase64(await generateMasterKeyBase64(), 'test');
    const c = secretCipher(mk, newWrappedKey(mk, 'dek', 'project:1', 1));
    const { nonce, ciphertext } = c.encrypt('hunter2', secretAd(1, 1, 'DB_PASS', 1));
    assert.equal(c.decrypt(nonce, ciphertext, secretAd(1, 1, 'DB_PASS', 1), 'x'), 'hunter2');
    for (const ad of [
      secretAd(1, 1, 'OTHER', 1),
      secretAd(1, 2, 'DB_PASS', 1),
      secretAd(2, 1, 'DB_PASS', 1),
      secretAd(1, 1, 'DB_PASS', 2),
    ]) {
      assert.throws(
        () => c.decrypt(nonce, ciphertext, ad, 'x'),
        (e: Error & { code?: string }) => e.code === 'integrity_error',
      );
    }
  });

  it('each encryption uses a fresh nonce', async () => {
    const mk = await masterKeyFromBase64(await generateMasterKeyBase64(), 'test');
    const c = secretCipher(mk, newWrappedKey(mk, 'dek', 'project:1', 1));
    const a = c.encrypt('same', 'ad');
    const b = c.encrypt('same', 'ad');
    assert.notDeepEqual(a.nonce, b.nonce);
    assert.notDeepEqual(a.ciphertext, b.ciphertext);
  });

  it('a wrong master key is reported as such, not as corruption', async () => {
    const mk = await masterKeyFromBase64(await generateMasterKeyBase64(), 'a');
    const other = await masterKeyFromBase64(await generateMasterKeyBase64(), 'b');
    const check = newWrappedKey(mk, 'check', 'vault', 1);
    verifyKeyCheck(mk, check);
    assert.throws(
      () => verifyKeyCheck(other, check),
      (e: Error & { code?: string }) => e.code === 'wrong_master_key' && /wrong master key/.test(e.message),
    );
    const corrupt = { ...check, wrapped: Buffer.from(check.wrapped) };
    corrupt.wrapped[30] ^= 1;
    assert.throws(
      () => verifyKeyCheck(mk, corrupt),
      (e: Error & { code?: string }) => e.code === 'integrity_error',
    );
  });

  it('rewrapping under a new master key keeps the data key', async () => {
    const mk = await masterKeyFromBase64(await generateMasterKeyBase64(), 'a');
    const mk2 = await masterKeyFromBase64(await generateMasterKeyBase64(), 'b');
    const dek = newWrappedKey(mk, 'dek', 'project:1', 1);
    const enc = secretCipher(mk, dek).encrypt('v', 'ad');
    const moved = rewrapKey(mk, mk2, dek);
    assert.equal(moved.mkFingerprint, mk2.fingerprint);
    assert.equal(secretCipher(mk2, moved).decrypt(enc.nonce, enc.ciphertext, 'ad', 'x'), 'v');
    assert.throws(() => secretCipher(mk, moved));
  });

  it('rejects a master key that is not 32 bytes of base64', async () => {
    await assert.rejects(masterKeyFromBase64('c2hvcnQ=', 'HUSH_MASTER_KEY'), /32 bytes/);
    await assert.rejects(masterKeyFromBase64('not base64!!', 'HUSH_MASTER_KEY'), /not base64/);
  });
});
