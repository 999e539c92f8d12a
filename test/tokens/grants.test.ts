import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cidrList, cidrWithin, ipAllowed, parseCidr } from '../../vault/services/token/cidr.js';
import { allows, formatGrant, grantCovers, parseGrant, seesEnv, seesProject, type Need } from '../../vault/services/token/grants.js';
import { formatToken } from 'hush-vault-sdk/token-format';
import { randomBytes } from 'node:crypto';

const g = (...s: string[]) => s.map(parseGrant);
const covers = (parent: string, child: string) => grantCovers(parseGrant(parent), parseGrant(child));

test('every documented scope form parses and prints back unchanged', () => {
  for (const s of [
    'read:api/prod',
    'list:api/prod',
    'write:api/prod',
    'admin:api',
    'audit',
    'backup',
    'metrics',
    'root',
    'read:*/*',
    'read:api/*',
    'write:*/prod',
    'read:api-*/prod*',
    'admin:*',
    'admin:team.a*',
  ]) {
    assert.equal(formatGrant(parseGrant(s)), s);
  }
});

test('malformed scopes are rejected with invalid_request', () => {
  for (const s of [
    'read',
    'read:api',
    'admin:api/prod',
    'delete:api/prod',
    'read:API/prod',
    'read:a*b/prod',
    'read:api/pr od',
    'read:api/prod/x',
    'read:**/prod',
    'root:api',
    '',
    'read:/prod',
    'read:api/',
  ]) {
    assert.throws(
      () => parseGrant(s),
      (e: { code?: string }) => e.code === 'invalid_request',
      `accepted ${JSON.stringify(s)}`,
    );
  }
});

test('an invalid scope error never echoes a token pasted into it', () => {
  const t = formatToken((n) => randomBytes(n));
  for (const s of [t, `read:${t}/prod`, `read:api/${t}`]) {
    assert.throws(
      () => parseGrant(s),
      (e: Error) => !e.message.includes(t.slice(5, 30)) && /redacted/.test(e.message),
    );
  }
  assert.throws(
    () => parseCidr(t),
    (e: Error) => !e.message.includes(t.slice(5, 30)),
  );
});

const need = (kind: 'read' | 'list' | 'write', project: string, env: string): Need => ({ kind, project, env });

test('write implies read, read implies list, on the same project and env only', () => {
  assert.ok(allows(g('write:api/prod'), need('read', 'api', 'prod')));
  assert.ok(allows(g('write:api/prod'), need('list', 'api', 'prod')));
  assert.ok(allows(g('read:api/prod'), need('list', 'api', 'prod')));
  assert.ok(!allows(g('read:api/prod'), need('write', 'api', 'prod')));
  assert.ok(!allows(g('list:api/prod'), need('read', 'api', 'prod')));
  assert.ok(!allows(g('write:api/prod'), need('read', 'api', 'staging')));
  assert.ok(!allows(g('write:api/prod'), need('read', 'web', 'prod')));
});

test('admin:P allows every env-level action and admin on P, nothing on other projects', () => {
  for (const k of ['read', 'list', 'write'] as const) assert.ok(allows(g('admin:api'), need(k, 'api', 'anything')));
  assert.ok(allows(g('admin:api'), { kind: 'admin', project: 'api' }));
  assert.ok(!allows(g('admin:api'), { kind: 'admin', project: 'web' }));
  assert.ok(!allows(g('admin:api'), need('read', 'web', 'prod')));
  assert.ok(!allows(g('admin:api'), { kind: 'audit' }));
  assert.ok(!allows(g('admin:api'), { kind: 'root' }));
});

test('audit and backup allow only themselves; root allows everything', () => {
  assert.ok(allows(g('audit'), { kind: 'audit' }));
  assert.ok(!allows(g('audit'), { kind: 'backup' }));
  assert.ok(!allows(g('audit'), need('list', 'api', 'prod')));
  assert.ok(allows(g('backup'), { kind: 'backup' }));
  assert.ok(!allows(g('backup'), need('read', 'api', 'prod')));
  for (const n of [
    { kind: 'audit' },
    { kind: 'backup' },
    { kind: 'root' },
    { kind: 'admin', project: 'x' },
    need('write', 'a', 'b'),
  ] as Need[])
    assert.ok(allows(g('root'), n));
});

test('"*" matches any name and a trailing "*" matches a prefix', () => {
  assert.ok(allows(g('read:*/*'), need('read', 'anything', 'at-all')));
  assert.ok(allows(g('read:api*/prod'), need('read', 'api', 'prod')));
  assert.ok(allows(g('read:api*/prod'), need('read', 'api-v2', 'prod')));
  assert.ok(!allows(g('read:api*/prod'), need('read', 'ap', 'prod')));
  assert.ok(allows(g('read:api/pr*'), need('read', 'api', 'preview')));
  assert.ok(!allows(g('read:api/pr*'), need('read', 'api', 'staging')));
  assert.ok(allows(g('admin:team-*'), { kind: 'admin', project: 'team-a' }));
});

test('a child grant is covered only if it allows nothing the parent does not', () => {
  const yes: [string, string][] = [
    ['root', 'root'],
    ['root', 'audit'],
    ['root', 'admin:*'],
    ['admin:api', 'write:api/prod'],
    ['admin:api', 'read:api/*'],
    ['admin:api', 'admin:api'],
    ['admin:api*', 'admin:api-v2'],
    ['admin:api*', 'admin:api-*'],
    ['write:api/prod', 'read:api/prod'],
    ['write:api/*', 'list:api/prod'],
    ['read:*/*', 'read:api/pr*'],
    ['read:a*/*', 'read:ab*/x'],
    ['audit', 'audit'],
    ['backup', 'backup'],
    ['metrics', 'metrics'],
    ['root', 'metrics'],
  ];
  const no: [string, string][] = [
    ['read:api/prod', 'write:api/prod'],
    ['read:api/prod', 'read:api/*'],
    ['read:api/prod', 'read:*/prod'],
    ['read:api*/prod', 'read:*/prod'],
    ['read:api*/prod', 'read:ap*/prod'],
    ['list:api/prod', 'read:api/prod'],
    ['write:api/*', 'admin:api'],
    ['admin:api', 'admin:api*'],
    ['admin:api', 'admin:*'],
    ['admin:api', 'read:web/prod'],
    ['admin:*', 'audit'],
    ['admin:*', 'root'],
    ['audit', 'backup'],
    ['audit', 'read:api/prod'],
    ['backup', 'root'],
    ['write:*/*', 'root'],
    ['metrics', 'audit'],
    ['metrics', 'root'],
    ['audit', 'metrics'],
    ['admin:*', 'metrics'],
    ['metrics', 'read:api/prod'],
  ];
  for (const [p, c] of yes) assert.ok(covers(p, c), `${p} should cover ${c}`);
  for (const [p, c] of no) assert.ok(!covers(p, c), `${p} must not cover ${c}`);
});

test('project and env visibility follow the grants that name them', () => {
  assert.ok(seesProject(g('list:api/prod'), 'api'));
  assert.ok(!seesProject(g('list:api/prod'), 'web'));
  assert.ok(!seesProject(g('audit', 'backup', 'metrics'), 'api'));
  assert.ok(seesProject(g('root'), 'api'));
  assert.ok(seesEnv(g('read:api/prod'), 'api', 'prod'));
  assert.ok(!seesEnv(g('read:api/prod'), 'api', 'staging'));
  assert.ok(seesEnv(g('admin:api'), 'api', 'staging'));
});

test('a CIDR allowlist admits addresses inside it, IPv4-mapped IPv6 included, and nothing else', () => {
  const l = cidrList(['10.0.0.0/8', '2001:db8::/32']);
  assert.ok(ipAllowed(l, '10.1.2.3'));
  assert.ok(ipAllowed(l, '::ffff:10.1.2.3'));
  assert.ok(ipAllowed(l, '2001:db8::1'));
  assert.ok(!ipAllowed(l, '127.0.0.1'));
  assert.ok(!ipAllowed(l, '11.0.0.1'));
  assert.ok(!ipAllowed(l, null));
  assert.ok(ipAllowed(cidrList([]), '203.0.113.9'), 'no allowlist admits every address');
});

test('a child CIDR must lie inside one of the parent CIDRs', () => {
  assert.ok(cidrWithin(['10.0.0.0/8'], '10.1.0.0/16'));
  assert.ok(cidrWithin(['10.0.0.0/8'], '10.1.2.3'));
  assert.ok(cidrWithin(['10.0.0.0/8'], '10.0.0.0/8'));
  assert.ok(!cidrWithin(['10.0.0.0/8'], '0.0.0.0/0'));
  assert.ok(!cidrWithin(['10.0.0.0/8'], '10.0.0.0/7'));
  assert.ok(!cidrWithin(['10.0.0.0/8'], '11.0.0.0/16'));
  assert.ok(!cidrWithin(['10.0.0.0/8'], '::/0'));
  assert.ok(cidrWithin(['192.168.0.0/16', '10.0.0.0/8'], '10.9.0.0/16'));
});

test('malformed CIDRs are rejected', () => {
  for (const c of ['10.0.0.0/33', '10.0.0/8', 'ten', '::/129', '10.0.0.0/-1', '']) assert.throws(() => parseCidr(c), `accepted ${c}`);
});
