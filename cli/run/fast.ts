/**
 * Fast path for `hush run`, which is a container entrypoint: every start of
 * the container pays for hush's own startup, and loading yargs costs more
 * than everything else `hush run` does. app.ts calls fastRun() before it
 * loads yargs; this parses the common, well-formed invocations (long flags
 * with a separate or `=` value, -p/-e, booleans) and hands anything else
 * (help, a typo, an unknown flag, an odd form) back to yargs by returning
 * false, so every message and error stays yargs'. (node:util's parseArgs
 * would do, but loading it costs more than this whole parse.)
 */
import type { RunArgs } from '../commands/run.js';

const OPTIONS = {
  // Global options (cli/context.ts).
  addr: { type: 'string' },
  'token-file': { type: 'string' },
  role: { type: 'string' },
  'jwt-file': { type: 'string' },
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
  raw: { type: 'boolean' },
  command: { type: 'string' },
} as const;

const MOUNT_FORMATS = new Set(['dotenv', 'env', 'json', 'raw']);
const SHORT: Record<string, string> = { p: 'project', e: 'env' };
type Values = Record<string, string | boolean | string[] | undefined>;

/** Flags only (no positionals), every one known; null for anything else. */
function parseFlags(tokens: string[]): Values | null {
  const values: Values = {};
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    let name: string;
    let value: string | undefined;
    if (t.startsWith('--')) {
      const eq = t.indexOf('=');
      name = eq === -1 ? t.slice(2) : t.slice(2, eq);
      value = eq === -1 ? undefined : t.slice(eq + 1);
    } else if (/^-[a-z]$/.test(t) && SHORT[t[1]]) {
      name = SHORT[t[1]];
    } else {
      return null;
    }
    const spec = (OPTIONS as Record<string, { type: string; multiple?: boolean }>)[name];
    if (!spec) return null;
    if (spec.type === 'boolean') {
      if (value !== undefined) return null;
      values[name] = true;
      continue;
    }
    if (value === undefined) {
      value = tokens[++i];
      // A missing value, or one that looks like a flag, is yargs' to explain.
      if (value === undefined || value.startsWith('-')) return null;
    }
    if (spec.multiple) values[name] = [...((values[name] as string[] | undefined) ?? []), value];
    else values[name] = value;
  }
  return values;
}

/** The flags of a `hush run` invocation (argv after "run"), or null when yargs should parse it. */
export function parseRunFast(argv: string[]): RunArgs | null {
  const sep = argv.indexOf('--');
  const head = sep === -1 ? argv : argv.slice(0, sep);
  if (sep === -1) return null; // no command after --: yargs gives the usage message
  // Forms yargs reads differently from parseArgs: "-p=x", "--flag=..." on a boolean, bare --preserve-env.
  if (head.some((t) => /^-[^-]=/.test(t) || /^-[^-]{2,}/.test(t))) return null;
  const values = parseFlags(head.map((t) => (t === '--preserve-env' ? '--preserve-env=' : t)));
  if (!values) return null;
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
    role: values.role as string | undefined,
    'jwt-file': values['jwt-file'] as string | undefined,
    'ca-file': values['ca-file'] as string | undefined,
    profile: values.profile as string | undefined,
    project: values.project as string | undefined,
    env: values.env as string | undefined,
    timeout,
    retries,
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
    raw: values.raw as boolean | undefined,
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
  const [{ runMain }, { CliError, errorLine }] = await Promise.all([import('./run.js'), import('../output.js')]);
  try {
    await runMain(parsed, process.env);
  } catch (e) {
    const err = CliError.from(e);
    process.stderr.write(errorLine(err.message));
    process.exit(err.exitCode);
  }
  return true;
}
