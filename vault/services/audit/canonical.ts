/** Canonical JSON: object keys sorted at every depth, no whitespace. Stable across engines and processes. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v ?? null);
  if (Array.isArray(v)) {
    // A frozen array of primitives cannot change: its text is kept with it
    // (the same key list is logged with every read of a cached env).
    const frozen = Object.isFrozen(v);
    if (frozen) {
      const known = frozenText.get(v);
      if (known !== undefined) return known;
    }
    // An array of primitives serialises the same either way; JSON.stringify does it in one native call.
    if (!v.every(isPrimitive)) return `[${v.map(canonicalJson).join(',')}]`;
    const text = JSON.stringify(v);
    if (frozen) frozenText.set(v, text);
    return text;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  let out = '';
  for (const k of keys) {
    const x = o[k];
    if (x === undefined) continue;
    out += (out ? ',' : '') + JSON.stringify(k) + ':' + canonicalJson(x);
  }
  return `{${out}}`;
}

const frozenText = new WeakMap<object, string>();

function isPrimitive(x: unknown): boolean {
  const t = typeof x;
  return x === null || x === undefined || t === 'string' || t === 'number' || t === 'boolean';
}
