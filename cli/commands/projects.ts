import type { CommandModule } from 'yargs';
import { checkResourceName, connect, type GlobalArgs } from '../context.js';
import { emit, printTable, say, shortTime } from '../output.js';
import { confirmByName } from '../prompt.js';

interface NameArgs extends GlobalArgs {
  name: string;
  yes?: boolean;
}

const create: CommandModule<GlobalArgs, NameArgs> = {
  command: 'create <name>',
  describe: 'Create a project (admin:NAME or root)',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true, describe: 'project name' }),
  handler: async (argv) => {
    const { client } = await connect(argv);
    const p = await client.projects.create(checkResourceName('project', argv.name));
    emit(argv, p, () => say(`Created project ${p.name}.`));
  },
};

const list: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'list',
  aliases: ['ls'],
  describe: 'List the projects this token can see',
  handler: async (argv) => {
    const { client } = await connect(argv);
    const projects = await client.projects.list();
    emit(argv, projects, () =>
      printTable(
        projects.map((p) => ({ name: p.name, created: shortTime(p.createdAt) })),
        ['name', 'created'],
      ),
    );
  },
};

const del: CommandModule<GlobalArgs, NameArgs> = {
  command: 'delete <name>',
  aliases: ['rm'],
  describe: 'Delete a project with its environments and secrets (admin:P)',
  builder: (y) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'project name' })
      .option('yes', { alias: 'y', type: 'boolean', describe: 'Do not ask for confirmation (required without a terminal)' }),
  handler: async (argv) => {
    const { client } = await connect(argv);
    await confirmByName('project', argv.name, argv.yes);
    const r = await client.projects.delete(argv.name);
    emit(argv, r, () => say(`Deleted project ${r.name}.`));
  },
};

export const projectsCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'projects',
  aliases: ['project'],
  describe: 'Create, list and delete projects',
  builder: (y) => y.command(create).command(list).command(del).demandCommand(1, 'name a projects command: create, list, delete'),
  handler: () => undefined,
};
