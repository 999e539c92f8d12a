import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Container } from '../../container.js';
import { ForbiddenError } from '../../errors.js';
import { seesProject } from '../../services/token/grants.js';
import { bodyOf, Env, EnvParams, Project, ProjectName, ProjectParams, projectOf, typed, withErrors } from '../schemas.js';

const NameBody = Type.Object({ name: ProjectName }, { additionalProperties: false });

export function projectRoutes(base: FastifyInstance, c: Container) {
  const app = typed(base);
  app.get(
    '/v1/projects',
    {
      config: { auth: 'any' },
      schema: { summary: 'Projects this token can see', response: withErrors({ 200: Type.Object({ projects: Type.Array(Project) }) }) },
    },
    async (req) => ({ projects: await c.secrets.listProjects(req.principal!) }),
  );

  app.post(
    '/v1/projects',
    {
      config: { auth: (req) => ({ kind: 'admin', project: bodyOf(NameBody)(req).name }), action: 'project.create' },
      schema: {
        summary: 'Create a project (admin:NAME or root)',
        body: NameBody,
        response: withErrors({ 201: Project }),
      },
    },
    async (req, reply) => reply.status(201).send(await c.secrets.createProject(req.body.name, req.auditCtx)),
  );

  app.delete(
    '/v1/projects/:p',
    {
      config: { auth: (req) => ({ kind: 'admin', project: projectOf(req).p }), action: 'project.delete' },
      schema: {
        summary: 'Delete a project, its environments and secrets (admin:P)',
        params: ProjectParams,
        response: withErrors({ 200: Type.Object({ name: Type.String(), deleted: Type.Boolean() }) }),
      },
    },
    async (req) => c.secrets.deleteProject(req.params.p, req.auditCtx),
  );

  app.post(
    '/v1/projects/:p/rotate',
    {
      config: { auth: (req) => ({ kind: 'admin', project: projectOf(req).p }), action: 'key.rotate' },
      schema: {
        summary: 'New data-key version for the project; rewrap old values with {"rewrap":true} (admin:P)',
        params: ProjectParams,
        body: Type.Optional(Type.Object({ rewrap: Type.Optional(Type.Boolean()) }, { additionalProperties: false })),
        response: withErrors({ 200: Type.Object({ project: Type.String(), dekVersion: Type.Number(), rewrapped: Type.Number() }) }),
      },
    },
    async (req) => c.rotation.rotateProject(req.params.p, !!req.body?.rewrap, req.auditCtx),
  );

  app.get(
    '/v1/projects/:p/envs',
    {
      // The action names the refusal's audit event (a 403 here is audited like every other, docs/audit.md); a success is not recorded.
      config: { auth: 'any', action: 'env.list' },
      schema: {
        summary: 'Environments of a project this token can see',
        params: ProjectParams,
        response: withErrors({ 200: Type.Object({ envs: Type.Array(Env) }) }),
      },
    },
    async (req) => {
      const { p } = req.params;
      if (!seesProject(req.principal!.grants, p)) throw new ForbiddenError(`this token has no grant on project ${p}`);
      return { envs: await c.secrets.listEnvs(req.principal!, p) };
    },
  );

  app.post(
    '/v1/projects/:p/envs',
    {
      config: { auth: (req) => ({ kind: 'admin', project: projectOf(req).p }), action: 'env.create' },
      schema: { summary: 'Create an environment (admin:P)', params: ProjectParams, body: NameBody, response: withErrors({ 201: Env }) },
    },
    async (req, reply) => reply.status(201).send(await c.secrets.createEnv(req.params.p, req.body.name, req.auditCtx)),
  );

  app.delete(
    '/v1/projects/:p/envs/:e',
    {
      config: { auth: (req) => ({ kind: 'admin', project: projectOf(req).p }), action: 'env.delete' },
      schema: {
        summary: 'Delete an environment and its secrets (admin:P)',
        params: EnvParams,
        response: withErrors({ 200: Type.Object({ name: Type.String(), deleted: Type.Boolean() }) }),
      },
    },
    async (req) => c.secrets.deleteEnv(req.params.p, req.params.e, req.auditCtx),
  );
}
