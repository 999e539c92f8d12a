/**
 * One printer for every command: human tables by default, JSON with --json.
 * Errors become one line on stderr and a documented exit code (docs/cli.md).
 */
import { TOKEN_SHAPE } from 'hush-vault-sdk/token-format';

export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  auditBroken: 3,
  auth: 4,
  notFound: 5,
  conflict: 6,
  unavailable: 7,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'CliError';
  }

  /** Maps an SDK/server error code or a local error to a CLI error. */
  static from(e: unknown, fallback: number = EXIT.error): CliError {
    if (e instanceof CliError) return e;
    const err = e as { code?: string; status?: number; statusCode?: number; message?: string; cause?: unknown };
    const code = typeof err?.code === 'string' ? err.code : undefined;
    const status = err?.status ?? err?.statusCode;
    let exit: number = fallback;
    // The SDK wraps what the CLI's JWT reader threw (an unreadable --jwt-file is a usage error, as a token file is).
    if (code === 'jwt_unavailable') exit = err.cause instanceof CliError ? err.cause.exitCode : EXIT.auth;
    else if (code === 'oidc_unavailable') exit = EXIT.auth;
    else if (status === 401 || code === 'unauthorized' || code === 'token_malformed' || code === 'token_missing') exit = EXIT.auth;
    else if (status === 403 || code === 'forbidden') exit = EXIT.auth;
    else if (status === 404 || (code && code.endsWith('_not_found'))) exit = EXIT.notFound;
    else if (status === 409 || code === 'cas_conflict' || code === 'already_exists' || code === 'already_initialized') exit = EXIT.conflict;
    else if (
      status === 503 ||
      status === 502 ||
      status === 504 ||
      code === 'unavailable' ||
      code === 'timeout' ||
      code === 'network_error' ||
      code === 'certificate_untrusted'
    )
      exit = EXIT.unavailable;
    else if (
      status === 400 ||
      status === 413 ||
      status === 415 ||
      code === 'config_invalid' ||
      code === 'invalid_request' ||
      code === 'invalid_config'
    )
      exit = EXIT.usage;
    let msg = String(err?.message ?? e).split('\n')[0];
    // The SDK names its own option; on the command line the flag is the way.
    if (code === 'certificate_untrusted')
      msg = msg.replace(
        /give the CA certificate with HUSH_CA_FILE or the ca option$/,
        'give the CA certificate with --ca-file FILE or HUSH_CA_FILE',
      );
    return new CliError(msg, exit, code);
  }
}

/**
 * One error line as the terminal should show it: control characters (from
 * a name someone typed or a file someone wrote) are escaped, so an error
 * cannot move the cursor, retitle the window or hide text; anything shaped
 * like a token (a token pasted where a name belongs) is blanked.
 */
export function errorLine(message: string): string {
  const escaped = message
    .replace(new RegExp(TOKEN_SHAPE, 'gi'), '[redacted-token]')
    // eslint-disable-next-line no-control-regex -- escaping control characters is the point
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `hush: ${escaped}\n`;
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

const cell = (v: unknown): string => {
  if (v === null || v === undefined || v === '') return '-';
  if (Array.isArray(v)) return v.length ? v.join(',') : '-';
  // Names and metadata only ever reach a table, but a control character in one must not move the cursor.
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  // eslint-disable-next-line no-control-regex -- replacing control characters is the point
  return text.replace(/[\u0000-\u001f\u007f]/g, '?');
};

export function printTable(rows: Record<string, unknown>[], columns: string[], headers?: Record<string, string>): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const head = columns.map((c) => headers?.[c] ?? c.toUpperCase());
  const widths = columns.map((c, i) => Math.max(head[i].length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]))
      .join('  ')
      .trimEnd() + '\n';
  process.stdout.write(line(head));
  for (const r of rows) process.stdout.write(line(columns.map((c) => cell(r[c]))));
}

/** A two-column "field  value" listing for one object. */
export function printFields(fields: [string, unknown][]): void {
  const w = Math.max(...fields.map(([k]) => k.length));
  for (const [k, v] of fields) process.stdout.write(`${(k + ':').padEnd(w + 1)}  ${cell(v)}\n`);
}

/** A line of human output on stdout (suppressed with --json, where the caller prints JSON instead). */
export function say(line: string): void {
  process.stdout.write(line + '\n');
}

/** A note or warning for the person at the terminal; stderr, so it never mixes with output meant for pipes. */
export function warn(line: string): void {
  process.stderr.write(`hush: warning: ${line}\n`);
}

export function note(line: string): void {
  process.stderr.write(line + '\n');
}

/** Prints `json` with --json, else runs `human`. */
export function emit(argv: { json?: boolean }, json: unknown, human: () => void): void {
  if (argv.json) printJson(json);
  else human();
}

/** "2026-01-02T03:04:05.678Z" -> "2026-01-02 03:04:05Z" for tables. */
export function shortTime(iso: string | null | undefined): string | null {
  if (!iso) return null;
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
