import type { Argv, CommandModule } from 'yargs';
import type { Webhook, WebhookEventType } from 'hush-vault-sdk';
import { connect, type GlobalArgs } from '../context.js';
import { CliError, EXIT, emit, printFields, printTable, say, shortTime } from '../output.js';

const EVENTS: WebhookEventType[] = [
  'secret.changed',
  'secret.rotation_due',
  'token.created',
  'token.revoked',
  'auth.fail_burst',
  'root.used',
  'audit.verify_failed',
  'backup.failed',
];
const usage = (msg: string) => new CliError(msg, EXIT.usage);

interface CreateArgs extends GlobalArgs {
  url: string;
  events: string[];
  project?: string;
  description?: string;
}
interface IdArgs extends GlobalArgs {
  id: string;
}
interface DeliveriesArgs extends IdArgs {
  status?: 'pending' | 'delivered' | 'failed';
  limit?: number;
  before?: string;
}
interface RedeliverArgs extends IdArgs {
  delivery: number;
}

function showWebhook(w: Webhook): void {
  printFields([
    ['id', w.id],
    ['project', w.project ?? '(whole vault)'],
    ['url', w.url],
    ['events', w.events.join(' ')],
    ['description', w.description ?? ''],
    ['created', `${w.createdAt} by ${w.createdBy}`],
  ]);
}

const create: CommandModule<GlobalArgs, CreateArgs> = {
  command: 'create',
  describe: 'Create a webhook; prints its signing secret once (root, or admin of --project)',
  builder: (y) =>
    y
      .option('url', {
        type: 'string',
        demandOption: true,
        describe: 'Receiver URL, https:// (http:// only on a server with --allow-private-webhooks)',
      })
      .option('events', {
        type: 'string',
        array: true,
        demandOption: true,
        describe: `Event types, comma-separated or repeated: ${EVENTS.join(', ')}`,
      })
      .option('project', {
        alias: 'p',
        type: 'string',
        describe: "Only this project's events (admin:PROJECT); absent: the whole vault (root)",
      })
      .option('description', { type: 'string', describe: 'A note for the operators' })
      .example(
        'hush webhooks create --url https://hooks.example.com/hush --events secret.changed,secret.rotation_due --project api',
        "a project's changes",
      )
      .example(
        'hush webhooks create --url https://alerts.example.com/hush --events auth.fail_burst,root.used,audit.verify_failed,backup.failed',
        'security alerts (root)',
      ),
  handler: async (argv) => {
    const events = (argv.events ?? [])
      .flatMap((e) => String(e).split(','))
      .map((e) => e.trim())
      .filter(Boolean);
    if (!events.length) throw usage('give at least one event type with --events');
    const unknown = events.find((e) => !(EVENTS as string[]).includes(e));
    if (unknown) throw usage(`unknown event type "${unknown.slice(0, 40)}": use ${EVENTS.join(', ')}`);
    const { client } = await connect(argv);
    const r = await client.webhooks.create({
      url: argv.url,
      events: events as WebhookEventType[],
      ...(argv.project ? { project: argv.project } : {}),
      ...(argv.description ? { description: argv.description } : {}),
    });
    emit(argv, r, () => {
      say(`Created webhook ${r.webhook.id}.`);
      showWebhook(r.webhook);
      say('\nSigning secret (shown once; the receiver checks the Hush-Signature header with it, see docs/webhooks.md):\n');
      process.stdout.write(`  ${r.secret}\n`);
    });
  },
};

const list: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'list',
  aliases: ['ls'],
  describe: 'List the webhooks you may manage',
  handler: async (argv) => {
    const { client } = await connect(argv);
    const hooks = await client.webhooks.list();
    emit(argv, hooks, () =>
      printTable(
        hooks.map((w) => ({
          id: w.id,
          project: w.project ?? '*',
          url: w.url,
          events: w.events.join(' '),
          created: shortTime(w.createdAt),
        })),
        ['id', 'project', 'url', 'events', 'created'],
      ),
    );
  },
};

const idArg = (y: Argv<GlobalArgs>) =>
  y.positional('id', { type: 'string', demandOption: true, describe: 'webhook id (wh_…)' }) as Argv<IdArgs>;

const get: CommandModule<GlobalArgs, IdArgs> = {
  command: 'get <id>',
  aliases: ['show'],
  describe: 'Show one webhook',
  builder: idArg,
  handler: async (argv) => {
    const { client } = await connect(argv);
    const w = await client.webhooks.get(argv.id);
    emit(argv, w, () => showWebhook(w));
  },
};

const del: CommandModule<GlobalArgs, IdArgs> = {
  command: 'delete <id>',
  aliases: ['rm'],
  describe: 'Delete a webhook and its delivery log',
  builder: idArg,
  handler: async (argv) => {
    const { client } = await connect(argv);
    const r = await client.webhooks.delete(argv.id);
    emit(argv, r, () => say(`Deleted webhook ${r.id}.`));
  },
};

const deliveries: CommandModule<GlobalArgs, DeliveriesArgs> = {
  command: 'deliveries <id>',
  describe: 'The delivery log of a webhook, newest first',
  builder: (y) =>
    idArg(y)
      .option('status', { choices: ['pending', 'delivered', 'failed'] as const, describe: 'Only deliveries in this state' })
      .option('limit', { type: 'number', default: 50, describe: 'At most this many (1-500)' })
      .option('before', { type: 'string', describe: 'The next page: the cursor printed after a full page' }),
  handler: async (argv) => {
    if (!Number.isInteger(argv.limit) || argv.limit! < 1 || argv.limit! > 500) throw usage('--limit must be a whole number from 1 to 500');
    const { client } = await connect(argv);
    const r = await client.webhooks.deliveries(argv.id, { status: argv.status, limit: argv.limit, before: argv.before });
    emit(argv, r, () => {
      printTable(
        r.deliveries.map((d) => ({
          id: String(d.id),
          event: d.eventType,
          eventId: d.eventId,
          status: d.status,
          attempts: String(d.attempts),
          last: d.lastStatus !== null ? String(d.lastStatus) : d.lastError ? d.lastError.slice(0, 60) : '-',
          when: shortTime(d.deliveredAt ?? d.lastAttemptAt ?? d.createdAt ?? ''),
          next: d.nextAttemptAt ? shortTime(d.nextAttemptAt) : '',
        })),
        ['id', 'event', 'eventId', 'status', 'attempts', 'last', 'when', 'next'],
      );
      if (r.nextCursor) say(`more: --before ${r.nextCursor}`);
    });
  },
};

const redeliver: CommandModule<GlobalArgs, RedeliverArgs> = {
  command: 'redeliver <id> <delivery>',
  describe: 'Send a delivery again now (same event id)',
  builder: (y) =>
    idArg(y).positional('delivery', { type: 'number', demandOption: true, describe: 'delivery id (from hush webhooks deliveries)' }),
  handler: async (argv) => {
    if (!Number.isInteger(argv.delivery) || argv.delivery < 1)
      throw usage('the delivery id is a whole number (see hush webhooks deliveries)');
    const { client } = await connect(argv);
    const d = await client.webhooks.redeliver(argv.id, argv.delivery);
    emit(argv, d, () => say(`Delivery ${d.id} (${d.eventType} ${d.eventId}) queued again.`));
  },
};

const test: CommandModule<GlobalArgs, IdArgs> = {
  command: 'test <id>',
  describe: 'Send a webhook.test event to this webhook',
  builder: idArg,
  handler: async (argv) => {
    const { client } = await connect(argv);
    const r = await client.webhooks.test(argv.id);
    emit(argv, r, () => say(`Queued test event ${r.eventId}; see hush webhooks deliveries ${argv.id}.`));
  },
};

export const webhooksCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'webhooks',
  describe: 'Signed event notifications: create, list, get, delete, deliveries, redeliver, test (docs/webhooks.md)',
  builder: (y) =>
    y
      .command(create)
      .command(list)
      .command(get)
      .command(del)
      .command(deliveries)
      .command(redeliver)
      .command(test)
      .demandCommand(1, 'name a webhooks command: create, list, get, delete, deliveries, redeliver, test'),
  handler: () => undefined,
};
