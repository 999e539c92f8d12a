// The e2e `hush run` suite (test/run/*.test.ts) once more, driving the
// single-file client dist/client/hush.cjs instead of the full CLI: the
// bundle must behave exactly as the CLI it is built from. HUSH_TEST_CLI is
// read by test/helpers/cli.ts when it is first imported, so it is set
// before the suites are loaded.
import { existsSync } from 'node:fs';
import { test } from 'node:test';

const SINGLE_FILE_CLI = new URL('../../client/hush.cjs', import.meta.url).pathname;

if (!existsSync(SINGLE_FILE_CLI)) {
  test('the single-file client exists', () => {
    throw new Error(`${SINGLE_FILE_CLI} is missing: npm run build builds it (npm run build:client alone)`);
  });
} else {
  process.env.HUSH_TEST_CLI = SINGLE_FILE_CLI;
  for (const suite of ['env', 'exit', 'fallback', 'mask', 'mount', 'signals', 'startup', 'watch']) await import(`../run/${suite}.test.js`);
}
