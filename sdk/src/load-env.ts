import { createClient, type ClientOptions, type HushClient } from './client.js';

/**
 * Options of {@link loadEnv}: which environment, how to merge, and either a
 * `client` or the options to create one (HUSH_ADDR / HUSH_TOKEN otherwise).
 *
 * @example
 * ```ts
 * await loadEnv({ project: 'api', env: 'prod', override: false, fallback: { path: '.hush-cache' } });
 * ```
 */
export interface LoadEnvOptions extends ClientOptions {
  /**
   * Project name.
   *
   * @example
   * ```ts
   * await loadEnv({ project: 'api', env: 'prod' });
   * ```
   */
  project: string;
  /**
   * Environment name.
   *
   * @example
   * ```ts
   * await loadEnv({ project: 'api', env: process.env.APP_ENV ?? 'dev' });
   * ```
   */
  env: string;
  /**
   * When true (the default) vault values replace variables that are already
   * set, as `hush run` does; false keeps the existing ones.
   *
   * @example
   * ```ts
   * await loadEnv({ project: 'api', env: 'dev', override: false }); // local .env wins
   * ```
   */
  override?: boolean;
  /**
   * Load only these names.
   *
   * @example
   * ```ts
   * await loadEnv({ project: 'api', env: 'prod', only: ['DATABASE_URL'] });
   * ```
   */
  only?: string[];
  /**
   * An existing client to use instead of creating one from the options.
   *
   * @example
   * ```ts
   * await loadEnv({ project: 'api', env: 'prod', client });
   * ```
   */
  client?: HushClient;
  /**
   * The object to fill (default `process.env`).
   *
   * @example
   * ```ts
   * const childEnv = { ...process.env };
   * await loadEnv({ project: 'api', env: 'prod', target: childEnv });
   * ```
   */
  target?: Record<string, string | undefined>;
}

/** What {@link loadEnv} did. Lists names only, never values. */
export interface LoadEnvResult {
  /** Names written into the target. */
  loaded: string[];
  /** Names left alone because they were already set and `override` is false. */
  skipped: string[];
  /** Revision of the environment that was loaded. */
  revision: number;
  /** True when the values came from the fallback cache. */
  fromCache: boolean;
  /** Age of the values in milliseconds (0 when fresh). */
  ageMs: number;
}

/**
 * Reads one environment and puts its values into `process.env` (or
 * `target`), for apps that prefer the SDK to `hush run`. Vault values win
 * over variables already set unless `override: false`. Call it before the
 * code that reads the variables.
 *
 * @example
 * ```ts
 * import { loadEnv } from 'hush-vault-sdk';
 *
 * await loadEnv({ project: 'api', env: 'prod' });
 * const { default: app } = await import('./app.js'); // sees process.env.DATABASE_URL
 * ```
 */
export async function loadEnv(options: LoadEnvOptions): Promise<LoadEnvResult> {
  const { project, env, override = true, only, client: given, target = process.env, ...clientOptions } = options;
  const client = given ?? createClient(clientOptions);
  const snap = await client.secrets.getAll(project, env, { only });
  const loaded: string[] = [];
  const skipped: string[] = [];
  const own = (k: string) => Object.prototype.hasOwnProperty.call(target, k);
  for (const [k, v] of Object.entries(snap.secrets)) {
    // Own properties only: "constructor" or "toString" is not already set just because Object.prototype has it.
    if (!override && own(k) && target[k] !== undefined) {
      skipped.push(k);
      continue;
    }
    // Defined, not assigned: assigning "__proto__" on an ordinary object would replace its prototype, and the variable would vanish.
    if (k === '__proto__' || (!own(k) && k in target))
      Object.defineProperty(target, k, { value: v, writable: true, enumerable: true, configurable: true });
    else target[k] = v;
    loaded.push(k);
  }
  return { loaded, skipped, revision: snap.revision, fromCache: snap.fromCache, ageMs: snap.ageMs };
}
