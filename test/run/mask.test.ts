import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Masker } from '../../cli/run/mask.js';
import { fixture, hush, nodeChild, type RunFixture } from './util.js';

const SECRET = 'pg-Secret-0042';

function streamed(values: string[], chunks: Buffer[]): Buffer {
  const m = new Masker(values);
  return Buffer.concat([...chunks.map((c) => m.push(c)), m.end()]);
}
const once = (values: string[], input: Buffer) => streamed(values, [input]);

describe('Masker (unit)', () => {
  test('replaces values of 4+ characters, longest first; shorter values pass', () => {
    const out = once(['password', 'pass', 'abc'], Buffer.from('my password, pass and abc'));
    assert.equal(out.toString(), 'my *****, ***** and abc');
  });

  test('overlapping secrets are masked as one run: no byte of either leaks', () => {
    assert.equal(once(['abcd', 'cdef'], Buffer.from('xabcdefx')).toString(), 'x*****x');
    assert.equal(once(['abcd', 'bc12'], Buffer.from('abc12')).toString(), 'a*****');
  });

  test('multi-byte UTF-8 values match on bytes', () => {
    assert.equal(once(['clé-ünïcødé'], Buffer.from('k=clé-ünïcødé;')).toString(), 'k=*****;');
  });

  test('every split position of the input gives the same output', () => {
    const values = [SECRET, 'Secret', 'tok_ABCDEF'];
    const input = Buffer.from(`a ${SECRET} b tok_ABCDEF${SECRET} c Secre pg-Secret-004 ${SECRET}`);
    const expected = once(values, input);
    assert.equal(expected.toString(), 'a ***** b ***** c Secre pg-*****-004 *****');
    for (let i = 0; i <= input.length; i++) {
      assert.deepEqual(streamed(values, [input.subarray(0, i), input.subarray(i)]), expected, `split at ${i}`);
      for (let j = i; j <= input.length; j += 3) {
        assert.deepEqual(streamed(values, [input.subarray(0, i), input.subarray(i, j), input.subarray(j)]), expected, `split at ${i},${j}`);
      }
    }
    // One byte at a time.
    assert.deepEqual(
      streamed(
        values,
        [...input].map((b) => Buffer.from([b])),
      ),
      expected,
    );
  });

  test('random inputs over a tiny alphabet: any chunking equals the one-shot result', () => {
    const values = ['abca', 'bcab', 'aaaa', 'cabcabc'];
    for (let n = 0; n < 300; n++) {
      const len = 1 + Math.floor(Math.random() * 60);
      const input = Buffer.from(Array.from({ length: len }, () => 'abc'[Math.floor(Math.random() * 3)]).join(''));
      const expected = once(values, input);
      const chunks: Buffer[] = [];
      for (let i = 0; i < input.length;) {
        const k = 1 + Math.floor(Math.random() * 7);
        chunks.push(input.subarray(i, i + k));
        i += k;
      }
      assert.deepEqual(streamed(values, chunks), expected, `input ${input.toString()}`);
      // Nothing of a secret survives.
      for (const v of values) assert.ok(!streamed(values, chunks).includes(v), `${v} leaked from ${input.toString()}`);
    }
  });

  test('only a possible prefix of a secret is held back; other bytes flow at once', () => {
    const m = new Masker([SECRET]);
    assert.equal(m.push(Buffer.from('Password: ')).toString(), 'Password: ');
    assert.equal(m.push(Buffer.from('xx pg-Sec')).toString(), 'xx ');
    assert.equal(m.push(Buffer.from('ret-0042!')).toString(), '*****!');
    assert.equal(m.push(Buffer.from('pg-')).toString(), '');
    assert.equal(m.end().toString(), 'pg-', 'a held prefix that never completed is written at the end');
  });

  test('binary data passes unchanged apart from exact matches', () => {
    for (let n = 0; n < 20; n++) {
      const a = randomBytes(3000);
      const b = randomBytes(3000);
      const input = Buffer.concat([a, Buffer.from(SECRET), b]);
      const expected = Buffer.concat([a, Buffer.from('*****'), b]);
      const cut = Math.floor(Math.random() * input.length);
      assert.deepEqual(streamed([SECRET], [input.subarray(0, cut), input.subarray(cut)]), expected);
    }
  });
});

let f: RunFixture;
before(async () => {
  f = await fixture({ DB_PASSWORD: SECRET, SHORT: 'abc', API_TOKEN: 'tok_live_9f8e7d6c' });
});
after(async () => {
  await f.close();
});

describe('hush run --mask (end to end)', () => {
  test('a secret written in two pieces with a pause between them is still masked, on stdout and stderr', async () => {
    const code =
      `
      const half = process.env.DB_PASSWORD.slice(0, 6), rest = ` +
      `process.env.DB_PASSWORD.slice(6);
      process.stdout.write('db=' + half); ` +
      `process.stderr.write('tok=' + process.env.API_TOKEN.slice(0, 5));
      setTimeout(() => { ` +
      `process.stdout.write(rest + ' short=' + process.env.SHORT + '\\n'); ` +
      `process.stderr.write(process.env.API_TOKEN.slice(5) + '\\n'); process.exit(3); }, 300);
    `;
    const r = await hush(['run', '--mask', '--', ...nodeChild(code)], f.env);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.out, 'db=***** short=abc\n');
    assert.equal(r.stderr, 'tok=*****\n');
  });

  test('binary output: random bytes around a secret come through byte for byte, the secret as *****', async () => {
    // More than one pipe buffer (64 KiB) before the secret, so it arrives in several chunks.
    const a = randomBytes(200_000);
    const b = randomBytes(5000);
    writeFileSync(join(f.dir, 'a.bin'), a);
    writeFileSync(join(f.dir, 'b.bin'), b);
    const code =
      `
      const fs = require('fs');
      ` +
      `process.stdout.write(Buffer.concat([fs.readFileSync('a.bin'), ` +
      `Buffer.from(process.env.DB_PASSWORD), fs.readFileSync('b.bin')]));
    `;
    const r = await hush(['run', '--mask', '--', ...nodeChild(code)], f.env, { cwd: f.dir });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout, Buffer.concat([a, Buffer.from('*****'), b]));
  });

  test('without --mask, output is untouched (stdio is inherited)', async () => {
    const r = await hush(['run', '--', ...nodeChild('process.stdout.write(process.env.DB_PASSWORD)')], f.env);
    assert.equal(r.out, SECRET);
  });
});
