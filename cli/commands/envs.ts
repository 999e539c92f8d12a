import type { CommandModule } from 'yargs';
import { checkResourceName, connect, projectOf, type GlobalArgs } from '../context.js';
import { emit, printTable, say, shortTime } from '../output.js';
import { confirmByName } from '../prompt.js';

interface NameArgs extends GlobalArgs {
  name: string;
  yes?: boolean;
}

const create: CommandModule<GlobalArgs, NameArgs> = {
  command: 'create <name>',
  describe: 'Create an environment in the project (admin:P)',
  builder: (y) =>
    y.positional('name', { type: 'string', demandOption: true, describe: 'environment name' }).example('hush envs create prod -p api', ''),
  handler: async (argv) => {
    const { client, conn } = await connect(argv);
    const project = projectOf(conn);
    const e = await client.envs.create(project, checkResourceName('environment', argv.name));
    emit(argv, { project, ...e }, () => say(`Created environment ${project}/${e.name}.`));
  },
};

const list: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'list',
  aliases: ['ls'],
  describe: 'List the environments of the project',
  handler: async (argv) => {
    const { client, conn } = await connect(argv);
    const envs = await client.envs.list(projectOf(conn));
    emit(argv, envs, () =>
      printTable(
        envs.map((e) => ({ name: e.name, revision: e.revision, created: shortTime(e.createdAt) })),
        ['name', 'revision', 'created'],
      ),
    );
  },
};

const del: CommandModule<GlobalArgs, NameArgs> = {
  command: 'delete <name>',
  aliases: ['rm'],
  describe: 'Delete an environment and its secrets (admin:P)',
  builder: (y) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'environment name' })
      .option('yes', { alias: 'y', type: 'boolean', describe: 'Do not ask for confirmation (required without a terminal)' }),
  handler: async (argv) => {
    const { client, conn } = await connect(argv);
    const project = projectOf(conn);
    await confirmByName('environment', `${project}/${argv.name}`, argv.yes);
    const r = await client.envs.delete(project, argv.name);
    emit(argv, { project, ...r }, () => say(`Deleted environment ${project}/${r.name}.`));
  },
};

export const envsCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'envs',
  aliases: ['env'],
  describe: 'Create, list and delete environments of a project (--project)',
  builder: (y) => y.command(create).command(list).command(del).demandCommand(1, 'name an envs command: create, list, delete'),
  handler: () => undefined,
};
