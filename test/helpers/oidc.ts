/**
 * A local OIDC issuer on loopback for the machine-identity tests: a real
 * HTTP server with a discovery document and a JWKS, keys made with jose,
 * key rotation (a new kid), and the failure modes of a real issuer (a JWKS
 * endpoint that hangs, one that returns 10 MB).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export type Alg = 'RS256' | 'ES256' | 'EdDSA';
export interface IssuerKey {
  kid: string;
  alg: Alg;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

export async function makeKey(alg: Alg, kid: string): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, jwk };
}

export const pemOf = (k: IssuerKey): Promise<string> => exportSPKI(k.publicKey);

export interface Issuer {
  url: string;
  keys: IssuerKey[];
  /** How the JWKS endpoint behaves: normally, hanging (never answers), or answering 10 MB. */
  mode: 'ok' | 'hang' | 'huge';
  /** JWKS requests served so far. */
  jwksFetches: number;
  jwks(): { keys: JWK[] };
  sign(
    claims: JWTPayload,
    opts?: { key?: IssuerKey; expiresIn?: string | number; header?: Record<string, unknown>; aud?: string | string[]; iss?: string },
  ): Promise<string>;
  rotate(alg?: Alg): Promise<IssuerKey>;
  close(): Promise<void>;
}

export async function startIssuer(opts: { path?: string; alg?: Alg } = {}): Promise<Issuer> {
  const path = opts.path ?? '';
  // eslint-disable-next-line prefer-const -- assigned once the issuer object that its handler closes over exists
  let server: Server;
  const issuer: Issuer = {
    url: '',
    keys: [await makeKey(opts.alg ?? 'RS256', 'k1')],
    mode: 'ok',
    jwksFetches: 0,
    jwks: () => ({ keys: issuer.keys.map((k) => k.jwk) }),
    async sign(claims, o = {}) {
      const key = o.key ?? issuer.keys[0];
      let j = new SignJWT(claims)
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...o.header })
        .setIssuedAt()
        .setIssuer(o.iss ?? issuer.url)
        .setAudience(o.aud ?? 'hush');
      if (o.expiresIn !== undefined) j = j.setExpirationTime(o.expiresIn);
      else j = j.setExpirationTime('10m');
      return j.sign(key.privateKey);
    },
    async rotate(alg = 'RS256') {
      const k = await makeKey(alg, `k${issuer.keys.length + 1}`);
      issuer.keys.push(k);
      return k;
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  server = createServer((req, res) => {
    if (req.url === `${path}/.well-known/openid-configuration`) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          issuer: issuer.url,
          jwks_uri: `${issuer.url}/keys`,
          id_token_signing_alg_values_supported: ['RS256', 'ES256', 'EdDSA'],
        }),
      );
      return;
    }
    if (req.url === `${path}/keys`) {
      issuer.jwksFetches++;
      if (issuer.mode === 'hang') return; // never answers
      if (issuer.mode === 'huge') {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(1024 * 1024, 0x20);
        res.write('{"keys":[');
        let n = 0;
        const more = () => {
          while (n < 10) {
            n++;
            if (!res.write(chunk)) {
              res.once('drain', more);
              return;
            }
          }
          res.end(']}');
        };
        more();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(issuer.jwks()));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  issuer.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  return issuer;
}
