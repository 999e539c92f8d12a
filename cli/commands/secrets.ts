import { readFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { checkVarName, connect, target, type GlobalArgs } from '../context.js';
import { CliError, EXIT, emit, note, printJson, printTable, say, shortTime, warn } from '../output.js';
import { withProgress } from '../progress.js';
import { generate, policy, stale } from './lifecycle.js';
import { chompOne, readHidden, readStdin } from '../prompt.js';
import { copy, diff, history, rollback } from './history.js';

// `env` is another name for dotenv (what other tools call it).
const FORMAT_CHOICES = ['dotenv', 'env', 'json', 'shell', 'docker', 'yaml'] as const;

/**
 * yargs hands a lone `-` argument over as an empty string; both mean stdin.
 * So does /dev/stdin (the docs suggest it), read from fd 0 directly: opening
 * /dev/stdin fails with ENXIO when stdin is a socket, as it is for a child of
 * Node or of many supervisors.
 */
const isStdin = (path: string) => path === '-' || path === '' || path === '/dev/stdin';

function readFileArg(path: string, what: string): string {
  try {
    return isStdin(path) ? readFileSync(0, 'utf8') : readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.usage);
  }
}

interface SetArgs extends GlobalArgs {
  items: string[];
  'from-file'?: string;
}

/** Where `set` takes its values from: NAME=VALUE arguments, a file, a hidden prompt, or stdin. */
async function valuesToSet(argv: SetArgs): Promise<[string, string][]> {
  const items = argv.items.map(String);
  if (argv['from-file'] !== undefined) {
    if (items.length !== 1 || items[0].includes('=')) throw new CliError('--from-file takes exactly one NAME (no =VALUE)', EXIT.usage);
    // The file's exact content, trailing newline included: certificates and keys keep their bytes.
    return [[checkVarName(items[0]), readFileArg(argv['from-file'], '--from-file')]];
  }
  if (items.every((i) => i.includes('='))) {
    const pairs = items.map((i) => {
      const at = i.indexOf('=');
      return [checkVarName(i.slice(0, at)), i.slice(at + 1)] as [string, string];
    });
    const seen = new Set<string>();
    for (const [k] of pairs) {
      if (seen.has(k)) throw new CliError(`${k} is given twice`, EXIT.usage);
      seen.add(k);
    }
    if (pairs.some(([, v]) => v !== '')) {
      warn(
        'a value given on the command line can end up in your shell history and in ps; prefer `hush ' +
          'secrets set NAME` (hidden prompt or stdin) or `--from-file FILE`',
      );
    }
    return pairs;
  }
  if (items.length !== 1)
    throw new CliError('give NAME=VALUE pairs, or one NAME whose value comes from a hidden prompt, stdin or --from-file', EXIT.usage);
  const key = checkVarName(items[0]);
  if (process.stdin.isTTY) {
    const value = await readHidden(`Value for ${key} (input hidden): `);
    if (value === '') throw new CliError(`empty value; to store an empty value use: hush secrets set ${key}=`, EXIT.usage);
    return [[key, value]];
  }
  const raw = await readStdin();
  if (raw === '') throw new CliError(`no value on stdin for ${key}; pipe it in, or use --from-file FILE`, EXIT.usage);
  // One trailing newline is what `echo` and here-strings add; use --from-file /dev/stdin to keep it.
  return [[key, chompOne(raw)]];
}

const set: CommandModule<GlobalArgs, SetArgs> = {
  command: 'set <items..>',
  describe: 'Set secrets: NAME=VALUE..., NAME --from-file F, or NAME alone (hidden prompt, or stdin when ' + 'piped)',
  builder: (y) =>
    y
      .positional('items', { type: 'string', array: true, demandOption: true, describe: 'NAME=VALUE pairs, or one NAME' })
      .option('from-file', { type: 'string', describe: 'Take the value of NAME from this file, byte for byte (- for stdin)' })
      .example('hush secrets set DATABASE_URL', 'type the value at a hidden prompt')
      .example('printf %s "$PASS" | hush secrets set DB_PASS', 'value from stdin (one trailing newline dropped)')
      .example('hush secrets set TLS_KEY --from-file key.pem', 'value from a file')
      .example('hush secrets set LOG_LEVEL=debug FEATURE_X=on', 'several at once, atomically (warns about shell history)'),
  handler: async (argv) => {
    const { client, conn } = await connect(argv);
    const { project, env } = target(conn);
    const pairs = await valuesToSet(argv);
    if (pairs.length === 1) {
      const [key, value] = pairs[0];
      const r = await client.secrets.set(project, env, key, value);
      emit(argv, { project, env, ...r }, () => say(`Set ${key} in ${project}/${env} (version ${r.version}).`));
      return;
    }
    const r = await client.secrets.bulk(project, env, { set: Object.fromEntries(pairs) });
    const out = { project, env, revision: r.revision, added: r.added, changed: r.changed, unchanged: r.unchanged };
    emit(argv, out, () =>
      say(
        `Set ${pairs.length} secrets in ${project}/${env}: ${r.added.length} added, ${r.changed.length} ` +
          `changed, ${r.unchanged.length} unchanged (revision ${r.revision}).`,
      ),
    );
  },
};

interface KeyArgs extends GlobalArgs {
  key: string;
  version?: number;
  raw?: boolean;
}

const get: CommandModule<GlobalArgs, KeyArgs> = {
  command: 'get <key>',
  describe: 'Print one value (exactly; a newline is added only on a terminal)',
  builder: (y) =>
    y
      .version(false)
      .positional('key', { type: 'string', demandOption: true })
      .option('version', { type: 'number', describe: 'An older version (see hush secrets history)' })
      .option('raw', { type: 'boolean', describe: 'The value as stored: ${...} references not resolved' })
      .example('hush secrets get DATABASE_URL -p api -e prod', '')
      .example('hush secrets get DATABASE_URL --version 3', 'an older version'),
  handler: async (argv) => {
    const { client, conn } = await connect(argv);
    const { project, env } = target(conn);
    if (argv.version !== undefined && !(Number.isInteger(argv.version) && argv.version >= 1))
      throw new CliError('--version must be a positive integer', EXIT.usage);
    const r = await client.secrets.get(project, env, checkVarName(argv.key), {
      ...(argv.version !== undefined ? { version: argv.version } : {}),
      ...(argv.raw ? { raw: true } : {}),
    });
    if (argv.json) {
      emit(argv, { project, env, ...r }, () => undefined);
      return;
    }
    process.stdout.write(r.value + (process.stdout.isTTY && !r.value.endsWith('\n') ? '\n' : ''));
  },
};

const list: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'list',
  aliases: ['ls'],
  describe: 'List secret names and versions (never values)',
  handler: async (argv) => {
    const { client, conn } = await connect(argv);
    const { project, env } = target(conn);
    const r = await client.secrets.listNames(project, env);
    emit(argv, { project, env, ...r }, () =>
      printTable(
        r.secrets.map((s) => ({ key: s.key, version: s.version, updated: shortTime(s.updatedAt) })),
        ['key', 'version', 'updated'],
        { key: 'NAME' },
      ),
    );
  },
};

const del: CommandModule<GlobalArgs, KeyArgs> = {
  command: 'delete <key>',
  aliases: ['rm'],
  describe: 'Delete a secret (its history is kept)',
  builder: (y) => y.positional('key', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { client, conn } = await connect(argv);
    const { project, env } = target(conn);
    const r = await client.secrets.delete(project, env, checkVarName(argv.key));
    emit(argv, { project, env, ...r }, () => say(`Deleted ${r.key} from ${project}/${env} (history kept: hush secrets history ${r.key}).`));
  },
};

interface ImportArgs extends GlobalArgs {
  file: string;
}

/** An import the server refused for its size, with what to do about it (one import is one request, all or nothing). */
function tooLarge(e: unknown, file: string): unknown {
  const code = (e as { code?: string })?.code;
  if (code === 'payload_too_large') {
    const limit = /limit of (\d+) bytes/.exec((e as Error).message)?.[1];
    return new CliError(
      `${file} is too large to import at once (the server takes at most ` +
        `${limit ? `${limit} bytes` : 'its --body-limit'} per request): split it into smaller files and ` +
        `import them one by one, or raise the server's --body-limit`,
      EXIT.usage,
      code,
    );
  }
  if (code === 'env_too_large') {
    return new CliError(
      `${(e as Error).message.split('\n')[0]}; nothing was imported: import fewer variables, delete ` +
        `unused ones, or raise the server's --max-env-bytes`,
      EXIT.usage,
      code,
    );
  }
  return e;
}

const importCmd: CommandModule<GlobalArgs, ImportArgs> = {
  command: 'import <file>',
  describe: 'Import a .env file (- for stdin) in one atomic change; reports added/changed/unchanged',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: '.env file, parsed with dotenv' })
      .example('hush secrets import .env.production -p api -e prod', ''),
  handler: async (argv) => {
    const { client, conn } = await connect(argv);
    const { project, env } = target(conn);
    const { parseEnvFile } = await import('../formats.js');
    const file = isStdin(argv.file) ? 'stdin' : argv.file;
    const parsed = parseEnvFile(readFileArg(argv.file, 'file'));
    const keys = Object.keys(parsed);
    if (keys.length === 0) throw new CliError(`no variables found in ${file}`, EXIT.usage);
    const bad = keys.filter((k) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k));
    if (bad.length)
      throw new CliError(
        `${file} has invalid variable names (nothing imported): ` + `${bad.slice(0, 5).join(', ')}${bad.length > 5 ? ', ...' : ''}`,
        EXIT.usage,
      );
    const r = await withProgress(`Importing ${keys.length} variables into ${project}/${env}`, () =>
      client.secrets.bulk(project, env, { set: parsed }),
    ).catch((e) => {
      throw tooLarge(e, file);
    });
    const counts = { added: r.added.length, changed: r.changed.length, unchanged: r.unchanged.length };
    emit(argv, { project, env, file, revision: r.revision, counts, added: r.added, changed: r.changed, unchanged: r.unchanged }, () =>
      say(
        `Imported ${file} into ${project}/${env}: ${counts.added} added, ${counts.changed} changed, ` +
          `${counts.unchanged} unchanged (revision ${r.revision}).`,
      ),
    );
  },
};

interface ExportArgs extends GlobalArgs {
  format?: (typeof FORMAT_CHOICES)[number];
  out?: string;
  only?: string[];
  raw?: boolean;
}

const exportCmd: CommandModule<GlobalArgs, ExportArgs> = {
  command: 'export',
  describe: 'Print all values as dotenv (default; also --format env), json, shell, docker (--env-file) or ' + 'yaml',
  builder: (y) =>
    y
      .option('format', { alias: 'f', choices: FORMAT_CHOICES, describe: 'Output format [default: dotenv; json with --json]' })
      .option('out', { alias: 'o', type: 'string', describe: 'Write to this file (mode 0600) instead of stdout' })
      .option('only', { type: 'string', array: true, describe: 'Only these names (repeat or comma-separate)' })
      .option('raw', { type: 'boolean', describe: 'Values as stored: ${...} references not resolved' })
      .example('hush secrets export --format shell > env.sh', '')
      .example('hush secrets export --format docker -o app.env && docker run --env-file app.env app', ''),
  handler: async (argv) => {
    const { client, conn } = await connect(argv);
    const { project, env } = target(conn);
    const chosen = argv.format ?? (argv.json ? 'json' : 'dotenv');
    const format = chosen === 'env' ? 'dotenv' : chosen;
    const only = argv.only
      ?.flatMap((s) => String(s).split(','))
      .map((s) => s.trim())
      .filter(Boolean);
    only?.forEach(checkVarName);
    const snap = await withProgress(`Exporting ${project}/${env}`, () =>
      client.secrets.getAll(project, env, { ...(only?.length ? { only } : {}), ...(argv.raw ? { raw: true } : {}) }),
    );
    const { formatSecrets } = await import('../formats.js');
    const text = formatSecrets(format, snap.secrets);
    if (argv.out) {
      const { writeSecretFile } = await import('../../common/files.js');
      writeSecretFile(argv.out, text);
      const count = Object.keys(snap.secrets).length;
      if (argv.json) printJson({ project, env, file: argv.out, format, count, revision: snap.revision });
      else note(`Wrote ${count} secrets from ${project}/${env} to ${argv.out} (${format}, mode 0600).`);
      return;
    }
    process.stdout.write(text);
  },
};

export const secretsCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'secrets',
  aliases: ['secret'],
  describe: 'Set, read, list, delete, import and export secrets of an environment; its history, diff, ' + 'rollback and copy',
  builder: (y) =>
    y
      .command(set)
      .command(get)
      .command(list)
      .command(del)
      .command(history)
      .command(diff)
      .command(rollback)
      .command(copy)
      .command(importCmd)
      .command(exportCmd)
      .command(generate)
      .command(policy)
      .command(stale)
      .demandCommand(
        1,
        'name a secrets command: set, get, list, delete, history, diff, rollback, copy, import, export, ' + 'generate, policy, stale',
      ),
  handler: () => undefined,
};
