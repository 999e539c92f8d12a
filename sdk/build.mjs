// Builds the SDK twice from src/: ES modules into dist/esm and CommonJS into
// dist/cjs, each with its own .d.ts files. dist/cjs/package.json marks that
// folder as CommonJS, so Node and TypeScript (node10, node16/nodenext,
// bundler) read each build as what it is.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync(`${here}dist`, { recursive: true, force: true });
for (const project of ['tsconfig.json', 'tsconfig.cjs.json']) {
  execFileSync(process.execPath, [tsc, '-p', `${here}${project}`], { stdio: 'inherit' });
}
mkdirSync(`${here}dist/cjs`, { recursive: true });
writeFileSync(`${here}dist/cjs/package.json`, '{ "type": "commonjs" }\n');
