/** A throwaway self-signed certificate for 127.0.0.1 and localhost, made with the openssl binary. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** Why no test certificate can be made here, or false. */
export const OPENSSL_SKIP: string | false = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0
  ? false : 'the openssl binary is not available to generate a test certificate';

/** Writes cert.pem and key.pem (P-256, one day, CN=localhost, SAN localhost and 127.0.0.1) into `dir`. */
export function selfSigned(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { cert, key };
}
