/**
 * Hush SDK: a typed client for the Hush secrets vault.
 *
 * @example
 * ```ts
 * import { createClient, isNotFoundError } from 'hush-vault-sdk';
 *
 * const client = createClient(); // HUSH_ADDR + HUSH_TOKEN
 * const { secrets } = await client.secrets.getAll('api', 'prod');
 * ```
 *
 * @module
 */
export {
  createClient,
  DEFAULT_ADDR,
  type HushClient,
  type ClientOptions,
  type RetryOptions,
  type FallbackOptions,
  type WarningInfo,
  type GetAllOptions,
  type AuditIterateOptions,
  type AuditVerifyOptions,
  type RawRequestOptions,
  type ProjectsApi,
  type EnvsApi,
  type SecretsApi,
  type TokensApi,
  type AuditApi,
  type KeysApi,
  type BackupsApi,
  type HttpMethod,
  type JwtAuthOptions,
  type AuthApi,
  type JwtRolesApi,
  type SysApi,
} from './client.js';
export { githubActionsJwt, DEFAULT_JWT_AUDIENCE, type GithubActionsJwtOptions } from './oidc.js';
export { loadEnv, type LoadEnvOptions, type LoadEnvResult } from './load-env.js';
export { watch, type WatchOptions, type WatchChangeHandler, type WatchErrorHandler, type StopWatching } from './watch.js';
export {
  HushError,
  AuthError,
  ForbiddenError,
  NotFoundError,
  ConflictError,
  RateLimitedError,
  ValidationError,
  UnavailableError,
  TimeoutError,
  isHushError,
  isAuthError,
  isForbiddenError,
  isNotFoundError,
  isConflictError,
  isRateLimitedError,
  isValidationError,
  isUnavailableError,
  isTimeoutError,
  type HushErrorOptions,
} from './errors.js';
export {
  type WebhooksApi,
  type Webhook,
  type WebhookCreateInput,
  type WebhookCreated,
  type WebhookDelivery,
  type WebhookDeliveryQuery,
  type WebhookEventType,
} from './webhooks.js';
export { createNodeFetch, type NodeFetchOptions } from './node-fetch.js';
export { checkTokenFormat, type TokenCheck } from './token-format.js';
export type * from './types.js';
