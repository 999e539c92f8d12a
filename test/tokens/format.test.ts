import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { randomTokenString } from '../../vault/crypto/keyring.js';
import {
  checksum,
  checkTokenFormat,
  formatToken,
  TOKEN_CHECKSUM_CHARS,
  TOKEN_LENGTH,
  TOKEN_PREFIX,
  TOKEN_RANDOM_CHARS,
} from 'hush-vault-sdk/token-format';
import { REDACTED_TOKEN, redactTokens } from '../../vault/services/token/redact.js';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const fresh = () => formatToken((n) => randomBytes(n));

test('a token is hush_ + 43 base62 characters + a 6-character checksum', () => {
  const t = fresh();
  assert.equal(t.length, TOKEN_LENGTH);
  assert.equal(TOKEN_LENGTH, 5 + 43 + 6);
  assert.match(t, /^hush_[0-9A-Za-z]{49}$/);
  assert.equal(t.slice(-TOKEN_CHECKSUM_CHARS), checksum(t.slice(TOKEN_PREFIX.length, TOKEN_PREFIX.length + TOKEN_RANDOM_CHARS)));
});

test('the random part carries at least 256 bits', () => {
  assert.ok(
    TOKEN_RANDOM_CHARS * Math.log2(62) >= 256,
    `${TOKEN_RANDOM_CHARS} base62 characters carry ${TOKEN_RANDOM_CHARS * Math.log2(62)} bits`,
  );
});

test('a freshly generated token passes the offline check', async () => {
  assert.deepEqual(checkTokenFormat(fresh()), { ok: true });
  assert.deepEqual(checkTokenFormat(await randomTokenString()), { ok: true });
});

test('base62 encoding is unbiased: bytes >= 248 are rejected, not folded', () => {
  // Feed only bytes 248..255 then a known run: the output must come from the known run alone.
  let call = 0;
  const t = formatToken((n) => {
    call++;
    return call === 1 ? new Uint8Array(n).fill(250) : Uint8Array.from({ length: n }, (_, i) => i % 62);
  });
  assert.equal(t.slice(5, 5 + 43), ALPHABET.slice(0, 43));
});

test('changing any one character of a token makes the offline check fail', () => {
  const t = fresh();
  let checked = 0;
  for (let i = TOKEN_PREFIX.length; i < t.length; i++) {
    for (const c of ALPHABET) {
      if (c === t[i]) continue;
      const typo = t.slice(0, i) + c + t.slice(i + 1);
      const r = checkTokenFormat(typo);
      assert.equal(r.ok, false, `a typo at position ${i} was accepted`);
      checked++;
    }
  }
  assert.equal(checked, (TOKEN_LENGTH - TOKEN_PREFIX.length) * 61);
});

test('swapping two adjacent different characters makes the offline check fail', () => {
  const t = fresh();
  for (let i = TOKEN_PREFIX.length; i < t.length - 1; i++) {
    if (t[i] === t[i + 1]) continue;
    const swapped = t.slice(0, i) + t[i + 1] + t[i] + t.slice(i + 2);
    assert.equal(checkTokenFormat(swapped).ok, false, `a transposition at ${i} was accepted`);
  }
});

test('a checksum mismatch says the token was mistyped or truncated', () => {
  const t = fresh();
  const last = t[t.length - 1] === 'a' ? 'b' : 'a';
  const r = checkTokenFormat(t.slice(0, -1) + last);
  assert.equal(r.ok, false);
  assert.match((r as { reason: string }).reason, /checksum/);
});

test('a truncated, extended, unprefixed, empty or non-base62 token is rejected with a reason', () => {
  const t = fresh();
  const cases: [string, RegExp][] = [
    [t.slice(0, -1), /characters, expected 54/],
    [t + 'x', /characters, expected 54/],
    ['hish_' + t.slice(5), /does not start with "hush_"/],
    ['', /empty/],
    [t.slice(0, 20) + '-' + t.slice(21), /outside \[0-9A-Za-z\]/],
    [' ' + t.slice(1), /does not start/],
  ];
  for (const [input, reason] of cases) {
    const r = checkTokenFormat(input);
    assert.equal(r.ok, false, `accepted ${JSON.stringify(input)}`);
    assert.match((r as { reason: string }).reason, reason);
  }
});

test('the offline check never echoes the token in its reason', () => {
  const t = fresh();
  for (const bad of [t.slice(0, -1), t + 'Z', t.slice(0, -1) + (t.endsWith('0') ? '1' : '0'), t.replace('hush_', 'hash_')]) {
    const r = checkTokenFormat(bad) as { ok: false; reason: string };
    assert.ok(!r.reason.includes(bad.slice(5, 25)), r.reason);
  }
});

test(
  'redactTokens blanks every token, in any' +
    ' letter case and percent-encoded, and nothing' +
    (' shorter (outside review: HUSH_/Hush_' + ' slipped through, hush_ names were blanked)'),
  () => {
    const t = fresh();
    const body = t.slice(5);
    assert.equal(redactTokens(`GET /v1/x/${t}?token=${t}`), `GET /v1/x/${REDACTED_TOKEN}?token=${REDACTED_TOKEN}`);
    for (const variant of [`HUSH_${body}`, `Hush_${body}`, t.toUpperCase(), t.toLowerCase(), `hUsH_${body}`]) {
      assert.equal(redactTokens(`a ${variant} b`), `a ${REDACTED_TOKEN} b`, variant.slice(0, 8));
    }
    // Percent-encoded characters, hex digits in either case.
    assert.equal(redactTokens(`/v1/x/%68ush%5f${body}`), `/v1/x/${REDACTED_TOKEN}`);
    assert.equal(
      redactTokens(`/v1/x/HUSH%5F${body.slice(0, 10)}%${body.charCodeAt(10).toString(16).toUpperCase()}${body.slice(11)}`),
      `/v1/x/${REDACTED_TOKEN}`,
    );
    // Longer runs: the token's length is blanked, the rest stays.
    assert.equal(redactTokens(`${t}EXTRA`), `${REDACTED_TOKEN}EXTRA`);
    // Names that only start like one, in any case and any length short of a token's, stay as they are.
    for (const name of [
      'hush_feature_flag',
      'HUSH_FEATURE_FLAG',
      'Hush_Feature_Flag_For_Everyone_In_Production',
      'hush_featureflagsenabledforall',
      `hush_${body.slice(0, 48)}`,
      'hush_short and hush-cli',
      '/v1/projects/a/envs/b/secrets/hush%5Ffeature%5Fflag',
    ]) {
      assert.equal(redactTokens(name), name);
    }
  },
);
