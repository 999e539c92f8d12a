import { InvalidNameError } from '../../errors.js';
import { redactTokens } from '../token/redact.js';

export const KEY_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const KEY_NAME_MAX = 256;
export const RESOURCE_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export function assertKeyName(name: string): void {
  if (typeof name !== 'string' || name.length > KEY_NAME_MAX || !KEY_NAME_RE.test(name)) {
    // Named, so a bulk change of many entries says which one (names are metadata; anything token-shaped is masked).
    const shown = typeof name === 'string' ? ` ${JSON.stringify(redactTokens(name).slice(0, 64))}` : '';
    throw new InvalidNameError(
      `invalid secret name${shown}: use letters, digits and "_", not starting with a digit, at most ${KEY_NAME_MAX} characters`,
    );
  }
}

export function assertResourceName(kind: 'project' | 'environment', name: string): void {
  if (typeof name !== 'string' || !RESOURCE_NAME_RE.test(name)) {
    throw new InvalidNameError(`invalid ${kind} name: use 1-63 characters a-z, 0-9, ".", "_" or "-", starting with a letter or digit`);
  }
}
