/**
 * The child's environment: the inherited one, minus Hush's own credentials,
 * plus the vault values (which win unless preserved).
 */
import { dict } from '../../common/dict.js';

/** Removed from the child's environment whatever the flags say: the child must not inherit Hush's credentials. */
export const STRIPPED_VARS = ['HUSH_TOKEN', 'HUSH_TOKEN_FILE', 'HUSH_ROLE', 'HUSH_JWT', 'HUSH_JWT_FILE'] as const;

export interface EnvPolicy {
  /** true: every inherited variable wins over the vault; a set: only those names do; null: the vault wins. */
  preserve: true | Set<string> | null;
  /** false with --no-env: nothing from the vault goes into the environment (only into the --mount file). */
  inject: boolean;
}

export function buildChildEnv(inherited: NodeJS.ProcessEnv, secrets: Record<string, string>, policy: EnvPolicy): Record<string, string> {
  // No prototype: a secret named __proto__ is a variable like any other, not the object's prototype.
  const env = dict<string>();
  for (const [k, v] of Object.entries(inherited)) if (v !== undefined) env[k] = v;
  for (const k of STRIPPED_VARS) delete env[k];
  if (!policy.inject) return env;
  for (const [k, v] of Object.entries(secrets)) {
    const keep = k in env && (policy.preserve === true || (policy.preserve !== null && policy.preserve.has(k)));
    if (!keep) env[k] = v;
  }
  return env;
}

/** Parses --preserve-env: absent → null; bare (or "true"/"*") → all; "A,B" → those names. */
export function parsePreserve(raw: string | string[] | boolean | undefined): true | Set<string> | null {
  if (raw === undefined || raw === false) return null;
  const parts = (Array.isArray(raw) ? raw : [raw]).map(String);
  const names = new Set<string>();
  for (const p of parts) {
    if (p === '' || p === 'true' || p === '*') return true;
    for (const n of p.split(',')) if (n.trim()) names.add(n.trim());
  }
  return names.size ? names : true;
}

/** Splits a comma list flag that may also be repeated. */
export function parseList(raw: string | string[] | undefined): string[] {
  if (raw === undefined) return [];
  return (Array.isArray(raw) ? raw : [raw])
    .flatMap((s) => String(s).split(','))
    .map((s) => s.trim())
    .filter(Boolean);
}

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
