/**
 * A map-like object with no prototype: keys such as "__proto__" or "constructor" (which come from request bodies, .env
 * files and stored names) are ordinary keys, never inherited properties.
 */
export function dict<T>(entries?: Record<string, T>): Record<string, T> {
  const out = Object.create(null) as Record<string, T>;
  return entries ? Object.assign(out, entries) : out;
}
