import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import * as errors from '../../vault/errors.js';
import { describeSettings } from '../../vault/config.js';

const root = new URL('../../../', import.meta.url);
const read = (p: string) => readFileSync(new URL(p, root), 'utf8');

describe('docs stay in step with the code', () => {
  it('every server error code is in docs/errors.md', () => {
    const doc = read('docs/errors.md');
    for (const [name, cls] of Object.entries(errors)) {
      if (typeof cls !== 'function' || name === 'HushError' || !/^[A-Z]\w*Error$/.test(name)) continue;
      const code = new (cls as new (m: string) => { code: string })('x').code;
      assert.ok(doc.includes(`\`${code}\``), `${code} (${name}) missing from docs/errors.md`);
    }
  });

  it('every setting is in docs/configuration.md', () => {
    const doc = read('docs/configuration.md');
    for (const s of describeSettings()) {
      assert.ok(doc.includes(`\`${s.flag}\``), `${s.flag} missing`);
      assert.ok(doc.includes(`\`${s.env}\``), `${s.env} missing`);
    }
  });
});

describe('docs/backups.md examples work when run in order', () => {
  /** Every `hush backup ...` command of the page's sh blocks, in order. */
  const commands = () =>
    [...read('docs/backups.md').matchAll(/```sh\n([\s\S]*?)```/g)]
      .flatMap((m) => m[1].replace(/\\\n\s*/g, ' ').split('\n'))
      .map((l) => l.trim())
      .filter((l) => l.startsWith('hush backup '));
  const opt = (cmd: string, name: string) => new RegExp(`--${name}(?:=|\\s+)(\\S+)`).exec(cmd)?.[1];
  const words = (cmd: string) => cmd.split(/\s+/);

  it('no create writes over a file an earlier one made (an existing --out needs --force)', () => {
    const made = new Set<string>();
    for (const c of commands().filter((x) => x.startsWith('hush backup create'))) {
      const out = opt(c, 'out');
      assert.ok(out, c);
      assert.ok(!made.has(out) || c.includes('--force'), `${c}: ${out} exists by then`);
      made.add(out);
    }
  });

  it('verify and restore open each file with what it was made with, and ask for a signature only of a signed one', () => {
    const made = new Map<string, { signed: boolean; passphrase: boolean; key: boolean }>();
    for (const c of commands()) {
      const w = words(c);
      if (w[2] === 'create') {
        made.set(opt(c, 'out')!, {
          signed: c.includes('--sign-key'),
          passphrase: c.includes('--passphrase-file'),
          key: c.includes('--recipient'),
        });
      } else if (w[2] === 'verify' || w[2] === 'restore') {
        const file = w[3];
        const m = made.get(file);
        if (!m) continue; // a file named by a scheduled backup, made outside these examples
        if (c.includes('--signer')) assert.ok(m.signed, `${c}: ${file} is unsigned`);
        if (c.includes('--passphrase-file')) assert.ok(m.passphrase, `${c}: ${file} has no passphrase`);
        if (c.includes('--identity ')) assert.ok(m.key, `${c}: ${file} is not encrypted to a key`);
      }
    }
  });
});
