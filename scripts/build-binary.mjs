// Wraps the single-file client (dist/client/hush.cjs) into one executable,
// dist/bin/hush, with Node's single-executable-application support: a copy
// of this Node binary with the script (and V8's code cache for it) injected
// by postject. It runs where no Node is installed; it needs the same libc
// as this Node binary (glibc; see docs/containers.md).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const script = `${root}dist/client/hush.cjs`;
const dir = `${root}dist/bin`;
const blob = `${dir}/hush.blob`;
const out = `${dir}/hush`;
if (!existsSync(script)) execFileSync(process.execPath, [`${root}scripts/build-client.mjs`], { stdio: 'inherit' });
mkdirSync(dir, { recursive: true });
writeFileSync(
  `${dir}/sea-config.json`,
  JSON.stringify(
    {
      main: script,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: true,
    },
    null,
    2,
  ),
);
execFileSync(process.execPath, ['--experimental-sea-config', `${dir}/sea-config.json`], { stdio: ['ignore', 'ignore', 'inherit'] });
rmSync(out, { force: true });
copyFileSync(process.execPath, out);
chmodSync(out, 0o755);
const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js');
// postject's ELF library warns about note sections it does not know; only a failure is worth showing.
try {
  execFileSync(
    process.execPath,
    [postject, out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'],
    { stdio: 'pipe' },
  );
} catch (e) {
  process.stderr.write(String(e.stderr ?? '') + String(e.stdout ?? ''));
  throw e;
}
rmSync(blob);
console.log(
  `built ${out.slice(root.length)} (${(statSync(out).size / 1048576).toFixed(0)} MiB; Node ${process.version}, ${process.platform}-${process.arch}, glibc)`,
);
