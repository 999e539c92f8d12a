/**
 * One printer for every command: human tables on a TTY or by default,
 * JSON with --json. Errors become one line on stderr and a documented
 * exit code (docs/cli.md).
 */
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
  constructor(message: string, readonly exitCode: number, readonly code?: string) {
    super(message);
    this.name = 'CliError';
  }

  /** Maps an SDK/server error code or a local error to a CLI error. */
  static from(e: unknown, fallback: number = EXIT.error): CliError {
    if (e instanceof CliError) return e;
    const err = e as { code?: string; status?: number; statusCode?: number; message?: string };
    const code = typeof err?.code === 'string' ? err.code : undefined;
    const status = err?.status ?? err?.statusCode;
    let exit: number = fallback;
    if (status === 401 || code === 'unauthorized' || code === 'token_malformed') exit = EXIT.auth;
    else if (status === 403 || code === 'forbidden') exit = EXIT.auth;
    else if (status === 404 || (code && code.endsWith('_not_found'))) exit = EXIT.notFound;
    else if (status === 409 || code === 'cas_conflict' || code === 'already_exists' || code === 'already_initialized') exit = EXIT.conflict;
    else if (status === 503 || status === 502 || status === 504 || code === 'unavailable' || code === 'timeout' || code === 'network_error') exit = EXIT.unavailable;
    else if (status === 400 || status === 413 || code === 'config_invalid' || code === 'invalid_request') exit = EXIT.usage;
    const msg = String(err?.message ?? e).split('\n')[0];
    return new CliError(msg, exit, code);
  }
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

export function printTable(rows: Record<string, unknown>[], columns: string[]): void {
  if (rows.length === 0) { process.stdout.write('(none)\n'); return; }
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : Array.isArray(v) ? v.join(',') : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd() + '\n';
  process.stdout.write(line(columns.map((c) => c.toUpperCase())));
  for (const r of rows) process.stdout.write(line(columns.map((c) => cell(r[c]))));
}
