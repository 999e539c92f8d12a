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
