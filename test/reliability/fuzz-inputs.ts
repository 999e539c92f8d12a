/**
 * The hostile-input fuzz's route table and generators: paths, query strings,
 * bodies (malformed JSON, wrong types, huge and deeply nested values,
 * prototype-pollution keys) and content types.
 */
import fc from 'fast-check';
import { markedValue } from './support.js';

// ---------------------------------------------------------------------------
// Routes. The table is checked against the server's own OpenAPI document, so
// a new route without fuzz coverage fails the suite.
// ---------------------------------------------------------------------------

export type BodyKind =
  | 'project'
  | 'env'
  | 'put'
  | 'bulk'
  | 'token'
  | 'rotate'
  | 'rotateMaster'
  | 'backup'
  | 'unseal'
  | 'seal'
  | 'role'
  | 'jwtLogin'
  | 'webhook'
  | 'rollback'
  | 'copy'
  | 'kv'
  | 'generate'
  | 'policy';
export interface Route {
  method: string;
  path: string;
  body?: BodyKind;
  query?: string[];
}

export const ROUTES: Route[] = [
  { method: 'GET', path: '/v1/sys/health' },
  { method: 'POST', path: '/v1/sys/rotate-master', body: 'rotateMaster' },
  { method: 'GET', path: '/v1/sys/seal-status' },
  { method: 'GET', path: '/v1/sys/metrics' },
  { method: 'POST', path: '/v1/sys/unseal', body: 'unseal' },
  // Never with the root token (exchange swaps it for a read-only one): a seal would end the run's server.
  { method: 'POST', path: '/v1/sys/seal', body: 'seal' },
  { method: 'GET', path: '/v1/projects' },
  { method: 'POST', path: '/v1/projects', body: 'project' },
  { method: 'DELETE', path: '/v1/projects/:p' },
  { method: 'POST', path: '/v1/projects/:p/rotate', body: 'rotate' },
  { method: 'GET', path: '/v1/projects/:p/envs' },
  { method: 'POST', path: '/v1/projects/:p/envs', body: 'env' },
  { method: 'DELETE', path: '/v1/projects/:p/envs/:e' },
  { method: 'GET', path: '/v1/projects/:p/envs/:e/secrets', query: ['only', 'wait', 'raw'] },
  { method: 'PATCH', path: '/v1/projects/:p/envs/:e/secrets', body: 'bulk' },
  { method: 'GET', path: '/v1/projects/:p/envs/:e/keys' },
  { method: 'GET', path: '/v1/projects/:p/envs/:e/secrets/:key', query: ['version', 'raw'] },
  { method: 'PUT', path: '/v1/projects/:p/envs/:e/secrets/:key', body: 'put' },
  { method: 'DELETE', path: '/v1/projects/:p/envs/:e/secrets/:key' },
  { method: 'GET', path: '/v1/projects/:p/envs/:e/secrets/:key/versions' },
  { method: 'GET', path: '/v1/projects/:p/envs/:e/history', query: ['limit', 'before'] },
  { method: 'GET', path: '/v1/projects/:p/envs/:e/diff', query: ['fromRevision', 'toRevision', 'other', 'values'] },
  { method: 'POST', path: '/v1/projects/:p/envs/:e/rollback', body: 'rollback' },
  { method: 'POST', path: '/v1/projects/:p/envs/:e/copy', body: 'copy' },
  // The Vault KV v2-compatible routes (answers in Vault's error shape).
  { method: 'GET', path: '/v1/secret/data/:p/:e', query: ['version'] },
  { method: 'POST', path: '/v1/secret/data/:p/:e', body: 'kv' },
  { method: 'PUT', path: '/v1/secret/data/:p/:e', body: 'kv' },
  { method: 'PATCH', path: '/v1/secret/data/:p/:e', body: 'kv' },
  { method: 'DELETE', path: '/v1/secret/data/:p/:e' },
  { method: 'GET', path: '/v1/secret/metadata', query: ['list'] },
  { method: 'GET', path: '/v1/secret/metadata/:p', query: ['list'] },
  { method: 'GET', path: '/v1/secret/metadata/:p/:e', query: ['list'] },
  { method: 'GET', path: '/v1/secret/config' },
  { method: 'GET', path: '/v1/auth/token/lookup-self' },
  { method: 'GET', path: '/v1/sys/mounts' },
  { method: 'POST', path: '/v1/projects/:p/envs/:e/secrets/:key/generate', body: 'generate' },
  { method: 'GET', path: '/v1/projects/:p/envs/:e/secrets/:key/policy' },
  { method: 'PUT', path: '/v1/projects/:p/envs/:e/secrets/:key/policy', body: 'policy' },
  { method: 'GET', path: '/v1/secrets/stale' },
  { method: 'POST', path: '/v1/tokens', body: 'token' },
  { method: 'GET', path: '/v1/tokens', query: ['name', 'includeRevoked'] },
  { method: 'GET', path: '/v1/tokens/self' },
  { method: 'DELETE', path: '/v1/tokens/:id' },
  { method: 'GET', path: '/v1/audit', query: ['from', 'to', 'actor', 'action', 'project', 'env', 'outcome', 'cursor', 'limit', 'order'] },
  { method: 'GET', path: '/v1/audit/verify', query: ['anchorSeq', 'anchorHash'] },
  { method: 'POST', path: '/v1/backups', body: 'backup' },
  { method: 'POST', path: '/v1/auth/jwt/roles', body: 'role' },
  { method: 'GET', path: '/v1/auth/jwt/roles' },
  { method: 'GET', path: '/v1/auth/jwt/roles/:name' },
  { method: 'DELETE', path: '/v1/auth/jwt/roles/:name' },
  { method: 'POST', path: '/v1/auth/jwt/login', body: 'jwtLogin' },
  { method: 'POST', path: '/v1/webhooks', body: 'webhook' },
  { method: 'GET', path: '/v1/webhooks' },
  { method: 'GET', path: '/v1/webhooks/:id' },
  { method: 'DELETE', path: '/v1/webhooks/:id' },
  { method: 'GET', path: '/v1/webhooks/:id/deliveries', query: ['status', 'before', 'limit'] },
  { method: 'POST', path: '/v1/webhooks/:id/deliveries/:delivery/redeliver' },
  { method: 'POST', path: '/v1/webhooks/:id/test' },
  { method: 'POST', path: '/v1/ui/session' },
  { method: 'GET', path: '/v1/ui/session' },
  { method: 'DELETE', path: '/v1/ui/session' },
  { method: 'GET', path: '/v1/openapi.json' },
];
export const BODY_ROUTES = ROUTES.filter((r) => r.body);

// ---------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------

export const enc = (s: string) => {
  try {
    return encodeURIComponent(s);
  } catch {
    return '%ED%A0%80';
  }
};

/** Path segments: valid names, near-valid names, traversal (encoded or not), bad escapes, control bytes. */
export const segment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('api', 'prod', 'dev', 'A', 'B', 'C', 'MISSING', 'nope', 'tok_00000000000000000000') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '..',
      '.',
      '%2e%2e',
      '%2E%2e',
      '..%2f..%2fetc%2fpasswd',
      '..%5c..%5cwindows',
      '%2f',
      '%5c',
      '%00',
      'a%00b',
      'api%00',
      '%ff',
      '%E0%A4%A',
      '%C0%AF',
      '%ED%A0%80',
      '%F4%90%80%80',
      '%F0%9F%92%A9',
      '%20',
      'a%20b',
      '%0d%0aX-Injected:%201',
      '%25',
      '%',
      '%%',
      '%zz',
      '*',
      'api*',
      '%2A',
      '~',
      '$(id)',
      '%60id%60',
      ';',
      'CON',
      'NUL',
      '__proto__',
      'constructor',
      'prototype',
      'hasOwnProperty',
      'api.',
      '.api',
      '-api',
      'API',
      'a'.repeat(63),
      'a'.repeat(64),
      'a'.repeat(299),
      'a'.repeat(301),
      'A'.repeat(256),
      'A'.repeat(257),
      '%E2%80%AE',
      'api%2fprod',
    ),
  },
  { weight: 2, arbitrary: fc.string({ maxLength: 24 }).map(enc) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }).map(enc) },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,8}$/) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/) },
);

export const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '\u0000',
      'a\u0000b',
      '\ud800',
      'x\udfff',
      '\udc00\ud800',
      '\r\n',
      '\u001b[31m',
      '../../etc/passwd',
      '..\\..\\x',
      '%00',
      '__proto__',
      'constructor',
      'prototype',
      '${jndi:ldap://x/a}',
      "'; drop table secrets; --",
      '<script>alert(1)</script>',
      '💩',
      '\u202e',
      '\ufeff',
      'read:api/prod',
      'admin:*',
      'root',
      '1h',
      '-1h',
      '0s',
      '10y',
      '999999999999y',
      '127.0.0.1/32',
      '::1/128',
      '300.0.0.1/8',
      '1.2.3.4/33',
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom(1000, 65535, 65536, 65537, 70000, 300_000).map((n) => 'x'.repeat(n)) },
);

export const jsonish = fc.jsonValue({ maxDepth: 3 });
export const wrongType = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(jsonish, { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), jsonish, { maxKeys: 3 }),
);
export const anyField = fc.oneof({ weight: 3, arbitrary: hostileString }, { weight: 2, arbitrary: wrongType });
/** Values: mostly marked (so a leak of one is found anywhere), some hostile, some of the wrong type. */
export const valueField = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.nat(), hostileString).map(([n, s]) => markedValue(n, s)) },
  { weight: 2, arbitrary: fc.nat().map((n) => markedValue(n)) },
  { weight: 2, arbitrary: anyField },
);
export const keyName = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('A', 'B', 'C', 'NEW_1', 'NEW_2', '_X', 'constructor', 'toString', 'hasOwnProperty', 'valueOf') },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/) },
  { weight: 2, arbitrary: hostileString },
);
export const resourceName = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,10}$/) },
  { weight: 2, arbitrary: anyField },
);
export const scope = fc.oneof(
  fc.constantFrom(
    'read:api/prod',
    'list:api/prod',
    'write:api/*',
    'admin:api',
    'audit',
    'backup',
    'metrics',
    'root',
    'read:*/*',
    'read:api',
    'read:/',
    'read:api/prod/x',
    'write:',
    'admin:*',
    'READ:api/prod',
  ),
  hostileString,
);

/** Adds hostile extra keys to an object body. */
export const extraKeys = fc.dictionary(
  fc.oneof(fc.constantFrom('extra', 'cas', 'value', 'set', 'isAdmin', 'scopes'), fc.string({ maxLength: 8 })),
  anyField,
  { maxKeys: 2 },
);
export function withExtras<T extends Record<string, unknown>>(arb: fc.Arbitrary<T>): fc.Arbitrary<Record<string, unknown>> {
  return fc.tuple(arb, fc.option(extraKeys, { freq: 5 })).map(([o, x]) => (x ? { ...x, ...o } : o));
}

export const objectBody: Record<BodyKind, fc.Arbitrary<unknown>> = {
  project: withExtras(fc.record({ name: resourceName }, { requiredKeys: [] })),
  env: withExtras(fc.record({ name: resourceName }, { requiredKeys: [] })),
  put: withExtras(
    fc.record(
      { value: valueField, cas: fc.oneof(fc.integer({ min: -2, max: 5 }), fc.constantFrom(2 ** 31, 2 ** 31 + 1, 1.5, '1', null, 1e300)) },
      { requiredKeys: [] },
    ),
  ),
  bulk: withExtras(
    fc.record(
      {
        set: fc.oneof(fc.dictionary(keyName, valueField, { maxKeys: 4 }), wrongType),
        delete: fc.oneof(fc.array(keyName, { maxLength: 4 }), wrongType),
      },
      { requiredKeys: [] },
    ),
  ),
  token: withExtras(
    fc.record(
      {
        name: fc.oneof(fc.constantFrom('ci', 'fuzz'), anyField),
        scopes: fc.oneof(fc.array(scope, { maxLength: 3 }), wrongType),
        ttl: fc.oneof(fc.constantFrom('1h', '30d', '0s', '-1h', '1x', '9999999y', ''), anyField),
        cidrs: fc.oneof(
          fc.array(fc.oneof(fc.constantFrom('10.0.0.0/8', '127.0.0.0/8', '::1/128', '0.0.0.0/0', '1.2.3.4/33', 'x'), hostileString), {
            maxLength: 3,
          }),
          wrongType,
        ),
        description: anyField,
      },
      { requiredKeys: [] },
    ),
  ),
  rollback: withExtras(
    fc.record(
      { toRevision: fc.oneof(fc.integer({ min: -2, max: 6 }), fc.constantFrom(2 ** 53, 1.5, '1', null, 1e300)) },
      { requiredKeys: [] },
    ),
  ),
  copy: withExtras(
    fc.record(
      {
        from: fc.oneof(
          fc.record(
            { project: fc.oneof(resourceName, anyField), env: fc.oneof(fc.constantFrom('dev', 'prod'), resourceName, anyField) },
            { requiredKeys: [] },
          ),
          wrongType,
        ),
        only: fc.oneof(fc.array(keyName, { maxLength: 4 }), wrongType),
      },
      { requiredKeys: [] },
    ),
  ),
  kv: withExtras(
    fc.record(
      {
        data: fc.oneof(fc.dictionary(keyName, fc.oneof(valueField, fc.constant(null), fc.integer()), { maxKeys: 4 }), wrongType),
        options: fc.oneof(fc.record({ cas: fc.oneof(fc.integer({ min: -2, max: 6 }), anyField) }, { requiredKeys: [] }), wrongType),
      },
      { requiredKeys: [] },
    ),
  ),
  rotate: fc.oneof(withExtras(fc.record({ rewrap: fc.oneof(fc.boolean(), anyField) }, { requiredKeys: [] })), fc.constant(undefined)),
  rotateMaster: withExtras(
    fc.record(
      {
        newKey: fc.oneof(
          { weight: 1, arbitrary: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64')) },
          { weight: 1, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 48 }).map((b) => Buffer.from(b).toString('base64')) },
          { weight: 3, arbitrary: anyField },
        ),
      },
      { requiredKeys: [] },
    ),
  ),
  unseal: withExtras(
    fc.record(
      {
        share: fc.oneof(
          fc.constantFrom('hush-share-', 'hush-share-AAAA', 'hush-share-' + 'A'.repeat(56), 'hush-share-' + 'A'.repeat(300)),
          anyField,
        ),
        passphrase: anyField,
        reset: fc.oneof(fc.boolean(), anyField),
      },
      { requiredKeys: [] },
    ),
  ),
  role: withExtras(
    fc.record(
      {
        name: fc.oneof(resourceName, anyField),
        issuer: fc.oneof(
          fc.constantFrom(
            'https://token.actions.githubusercontent.com',
            'http://127.0.0.1:1',
            'not a url',
            'file:///etc/passwd',
            'https://u:p@x',
          ),
          anyField,
        ),
        audience: fc.oneof(fc.constantFrom('hush', ''), anyField),
        scopes: fc.oneof(fc.array(scope, { maxLength: 3 }), wrongType),
        ttl: fc.oneof(fc.constantFrom('15m', '1s', '0s', '9999y', 'x'), anyField),
        boundClaims: fc.oneof(
          fc.dictionary(
            fc.string({ maxLength: 8 }),
            fc.oneof(fc.string({ maxLength: 8 }), fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 })),
          ),
          wrongType,
        ),
        boundSubject: anyField,
        requiredClaims: fc.oneof(fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), wrongType),
        jwksUrl: fc.oneof(fc.constantFrom('http://127.0.0.1:1/keys', 'ftp://x'), anyField),
        jwks: fc.oneof(fc.constant({ keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB' }] }), fc.constant({ keys: [] }), wrongType),
        publicKey: fc.oneof(fc.constantFrom('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----'), anyField),
      },
      { requiredKeys: [] },
    ),
  ),
  jwtLogin: withExtras(
    fc.record(
      {
        role: fc.oneof(resourceName, anyField),
        jwt: fc.oneof(fc.constantFrom('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', 'a.b.c', 'x'.repeat(20_000)), anyField),
      },
      { requiredKeys: [] },
    ),
  ),
  webhook: withExtras(
    fc.record(
      {
        url: fc.oneof(
          fc.constantFrom(
            'https://hooks.example.com/hush',
            'http://127.0.0.1:1/x',
            'https://10.0.0.1/x',
            'https://[::1]/x',
            'https://u:p@hooks.example.com/',
            'ftp://x',
            'https://x/#f',
            'not a url',
          ),
          anyField,
        ),
        events: fc.oneof(
          fc.array(fc.constantFrom('secret.changed', 'token.created', 'root.used', 'webhook.test', 'nope'), { maxLength: 3 }),
          wrongType,
        ),
        project: fc.oneof(resourceName, fc.constant(null), anyField),
        description: anyField,
      },
      { requiredKeys: [] },
    ),
  ),
  generate: withExtras(
    fc.record(
      {
        charset: fc.oneof(fc.constantFrom('alnum', 'hex', 'base64url', 'words', 'ALNUM', ''), anyField),
        length: fc.oneof(fc.integer({ min: -2, max: 5000 }), fc.constantFrom(1.5, '32', null, 1e300), anyField),
        rotateEvery: fc.oneof(fc.constantFrom('90d', '1m', '59s', '3651d', '1x', '', null), anyField),
        expiresAt: fc.oneof(fc.constantFrom('2030-01-01', '2030-01-01T00:00:00Z', '2030-13-45', 'tomorrow', null), anyField),
        auto: fc.oneof(fc.boolean(), anyField),
        show: fc.oneof(fc.boolean(), anyField),
      },
      { requiredKeys: [] },
    ),
  ),
  policy: withExtras(
    fc.record(
      {
        rotateEvery: fc.oneof(fc.constantFrom('90d', '1m', '1x', '', null), anyField),
        expiresAt: fc.oneof(fc.constantFrom('2030-01-01', 'soon', null), anyField),
        auto: fc.oneof(fc.boolean(), anyField),
      },
      { requiredKeys: [] },
    ),
  ),
  seal: fc.oneof(withExtras(fc.record({ all: fc.oneof(fc.boolean(), anyField) }, { requiredKeys: [] })), fc.constant(undefined)),
  backup: withExtras(
    fc.record(
      {
        // A valid passphrase streams a real backup: rare, because each one is a full export.
        passphrase: fc.oneof({ weight: 1, arbitrary: fc.constant('correct horse battery staple') }, { weight: 12, arbitrary: anyField }),
        recipients: fc.oneof(
          fc.array(fc.oneof(fc.constant('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n-----END PGP PUBLIC KEY BLOCK-----'), hostileString), {
            maxLength: 2,
          }),
          wrongType,
        ),
        signingKey: anyField,
        armor: fc.oneof(fc.boolean(), anyField),
      },
      { requiredKeys: [] },
    ),
  ),
};

export const PROTO_BODIES = [
  '{"__proto__":{"isAdmin":true}}',
  '{"value":"x","__proto__":{"cas":0}}',
  '{"name":"pp","__proto__":{"name":"x"}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '{"set":{"__proto__":"x"}}',
  '{"set":{"A":"x"},"__proto__":{"delete":["B"]}}',
  '{"set":{"constructor":{"prototype":{"x":1}}}}',
  '{"scopes":["root"],"name":"p","__proto__":{"scopes":["root"]}}',
  '{"value":"a","value":"b"}',
  '{"name":"a","name":"b"}',
  '\ufeff{"value":"x"}',
  '{"value":1e999}',
  '{"value":"x","cas":-0}',
  '{"value":"x","cas":9007199254740993}',
  '{"value":"x","cas":1e400}',
  '{"value":"\\ud800"}',
  '{"value":"\\u0000"}',
  '{"name":"\\u0000"}',
  '{"description":"\\u0000","name":"d","scopes":["read:api/prod"]}',
  '{"name":"n","scopes":["read:api/prod"],"description":"\\ud800"}',
  '{"name":"\\ud800x","scopes":["read:api/prod"]}',
  '{"set":{"A\\u0000":"x"}}',
  '{"delete":["\\u0000"]}',
  '{"set":{"A":"\\u0000"}}',
  '',
  ' ',
  'null',
  'true',
  '0',
  '"x"',
  '[]',
  '{}',
  '{',
  '}',
  '{"value":',
  '{"value":"x"',
  '{"value":"x"}}',
  '{"value":"x",}',
  "{'value':'x'}",
  '{"value":NaN}',
  '{"value":Infinity}',
  '{"value":undefined}',
  '{value:"x"}',
  '{"value":"x"}garbage',
  '\u0000{"value":"x"}',
];

export interface BodySpec {
  desc: string;
  data?: string | Uint8Array;
  contentType?: string | null;
}

export const contentType = fc.oneof(
  { weight: 12, arbitrary: fc.constant('application/json') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'application/json; charset=latin1',
      'application/json; charset=utf-16',
      'APPLICATION/JSON',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
      'application/json, text/plain',
      'application/jsonx',
      '*/*',
      'application/',
      ';',
      '',
    ),
  },
  { weight: 1, arbitrary: fc.constant(null) },
);

export function bodyFor(kind: BodyKind): fc.Arbitrary<BodySpec> {
  const json = objectBody[kind].map((o): BodySpec => (o === undefined ? { desc: 'none' } : { desc: 'json', data: JSON.stringify(o) }));
  return fc
    .tuple(
      fc.oneof(
        { weight: 8, arbitrary: json },
        {
          weight: 2,
          arbitrary: json.chain((b) =>
            fc
              .nat({ max: Math.max(0, (b.data as string | undefined)?.length ?? 0) })
              .map((n): BodySpec => ({ desc: 'truncated', data: ((b.data as string) ?? '').slice(0, n) })),
          ),
        },
        { weight: 2, arbitrary: fc.constantFrom(...PROTO_BODIES).map((d): BodySpec => ({ desc: 'crafted', data: d })) },
        { weight: 1, arbitrary: fc.string({ maxLength: 60 }).map((d): BodySpec => ({ desc: 'garbage', data: d })) },
        { weight: 1, arbitrary: jsonish.map((v): BodySpec => ({ desc: 'random json', data: JSON.stringify(v) })) },
        {
          weight: 1,
          arbitrary: fc
            .integer({ min: 100, max: 200_000 })
            .map((n): BodySpec => ({ desc: `nested array ${n}`, data: '['.repeat(n) + ']'.repeat(n) })),
        },
        {
          weight: 1,
          arbitrary: fc
            .integer({ min: 100, max: 100_000 })
            .map((n): BodySpec => ({ desc: `nested object ${n}`, data: '{"value":' + '{"a":'.repeat(n) + '1' + '}'.repeat(n) + '}' })),
        },
        {
          weight: 1,
          arbitrary: fc
            .integer({ min: 100, max: 50_000 })
            .map((n): BodySpec => ({ desc: `nested set ${n}`, data: '{"set":{"A":' + '['.repeat(n) + ']'.repeat(n) + '}}' })),
        },
      ),
      contentType,
    )
    .map(([b, ct]) => ({ ...b, contentType: b.data === undefined ? undefined : ct }));
}
