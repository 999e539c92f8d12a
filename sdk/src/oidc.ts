// ID tokens that CI platforms hand to a running job, for `createClient({ auth })` and `hush login --oidc`.
import { AuthError } from './errors.js';

/**
 * The audience asked for when none is given: what a Hush role for CI
 * usually expects (`hush auth roles create ... --audience hush`).
 *
 * @example
 * ```ts
 * await githubActionsJwt({ audience: DEFAULT_JWT_AUDIENCE });
 * ```
 */
export const DEFAULT_JWT_AUDIENCE = 'hush';

/**
 * Options of {@link githubActionsJwt}.
 *
 * @example
 * ```ts
 * await githubActionsJwt({ audience: 'https://vault.example.com', timeoutMs: 5000 });
 * ```
 */
export interface GithubActionsJwtOptions {
  /**
   * The `aud` the token is issued for; the role must expect the same
   * (default `hush`).
   *
   * @example
   * ```ts
   * await githubActionsJwt({ audience: 'https://vault.example.com' });
   * ```
   */
  audience?: string;
  /**
   * Where ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN
   * are read (default `process.env`).
   *
   * @example
   * ```ts
   * await githubActionsJwt({ env: { ...process.env } });
   * ```
   */
  env?: Record<string, string | undefined>;
  /**
   * The fetch to use (default: the global fetch).
   *
   * @example
   * ```ts
   * await githubActionsJwt({ fetch: createNodeFetch() });
   * ```
   */
  fetch?: typeof fetch;
  /**
   * Timeout of the request in milliseconds (default 10 000).
   *
   * @example
   * ```ts
   * await githubActionsJwt({ timeoutMs: 3000 });
   * ```
   */
  timeoutMs?: number;
  /**
   * Cancels the request.
   *
   * @example
   * ```ts
   * await githubActionsJwt({ signal: AbortSignal.timeout(5000) });
   * ```
   */
  signal?: AbortSignal;
}

const NOT_IN_ACTIONS =
  'not running in GitHub Actions with `permissions: id-token: write` (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set)';

/**
 * Asks the GitHub Actions runtime for the job's OIDC ID token (a JWT), as
 * `actions/core`'s `getIDToken` does: GET
 * `$ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD` with
 * `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`. The job needs
 * `permissions: id-token: write`. Each call gets a new token (GitHub's last
 * a few minutes), so pass the function itself as `auth.jwt`. Fails with
 * AuthError `oidc_unavailable`, whose message never includes either token.
 *
 * @example
 * ```ts
 * import { createClient, githubActionsJwt } from 'hush-vault-sdk';
 *
 * const client = createClient({ auth: { role: 'deploy', jwt: () => githubActionsJwt({ audience: 'hush' }) } });
 * ```
 */
export async function githubActionsJwt(options: GithubActionsJwtOptions = {}): Promise<string> {
  const env = options.env ?? process.env;
  const url = env.ACTIONS_ID_TOKEN_REQUEST_URL?.trim();
  const bearer = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN?.trim();
  if (!url || !bearer) throw new AuthError('oidc_unavailable', NOT_IN_ACTIONS);
  const audience = options.audience ?? DEFAULT_JWT_AUDIENCE;
  if (typeof audience !== 'string' || audience === '')
    throw new AuthError('oidc_unavailable', 'the audience of the GitHub Actions ID token must be a non-empty string');
  let target: URL;
  try {
    target = new URL(`${url}&audience=${encodeURIComponent(audience)}`);
  } catch {
    throw new AuthError('oidc_unavailable', 'ACTIONS_ID_TOKEN_REQUEST_URL is not a URL');
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  const ctrl = new AbortController();
  const timer = setTimeout(
    () =>
      ctrl.abort(
        new AuthError('oidc_unavailable', `the GitHub Actions ID-token endpoint (${target.origin}) did not answer within ${timeoutMs} ms`),
      ),
    timeoutMs,
  );
  const onAbort = () => ctrl.abort(options.signal!.reason);
  if (options.signal?.aborted) {
    clearTimeout(timer);
    throw options.signal.reason;
  }
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    let res: Response;
    let text: string;
    try {
      res = await (options.fetch ?? globalThis.fetch)(target, {
        headers: { authorization: `bearer ${bearer}`, accept: 'application/json' },
        signal: ctrl.signal,
      });
      text = await res.text();
    } catch (e) {
      if (ctrl.signal.aborted) throw ctrl.signal.reason;
      const cause = (e as { cause?: { code?: unknown } })?.cause?.code;
      throw new AuthError(
        'oidc_unavailable',
        `cannot reach the GitHub Actions ID-token endpoint at ${target.origin} (${typeof cause === 'string' ? cause : (e as Error).message})`,
        { cause: e },
      );
    }
    // The body of a refusal is not shown: it is the runtime's, and need not be free of what was sent.
    if (!res.ok)
      throw new AuthError(
        'oidc_unavailable',
        `the GitHub Actions ID-token endpoint refused the request (HTTP ${res.status}); does the job have \`permissions: id-token: write\`?`,
      );
    let value: unknown;
    try {
      value = (JSON.parse(text) as { value?: unknown })?.value;
    } catch {
      value = undefined;
    }
    if (typeof value !== 'string' || value.trim() === '')
      throw new AuthError('oidc_unavailable', 'the GitHub Actions ID-token endpoint answered without a token ({"value": "..."} expected)');
    return value.trim();
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}
