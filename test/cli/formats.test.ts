import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseDotenv } from 'dotenv';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { formatSecrets, toDocker, toDotenv, toJson, toShell, toYaml } from '../../cli/formats.js';
import { tempDir } from '../helpers/server.js';
import { TRICKY } from './helpers.js';

/** Sources the file in a POSIX shell and prints each variable back with printf %s, NUL-separated. */
function throughShell(text: string, keys: string[]): Record<string, string> {
  const f = join(tempDir('hush-fmt-'), 'env.sh');
  writeFileSync(f, text);
  const script = `. "$1"; ${keys.map((k) => `printf '%s\\0' "$${k}"`).join('; ')}`;
  const r = spawnSync('sh', ['-c', script, 'sh', f], { encoding: 'utf8', env: {} });
  assert.equal(r.status, 0, r.stderr);
  const vals = r.stdout.split('\0').slice(0, keys.length);
  return Object.fromEntries(keys.map((k, i) => [k, vals[i]]));
}

describe('export formats round-trip tricky values', () => {
  it('dotenv output is read back identically by dotenv.parse', () => {
    assert.deepEqual(parseDotenv(toDotenv(TRICKY)), TRICKY);
  });

  it('dotenv uses double quotes with \\n escapes when dotenv can read them back', () => {
    assert.equal(toDotenv({ A: 'x\ny', B: "it's $HOME" }), 'A="x\\ny"\nB="it\'s $HOME"\n');
  });

  it('dotenv refuses, naming the key, a value no dotenv quoting can carry', () => {
    assert.throws(
      () => toDotenv({ OK: '1', BAD: 'a\'b"c`d #x\nline2' }),
      (e: any) => e.exitCode === 2 && /BAD/.test(e.message) && /--format json/.test(e.message),
    );
  });

  it('dotenv never writes a file that reads back differently (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'grapheme-ascii', maxLength: 20 }), (v, w) => {
        let text: string;
        try {
          text = toDotenv({ A: v, B: w });
        } catch (e) {
          assert.equal((e as { code?: string }).code, 'format_unsupported');
          return;
        }
        assert.deepEqual(parseDotenv(text), { A: v, B: w });
      }),
      { numRuns: 500 },
    );
  });

  it('dotenv carries any value without a backtick and without a carriage return (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 40 }).filter((v) => !v.includes('`') && !v.includes('\r')),
        (v) => {
          assert.deepEqual(parseDotenv(toDotenv({ K: v })), { K: v });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('shell output gives every value back byte for byte through sh', () => {
    const vals = Object.fromEntries(Object.entries(TRICKY));
    assert.deepEqual(throughShell(toShell(vals), Object.keys(vals)), vals);
    assert.match(toShell({ Q: "it's" }), /^export Q='it'\\''s'\n$/);
  });

  it('shell quoting survives arbitrary values (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 30 }).filter((v) => !v.includes('\0')),
        (v) => {
          assert.equal(throughShell(toShell({ K: v }), ['K']).K, v);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('docker writes KEY=VALUE verbatim and refuses a multi-line value, naming the key', () => {
    assert.equal(toDocker({ B: 'it\'s "x" $y \\n', A: '  sp ' }), 'A=  sp \nB=it\'s "x" $y \\n\n');
    assert.throws(
      () => toDocker({ A: '1', CERT: 'x\ny' }),
      (e: any) => e.exitCode === 2 && /CERT/.test(e.message) && /multi-line/.test(e.message),
    );
    assert.throws(() => toDocker({ CR: 'x\ry' }), /CR/);
  });

  it('yaml output parses back to the same map, keys like Y/on/null included', () => {
    const vals = { ...TRICKY, Y: 'yes', on: 'off', null: '~', CTRL: '\u0007\u0085\u2028\u00a0' };
    assert.deepEqual(parseYaml(toYaml(vals)), vals);
  });

  it('yaml round-trips arbitrary values (property)', () => {
    const parse = parseYaml;
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (v) => {
        assert.deepEqual(parse(toYaml({ K: v })), { K: v });
      }),
      { numRuns: 300 },
    );
  });

  it('json is one sorted object', () => {
    assert.deepEqual(JSON.parse(toJson(TRICKY)), TRICKY);
    assert.deepEqual(Object.keys(JSON.parse(toJson({ b: '1', a: '2' }))), ['a', 'b']);
  });

  it('every format handles an empty environment', () => {
    for (const f of ['dotenv', 'json', 'shell', 'docker', 'yaml'] as const) assert.doesNotThrow(() => formatSecrets(f, {}));
    assert.equal(toJson({}), '{}\n');
  });
});
