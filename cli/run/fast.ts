/**
 * Fast path for `hush run`, which is a container entrypoint: every start of
 * the container pays for hush's own startup, and loading yargs costs more
 * than everything else `hush run` does. main.ts calls fastRun() before it
 * loads yargs; this parses the common, well-formed invocations with
 * node:util's parseArgs and hands anything else (help, a typo, an unknown
 * flag, an odd form) back to yargs by returning false, so every message and
 * error stays yargs'.
 */
import { parseArgs } from 'node:util';
import type { RunArgs } from '../commands/run.js';

const OPTIONS = {
  // Global options (cli/context.ts).
  addr: { type: 'string' },
  'token-file': { type: 'string' },
  'ca-file': { type: 'string' },
  profile: { type: 'string' },
  project: { type: 'string', short: 'p' },
  env: { type: 'string', short: 'e' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  retries: { type: 'string' },
  // `hush run` (cli/commands/run.ts).
  only: { type: 'string', multiple: true },
  'preserve-env': { type: 'string', multiple: true },
  mask: { type: 'boolean' },
  watch: { type: 'boolean' },
  'watch-grace': { type: 'string' },
  fallback: { type: 'string' },
  'fallback-max-age': { type: 'string' },
  mount: { type: 'string' },
  'mount-format': { type: 'string' },
  'no-env': { type: 'boolean' },
  command: { type: 'string' },
} as const;

const MOUNT_FORMATS = new Set(['dotenv', 'json', 'raw']);

/** The flags of a `hush run` invocation (argv after "run"), or null when yargs should parse it. */
export function parseRunFast(argv: string[]): RunArgs | null {
  const sep = argv.indexOf('--');
  const head = sep === -1 ? argv : argv.slice(0, sep);
  if (sep === -1) return null; // no command after --: yargs gives the usage message
  // Forms yargs reads differently from parseArgs: "-p=x", "--flag=..." on a boolean, bare --preserve-env.
  if (head.some((t) => /^-[^-]=/.test(t) || /^-[^-]{2,}/.test(t))) return null;
  const tokens = head.map((t) => (t === '--preserve-env' ? '--preserve-env=' : t));
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({ args: tokens, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch {
    return null;
  }
  const num = (v: unknown): number | undefined | null => {
    if (v === undefined) return undefined;
    const n = Number(v);
    return typeof v === 'string' && v.trim() !== '' && Number.isFinite(n) ? n : null;
  };
  const timeout = num(values.timeout);
  const retries = num(values.retries);
  if (timeout === null || retries === null) return null;
  const mountFormat = values['mount-format'] as string | undefined;
  if (mountFormat !== undefined && !MOUNT_FORMATS.has(mountFormat)) return null;
  return {
    addr: values.addr as string | undefined,
    'token-file': values['token-file'] as string | undefined,
    'ca-file': values['ca-file'] as string | undefined,
    profile: values.profile as string | undefined,
    project: values.project as string | undefined,
    env: values.env as string | undefined,
    timeout, retries,
    only: values.only as string[] | undefined,
    'preserve-env': values['preserve-env'] as string[] | undefined,
    mask: values.mask as boolean | undefined,
    watch: values.watch as boolean | undefined,
    'watch-grace': (values['watch-grace'] as string | undefined) ?? '10s',
    fallback: values.fallback as string | undefined,
    'fallback-max-age': (values['fallback-max-age'] as string | undefined) ?? '24h',
    mount: values.mount as string | undefined,
    'mount-format': mountFormat,
    'no-env': values['no-env'] as boolean | undefined,
    command: values.command as string | undefined,
    '--': argv.slice(sep + 1),
  };
}

/**
 * Runs `hush run` without yargs when the arguments allow it. Returns false
 * (having done nothing) when yargs should handle them; otherwise never
 * returns: hush run ends the process with the command's status, or prints
 * one error line and exits with its documented code.
 */
export async function fastRun(argv: string[]): Promise<boolean> {
  const parsed = parseRunFast(argv);
  if (!parsed) return false;
  const [{ runMain }, { CliError }] = await Promise.all([import('./run.js'), import('../output.js')]);
  try {
    await runMain(parsed, process.env);
  } catch (e) {
    const err = CliError.from(e);
    process.stderr.write(`hush: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  return true;
}
