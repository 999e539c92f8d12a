// Compatibility path: the error classes and guards now live in sdk/errors.ts
// (one module keeps the SDK's import cost down). Import them from
// '../sdk/index.js' (or '../sdk/errors.js'); this file is not loaded by the SDK itself.
export {
  isHushError, isAuthError, isForbiddenError, isNotFoundError, isConflictError, isRateLimitedError, isValidationError,
  isUnavailableError, isTimeoutError,
} from '../errors.js';
