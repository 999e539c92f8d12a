import type { CommandModule } from 'yargs';
import { checkResourceName, checkVarName, connect, target, type GlobalArgs } from '../context.js';
import { CliError, EXIT, emit, printTable, say, shortTime } from '../output.js';

/** "PROJECT/ENV" as given on the command line. */
function envArg(text: string, what: string): { project: string; env: string } {
  const parts = String(text).split('/');
  if (parts.length !== 2)
    throw new CliError(`${what} must be PROJECT/ENV, e.g. api/staging (got "${String(text).slice(0, 80)}")`, EXIT.usage);
  return { project: checkResourceName('project', parts[0]), env: checkResourceName('environment', parts[1]) };
}

function revisionArg(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0))
    throw new CliError(`--${flag} must be a revision number (0 or more; see hush secrets history)`, EXIT.usage);
  return v;
}

const list = (names: string[]) => (names.length ? names.join(', ') : '-');

interface HistoryArgs extends GlobalArgs {
  key?: string;
  limit?: number;
  before?: number;
}

export const history: CommandModule<GlobalArgs, HistoryArgs> = {
  command: 'history [key]',
  describe: "Revisions of the environment, newest first: who changed which names (or one secret's versions " + 'with KEY). No values.',
  builder: (y) =>
    y
      .positional('key', { type: 'string', describe: "Only this secret's versions" })
      .option('limit', { type: 'number', describe: 'At most this many revisions [default 50]' })
      .option('before', { type: 'number', describe: 'Only revisions below this one (the next page)' })
      .example('hush secrets history -p api -e prod', 'what changed, revision by revision')
      .example('hush secrets history DATABASE_URL', 'the versions of one secret'),
  handler: async (argv) => {
    const { client, conn } = await connect(argv);
    const { project, env } = target(conn);
    if (argv.key !== undefined) {
      const r = await client.secrets.versions(project, env, checkVarName(argv.key));
      emit(argv, { project, env, ...r }, () =>
        printTable(
          r.versions.map((v) => ({
            version: v.version,
            created: shortTime(v.createdAt),
            by: v.createdByName ?? v.createdBy,
            state: v.deleted ? 'deleted' : v.version === r.current ? 'current' : '',
          })),
          ['version', 'created', 'by', 'state'],
        ),
      );
      return;
    }
    if (argv.limit !== undefined && !(Number.isInteger(argv.limit) && argv.limit >= 1 && argv.limit <= 1000))
      throw new CliError('--limit must be a whole number from 1 to 1000', EXIT.usage);
    const r = await client.secrets.history(project, env, { limit: argv.limit, before: revisionArg(argv.before, 'before') });
    emit(argv, { project, env, ...r }, () => {
      if (r.revisions.length === 0) {
        say(`${project}/${env} has no changes yet (revision ${r.revision}).`);
        return;
      }
      const names = (action: string, x: (typeof r.revisions)[number]) => x.changes.filter((c) => c.action === action).map((c) => c.key);
      printTable(
        r.revisions.map((x) => ({
          revision: x.revision,
          created: shortTime(x.createdAt),
          by: x.actors.map((a) => a.name).join(', '),
          set: list(names('set', x)),
          deleted: list(names('deleted', x)),
        })),
        ['revision', 'created', 'by', 'set', 'deleted'],
      );
      if (r.more) say(`(older revisions: --before ${r.revisions[r.revisions.length - 1].revision})`);
    });
  },
};

interface DiffArgs extends GlobalArgs {
  from?: string;
  to?: string;
  'from-revision'?: number;
  'to-revision'?: number;
  values?: boolean;
}

export const diff: CommandModule<GlobalArgs, DiffArgs> = {
  command: 'diff [from] [to]',
  describe:
    'What differs between two revisions (--from-revision N [--to-revision M]) or two environments ' +
    '(SRC DST). Names only; --values shows values (audited as a read).',
  builder: (y) =>
    y
      .positional('from', { type: 'string', describe: 'PROJECT/ENV to compare from' })
      .positional('to', { type: 'string', describe: 'PROJECT/ENV to compare to' })
      .option('from-revision', { type: 'number', describe: 'Revision of the environment to compare from' })
      .option('to-revision', { type: 'number', describe: 'Revision to compare to [default: the current one]' })
      .option('values', { type: 'boolean', describe: 'Show the values that differ (needs read; recorded in the audit log as a read)' })
      .example('hush secrets diff api/staging api/prod', 'which names differ between two environments')
      .example('hush secrets diff --from-revision 12 -p api -e prod', 'what changed since revision 12'),
  handler: async (argv) => {
    const { client, conn } = await connect(argv);
    const values = argv.values === true;
    let r;
    if (argv.from !== undefined || argv.to !== undefined) {
      if (argv.from === undefined || argv.to === undefined)
        throw new CliError('give two environments (hush secrets diff api/staging api/prod), or --from-revision N', EXIT.usage);
      if (argv['from-revision'] !== undefined || argv['to-revision'] !== undefined)
        throw new CliError('give either two environments or --from-revision/--to-revision, not both', EXIT.usage);
      const a = envArg(argv.from, 'the first environment');
      const b = envArg(argv.to, 'the second environment');
      r = await client.secrets.diff(a.project, a.env, { other: b, values });
    } else {
      const fromRevision = revisionArg(argv['from-revision'], 'from-revision');
      if (fromRevision === undefined)
        throw new CliError(
          'give --from-revision N (and optionally --to-revision M), or two environments: hush secrets diff ' + 'api/staging api/prod',
          EXIT.usage,
        );
      const { project, env } = target(conn);
      r = await client.secrets.diff(project, env, { fromRevision, toRevision: revisionArg(argv['to-revision'], 'to-revision'), values });
    }
    const d = r;
    emit(argv, d, () => {
      const side = (s: typeof d.from) => `${s.project}/${s.env}@${s.revision}`;
      say(
        `${side(d.from)} -> ${side(d.to)}: ${d.added.length} added, ${d.removed.length} removed, ` +
          `${d.changed.length} changed, ${d.unchanged} the same`,
      );
      const rows = [
        ...d.added.map((k) => ({ change: '+', name: k, ...(values ? { from: '', to: d.values?.[k]?.to ?? '' } : {}) })),
        ...d.removed.map((k) => ({ change: '-', name: k, ...(values ? { from: d.values?.[k]?.from ?? '', to: '' } : {}) })),
        ...d.changed.map((k) => ({
          change: '~',
          name: k,
          ...(values ? { from: d.values?.[k]?.from ?? '', to: d.values?.[k]?.to ?? '' } : {}),
        })),
      ];
      if (rows.length) printTable(rows, values ? ['change', 'name', 'from', 'to'] : ['change', 'name'], { change: ' ' });
    });
  },
};

interface RollbackArgs extends GlobalArgs {
  'to-revision'?: number;
}

export const rollback: CommandModule<GlobalArgs, RollbackArgs> = {
  command: 'rollback',
  describe: "Write a new revision whose values equal an earlier revision's (audited; history keeps " + 'everything)',
  builder: (y) =>
    y
      .option('to-revision', { type: 'number', describe: 'The revision to go back to (see hush secrets history)' })
      .example('hush secrets rollback --to-revision 12 -p api -e prod', ''),
  handler: async (argv) => {
    const to = revisionArg(argv['to-revision'], 'to-revision');
    if (to === undefined) throw new CliError('give --to-revision N (hush secrets history lists the revisions)', EXIT.usage);
    const { client, conn } = await connect(argv);
    const { project, env } = target(conn);
    const r = await client.secrets.rollback(project, env, to);
    emit(argv, { project, env, ...r }, () => {
      if (r.added.length + r.changed.length + r.deleted.length === 0)
        say(`${project}/${env} already holds the values of revision ${to}; nothing written (revision ` + `${r.revision}).`);
      else
        say(
          `Rolled ${project}/${env} back to the values of revision ${to} as revision ${r.revision}: ` +
            `restored ${list(r.added)}; changed ${list(r.changed)}; deleted ${list(r.deleted)}.`,
        );
    });
  },
};

interface CopyArgs extends GlobalArgs {
  from: string;
  to: string;
  only?: string[];
}

export const copy: CommandModule<GlobalArgs, CopyArgs> = {
  command: 'copy <from> <to>',
  aliases: ['promote'],
  describe: 'Copy values from one environment to another (all, or --only names); names only in the target ' + 'stay',
  builder: (y) =>
    y
      .positional('from', { type: 'string', demandOption: true, describe: 'PROJECT/ENV to copy from' })
      .positional('to', { type: 'string', demandOption: true, describe: 'PROJECT/ENV to copy into' })
      .option('only', { type: 'string', array: true, describe: 'Only these names (repeat or comma-separate)' })
      .example('hush secrets copy api/staging api/prod --only FEATURE_X,LOG_LEVEL', ''),
  handler: async (argv) => {
    const from = envArg(argv.from, 'the source');
    const to = envArg(argv.to, 'the target');
    const only = argv.only
      ?.flatMap((s) => String(s).split(','))
      .map((s) => s.trim())
      .filter(Boolean);
    only?.forEach(checkVarName);
    if (argv.only !== undefined && !only?.length) throw new CliError('--only needs at least one name', EXIT.usage);
    const { client } = await connect(argv);
    const r = await client.secrets.copy(from, to, only ? { only } : {});
    emit(argv, { to: { project: to.project, env: to.env }, ...r }, () =>
      say(
        `Copied from ${from.project}/${from.env} (revision ${r.from.revision}) to ` +
          `${to.project}/${to.env}: ${r.added.length} added, ${r.changed.length} changed, ` +
          `${r.unchanged.length} unchanged (revision ${r.revision}).`,
      ),
    );
  },
};
