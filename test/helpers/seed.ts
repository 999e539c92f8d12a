/** Creating projects, environments and secrets through the API: the one seeding helper of the tests. */
import assert from 'node:assert/strict';
import type { Api } from './http.js';

/** project -> env -> secrets. */
export type Layout = Record<string, Record<string, Record<string, string>>>;

/** Creates every project and env of `layout` (ones that exist already are fine) and sets their secrets. */
export async function seed(api: Api, layout: Layout): Promise<void> {
  for (const [p, envs] of Object.entries(layout)) {
    const rp = await api('POST', '/v1/projects', { name: p });
    assert.ok(rp.status === 201 || rp.status === 409, `project ${p}: ${rp.status} ${rp.text}`);
    for (const [e, secrets] of Object.entries(envs)) {
      const re = await api('POST', `/v1/projects/${p}/envs`, { name: e });
      assert.ok(re.status === 201 || re.status === 409, `env ${p}/${e}: ${re.status} ${re.text}`);
      if (Object.keys(secrets).length === 0) continue;
      const rs = await api('PATCH', `/v1/projects/${p}/envs/${e}/secrets`, { set: secrets });
      assert.equal(rs.status, 200, `secrets ${p}/${e}: ${rs.text}`);
    }
  }
}

/** A project with empty environments. */
export function seedEnvs(api: Api, project: string, ...envs: string[]): Promise<void> {
  return seed(api, { [project]: Object.fromEntries(envs.map((e) => [e, {}])) });
}
