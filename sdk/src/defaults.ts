/**
 * Defaults shared by the SDK and the CLI, in a module with no imports so that the CLI can read them
 * (`hush-vault-sdk/defaults`) without loading the SDK.
 */

/**
 * Address used when neither `addr` nor HUSH_ADDR is set: where `hush server` listens by default.
 *
 * @example
 * ```ts
 * if (createClient().addr === DEFAULT_ADDR) console.warn('HUSH_ADDR is not set; using the local server');
 * ```
 */
export const DEFAULT_ADDR = 'http://127.0.0.1:8420';
