// Regenerates the settings table in docs/configuration.md from vault/settings.ts (through describeSettings in vault/config.ts) (run after `npm run build`).
import { readFileSync, writeFileSync } from 'node:fs';
const { describeSettings } = await import('../dist/vault/config.js');
const path = new URL('../docs/configuration.md', import.meta.url);
const doc = readFileSync(path, 'utf8');
const rows = describeSettings()
  .map((r) => `| \`${r.flag}\` | \`${r.env}\` | \`${r.default}\` | ${r.doc} |`)
  .join('\n');
const table = `| Flag | Environment | Default | Meaning |\n| --- | --- | --- | --- |\n${rows}\n`;
writeFileSync(path, doc.replace(/\| Flag \| Environment[\s\S]*?\n\n/, table + '\n'));
