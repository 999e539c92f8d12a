/** Canonical JSON: object keys sorted at every depth, no whitespace. Stable across engines and processes. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v ?? null);
  if (Array.isArray(v)) {
    // An array of primitives serialises the same either way; JSON.stringify does it in one native call.
    if (v.every(isPrimitive)) return JSON.stringify(v);
    return `[${v.map(canonicalJson).join(',')}]`;
  }
  const keys = Object.keys(v as object).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

function isPrimitive(x: unknown): boolean {
  const t = typeof x;
  return x === null || x === undefined || t === 'string' || t === 'number' || t === 'boolean';
}
