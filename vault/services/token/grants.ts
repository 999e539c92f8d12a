import { InvalidRequestError } from '../../errors.js';
import { redactTokens } from './redact.js';

/**
 * Grants: read:P/E, list:P/E, write:P/E, admin:P, audit, backup, metrics, root.
 * P and E are a name, "*", or a prefix ending in "*".
 * Implication: root > everything; admin:P > write/read/list:P/*;
 * write > read > list on the same P/E.
 */
export type GrantKind = 'read' | 'list' | 'write' | 'admin' | 'audit' | 'backup' | 'metrics' | 'root';
/** The grants that name no project: each allows its own routes and nothing else (root allows everything). */
type SystemKind = 'audit' | 'backup' | 'metrics' | 'root';
export const SYSTEM_KINDS: readonly SystemKind[] = ['audit', 'backup', 'metrics', 'root'];
export const isSystemKind = (k: string): k is SystemKind => (SYSTEM_KINDS as readonly string[]).includes(k);
export interface Grant {
  kind: GrantKind;
  project: string;
  env: string;
}

const NAME_PATTERN = /^(\*|[a-z0-9][a-z0-9._-]{0,62}\*?)$/;
const RANK: Record<string, number> = { list: 1, read: 2, write: 3 };

export function parseGrant(text: string): Grant {
  if (typeof text !== 'string' || text.length > 200)
    throw new InvalidRequestError('invalid scope: must be a string of at most 200 characters');
  if (isSystemKind(text)) return { kind: text, project: '*', env: '*' };
  const m = /^(read|list|write|admin):([^/\s]+)(?:\/([^/\s]+))?$/.exec(text);
  // The scope is echoed back so the caller can find the typo, minus anything token-shaped.
  const shown = redactTokens(text).slice(0, 80);
  if (!m)
    throw new InvalidRequestError(
      `invalid scope "${shown}": expected read:PROJECT/ENV, list:PROJECT/ENV, write:PROJECT/ENV, admin:PROJECT, audit, backup, metrics or root`,
    );
  const kind = m[1] as GrantKind;
  const project = m[2];
  const env = m[3];
  if (kind === 'admin' && env !== undefined)
    throw new InvalidRequestError(`invalid scope "${shown}": admin takes a project only (admin:PROJECT)`);
  if (kind !== 'admin' && env === undefined) throw new InvalidRequestError(`invalid scope "${shown}": ${kind} needs PROJECT/ENV`);
  if (!NAME_PATTERN.test(project) || (env !== undefined && !NAME_PATTERN.test(env))) {
    throw new InvalidRequestError(`invalid scope "${shown}": project and env must be names, "*" or a prefix ending in "*"`);
  }
  return { kind, project, env: env ?? '*' };
}

export function formatGrant(g: Grant): string {
  if (isSystemKind(g.kind)) return g.kind;
  if (g.kind === 'admin') return `admin:${g.project}`;
  return `${g.kind}:${g.project}/${g.env}`;
}

/** Does pattern `p` match the concrete name `name`? */
export function matchName(p: string, name: string): boolean {
  if (p === '*') return true;
  if (p.endsWith('*')) return name.startsWith(p.slice(0, -1));
  return p === name;
}

/** Does pattern `outer` match every name that pattern `inner` matches? */
export function coversPattern(outer: string, inner: string): boolean {
  if (outer === '*') return true;
  if (outer.endsWith('*')) {
    const pre = outer.slice(0, -1);
    return inner.startsWith(pre) && inner !== '*';
  }
  return outer === inner;
}

/** Is everything `child` allows also allowed by `parent`? */
export function grantCovers(parent: Grant, child: Grant): boolean {
  if (parent.kind === 'root') return true;
  if (child.kind === 'root') return false;
  if (isSystemKind(child.kind)) return parent.kind === child.kind;
  if (isSystemKind(parent.kind)) return false;
  if (parent.kind === 'admin') return coversPattern(parent.project, child.project);
  if (child.kind === 'admin') return false;
  return RANK[parent.kind] >= RANK[child.kind] && coversPattern(parent.project, child.project) && coversPattern(parent.env, child.env);
}

export function grantsCover(parents: Grant[], child: Grant): boolean {
  return parents.some((p) => grantCovers(p, child));
}

/** A concrete need, checked against a token's grants. */
export type Need =
  { kind: 'read' | 'list' | 'write'; project: string; env: string } | { kind: 'admin'; project: string } | { kind: SystemKind };

const isSystemNeed = (n: Need): n is { kind: SystemKind } => isSystemKind(n.kind);

export function needLabel(n: Need): string {
  if (isSystemNeed(n)) return n.kind;
  if (n.kind === 'admin') return `admin:${n.project}`;
  return `${n.kind}:${n.project}/${n.env}`;
}

export function allows(grants: readonly Grant[], need: Need): boolean {
  for (const g of grants) {
    if (g.kind === 'root') return true;
    if (isSystemNeed(need)) {
      if (g.kind === need.kind) return true;
      continue;
    }
    if (g.kind === 'admin') {
      if (matchName(g.project, need.project)) return true;
      continue;
    }
    if (need.kind === 'admin' || isSystemKind(g.kind)) continue;
    if (RANK[g.kind] >= RANK[need.kind] && matchName(g.project, need.project) && matchName(g.env, need.env)) return true;
  }
  return false;
}

/** Can this token see that a project exists (any grant touching it)? */
export function seesProject(grants: Grant[], project: string): boolean {
  return grants.some((g) => g.kind === 'root' || ((g.kind === 'admin' || g.kind in RANK) && matchName(g.project, project)));
}

/** Can this token see that an env exists? */
export function seesEnv(grants: Grant[], project: string, env: string): boolean {
  return grants.some(
    (g) =>
      g.kind === 'root' ||
      (g.kind === 'admin' && matchName(g.project, project)) ||
      (g.kind in RANK && matchName(g.project, project) && matchName(g.env, env)),
  );
}
