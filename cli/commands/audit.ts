import type { CommandModule } from 'yargs';
import type { AuditEvent, AuditQuery } from 'hush-vault-sdk';
import { connect, type GlobalArgs } from '../context.js';
import { CliError, EXIT, emit, printJson, printTable, say, shortTime } from '../output.js';

interface ListArgs extends GlobalArgs {
  follow?: boolean;
  limit: number;
  from?: string;
  to?: string;
  actor?: string;
  action?: string;
  outcome?: 'ok' | 'denied' | 'error';
  interval: number;
}

function targetText(ev: AuditEvent): string {
  const where = ev.project ? (ev.env ? `${ev.project}/${ev.env}` : ev.project) : '';
  const what = Object.entries(ev.target ?? {})
    .filter(([k]) => k !== 'project' && k !== 'env')
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`)
    .join(' ');
  return [where, what].filter(Boolean).join(' ');
}

const row = (ev: AuditEvent) => ({
  seq: ev.seq,
  time: shortTime(ev.ts),
  actor: ev.actor.name,
  action: ev.action,
  target: targetText(ev),
  outcome: ev.outcome,
  ip: ev.ip,
});
const COLUMNS = ['seq', 'time', 'actor', 'action', 'target', 'outcome', 'ip'];

const line = (ev: AuditEvent) => {
  const r = row(ev);
  return `${String(r.seq).padEnd(6)}  ${r.time}  ${r.actor.padEnd(12)}  ${r.action.padEnd(18)}  ${r.outcome.padEnd(7)}  ${r.target}${r.ip ? `  ${r.ip}` : ''}`;
};

const list: CommandModule<GlobalArgs, ListArgs> = {
  command: 'list',
  aliases: ['ls'],
  describe: 'Show audit events, oldest first: the last --limit matching ones, or from --from on; --follow keeps printing new ones',
  builder: (y) =>
    y
      .option('follow', { alias: 'f', type: 'boolean', describe: 'Keep waiting for new events (JSON: one event per line)' })
      .option('limit', { alias: 'n', type: 'number', default: 100, describe: 'How many events (0: all)' })
      .option('from', { type: 'string', describe: 'Events at or after this time (ISO-8601 or epoch ms); lists forward from there' })
      .option('to', { type: 'string', describe: 'Events before this time (exclusive; ISO-8601 or epoch ms)' })
      .option('actor', { type: 'string', describe: 'Token id or name' })
      .option('action', { type: 'string', describe: 'e.g. secret.read, token.create, key.rotate' })
      .option('outcome', { choices: ['ok', 'denied', 'error'] as const })
      .option('interval', { type: 'number', default: 1000, hidden: true, describe: 'Poll interval in ms with --follow' })
      .example('hush audit list -p api -e prod --action secret.read -n 20', 'filters: --project/--env given as flags filter too')
      .example('hush audit list --outcome denied --follow', ''),
  handler: async (argv) => {
    const { client } = await connect(argv);
    if (!Number.isInteger(argv.limit) || argv.limit < 0) throw new CliError('--limit must be a non-negative integer', EXIT.usage);
    // Only explicit -p/-e filter the log: a project from .hush.json or a profile would silently hide events.
    const filter: AuditQuery = {
      ...(argv.project ? { project: argv.project } : {}),
      ...(argv.env ? { env: argv.env } : {}),
      ...(argv.from ? { from: argv.from } : {}),
      ...(argv.to ? { to: argv.to } : {}),
      ...(argv.actor ? { actor: argv.actor } : {}),
      ...(argv.action ? { action: argv.action } : {}),
      ...(argv.outcome ? { outcome: argv.outcome } : {}),
    };
    const events: AuditEvent[] = [];
    if (argv.from || argv.limit === 0) {
      for await (const ev of client.audit.iterate({ ...filter, limit: argv.limit ? Math.min(argv.limit, 1000) : 1000 })) {
        events.push(ev);
        if (argv.limit && events.length >= argv.limit) break;
      }
    } else {
      let cursor: string | undefined;
      while (events.length < argv.limit) {
        const page = await client.audit.list({
          ...filter,
          order: 'desc',
          limit: Math.min(argv.limit - events.length, 1000),
          ...(cursor ? { cursor } : {}),
        });
        events.push(...page.events);
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      events.reverse();
    }
    if (!argv.follow) {
      emit(argv, events, () => printTable(events.map(row), COLUMNS));
      return;
    }
    const print = (ev: AuditEvent) => (argv.json ? process.stdout.write(JSON.stringify(ev) + '\n') : say(line(ev)));
    events.forEach(print);
    let after = events.length ? events[events.length - 1].seq : null;
    if (after === null) {
      const head = await client.audit.list({ order: 'desc', limit: 1 });
      after = head.events[0]?.seq ?? 0;
    }
    for await (const ev of client.audit.iterate(
      { ...filter, cursor: String(after) },
      { follow: true, pollMs: Math.max(100, argv.interval) },
    ))
      print(ev);
  },
};

interface VerifyArgs extends GlobalArgs {
  'anchor-seq'?: number;
  'anchor-hash'?: string;
}

const verify: CommandModule<GlobalArgs, VerifyArgs> = {
  command: 'verify',
  describe: 'Recompute the audit hash chain: exit 0 when intact, exit 3 naming the first broken seq',
  builder: (y) =>
    y
      .option('anchor-seq', {
        type: 'number',
        describe: 'Seq of an event recorded outside the database (audit file line, earlier verify); with --anchor-hash',
      })
      .option('anchor-hash', { type: 'string', describe: "That event's hash (hex): catches a tail truncated together with the chain head" })
      .check((a) => {
        const usage = (m: string) => new CliError(m, EXIT.usage);
        if ((a['anchor-seq'] === undefined) !== (a['anchor-hash'] === undefined)) throw usage('--anchor-seq and --anchor-hash go together');
        if (a['anchor-seq'] !== undefined && !(Number.isSafeInteger(a['anchor-seq']) && a['anchor-seq'] > 0))
          throw usage('--anchor-seq must be a positive integer');
        if (a['anchor-hash'] !== undefined && !/^[0-9a-fA-F]{64}$/.test(a['anchor-hash']))
          throw usage('--anchor-hash must be 64 hex characters');
        return true;
      }),
  handler: async (argv) => {
    const { client } = await connect(argv);
    const anchor = argv['anchor-seq'] !== undefined ? { seq: argv['anchor-seq'], hash: argv['anchor-hash']! } : undefined;
    const v = await client.audit.verify({ anchor });
    if (argv.json) printJson(v);
    if (!v.ok) {
      const at = v.firstBadSeq !== null ? ` at seq ${v.firstBadSeq}` : '';
      throw new CliError(`audit chain broken${at}${v.reason ? `: ${v.reason}` : ''}`, EXIT.auditBroken, 'audit_chain_broken');
    }
    if (!argv.json) say(`Audit chain intact: ${v.checked} events checked, head seq ${v.headSeq}.`);
  },
};

export const auditCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'audit',
  describe: 'Read and verify the tamper-evident audit log (audit grant)',
  builder: (y) => y.command(list).command(verify).demandCommand(1, 'name an audit command: list, verify'),
  handler: () => undefined,
};
