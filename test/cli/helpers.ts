import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runHush, type RunResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/server.js';

export interface Cli {
  /** Private HOME (and XDG_CONFIG_HOME) for this CLI user, so profiles never leak between tests. */
  home: string;
  /** Where `hush login` writes profiles. */
  configFile: string;
  env: NodeJS.ProcessEnv;
  /** Runs the built `hush` with this user's environment (plus `env`). */
  run(args: string[], opts?: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string }): Promise<RunResult>;
  /** Runs and asserts exit 0, returning stdout parsed as JSON. */
  json<T = any>(args: string[], opts?: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string }): Promise<T>;
}

export function cli(baseEnv: NodeJS.ProcessEnv = {}): Cli {
  const home = tempDir('hush-cli-home-');
  const xdg = join(home, '.config');
  const env = { HOME: home, XDG_CONFIG_HOME: xdg, ...baseEnv };
  const run: Cli['run'] = (args, opts = {}) => runHush(args, { env: { ...env, ...opts.env }, input: opts.input, cwd: opts.cwd ?? home });
  return {
    home,
    configFile: join(xdg, 'hush', 'config.json'),
    env,
    run,
    async json(args, opts) {
      const r = await run([...args, '--json'], opts);
      if (r.code !== 0) throw new Error(`hush ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return JSON.parse(r.stdout);
    },
  };
}

/** A CLI user who reaches `url` with `token` through HUSH_ADDR/HUSH_TOKEN (and a default target). */
export function rootCli(url: string, token: string, extra: NodeJS.ProcessEnv = {}): Cli {
  return cli({ HUSH_ADDR: url, HUSH_TOKEN: token, ...extra });
}

export { closedPort } from '../helpers/http.js';

export function writeFile(dir: string, name: string, content: string, mode = 0o600): string {
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  writeFileSync(p, content, { mode });
  return p;
}

/** The only lines a failing command may print: one `hush: ...` line on stderr. */
export function oneErrorLine(stderr: string): string {
  const lines = stderr.split('\n').filter(Boolean);
  if (lines.length !== 1 || !lines[0].startsWith('hush: ')) throw new Error(`expected one "hush: ..." line on stderr, got:\n${stderr}`);
  return lines[0];
}

/**
 * Values that break naive exporters: line breaks, quotes of every kind,
 * `$` expansions, backslash sequences, comment characters, padding.
 */
export const TRICKY: Record<string, string> = {
  PLAIN: 'hello',
  EMPTY: '',
  NEWLINES: 'line1\nline2\n',
  CRLF: 'a\r\nb',
  DQUOTE: 'say "hi"',
  SQUOTE: "it's",
  BOTH_QUOTES: `it's "quoted"`,
  DOLLAR: '$HOME ${USER} $(id) `id` $$',
  BACKSLASH_N: 'C:\\new\\table\\n',
  TRAILING_BS: 'ends with \\',
  HASH: 'a # not a comment',
  PADDED: '  padded  ',
  UNICODE: 'päss wörd ✓ 🔑',
  EQUALS: 'a=b=c',
  JSONISH: '{"a":[1,"x"]}',
  PEM: '-----BEGIN KEY-----\nMIIB\\nAQ==\n-----END KEY-----\n',
  QUOTES_AND_LINES: 'line1\n\'single\' "double" $x',
};
