import {
  InvalidReferenceError,
  ReferenceCycleError,
  ReferenceForbiddenError,
  ReferenceNotFoundError,
  ReferenceTooDeepError,
  ReferenceTooLargeError,
} from '../../errors.js';
import { KEY_NAME_MAX, KEY_NAME_RE, RESOURCE_NAME_RE } from './names.js';
import { dict } from '../../../common/dict.js';

/**
 * Secret references (docs/lifecycle.md): `${KEY}` (same env), `${env.KEY}`
 * (same project), `${project.env.KEY}`; `$${` is a literal `${`. Key names
 * hold no dot, so the last segment is the key; one segment before it is an
 * env; two or more are a project (the first) and an env (the rest, which
 * may hold dots).
 */
export const MAX_REFERENCE_DEPTH = 8;
/**
 * Resolved text is bounded: a value that repeats a reference many times,
 * whose target repeats one too, would otherwise grow exponentially. One
 * resolved value may hold at most this many characters, and one read may
 * add at most READ_GROWTH_MAX characters by resolving.
 */
export const RESOLVED_VALUE_MAX = 1024 * 1024;
export const READ_GROWTH_MAX = 16 * 1024 * 1024;

export interface Ref {
  text: string;
  project: string | null;
  env: string | null;
  key: string;
}
type Part = string | Ref;

const hasSyntax = (v: string) => v.includes('${');

function parseInner(inner: string): Omit<Ref, 'text'> | null {
  const segs = inner.split('.');
  const key = segs.pop()!;
  if (key.length > KEY_NAME_MAX || !KEY_NAME_RE.test(key)) return null;
  if (segs.length === 0) return { project: null, env: null, key };
  if (segs.length === 1) return RESOURCE_NAME_RE.test(segs[0]) ? { project: null, env: segs[0], key } : null;
  const [project, ...rest] = segs;
  const env = rest.join('.');
  return RESOURCE_NAME_RE.test(project) && RESOURCE_NAME_RE.test(env) ? { project, env, key } : null;
}

/**
 * Splits a value into literal text and references. `strict`: a `${` that
 * does not start a well-formed reference throws (writes); otherwise it stays
 * literal text (values stored before references existed).
 */
export function parseValue(value: string, strict: boolean, where = 'the value'): Part[] {
  const parts: Part[] = [];
  let text = '';
  let i = 0;
  while (i < value.length) {
    const at = value.indexOf('$', i);
    if (at < 0) {
      text += value.slice(i);
      break;
    }
    text += value.slice(i, at);
    if (value.startsWith('$${', at)) {
      text += '${';
      i = at + 3;
      continue;
    }
    if (!value.startsWith('${', at)) {
      text += '$';
      i = at + 1;
      continue;
    }
    const end = value.indexOf('}', at + 2);
    const ref = end < 0 ? null : parseInner(value.slice(at + 2, end));
    if (!ref) {
      if (strict) {
        const shown = end < 0 || end - at > 80 ? '${' : value.slice(at, end + 1);
        throw new InvalidReferenceError(
          `${where} holds ${JSON.stringify(shown)}, which is not a reference: write \${KEY}, \${env.KEY} ` +
            `or \${project.env.KEY}, or $\${ for a literal "\${"`,
        );
      }
      text += '${';
      i = at + 2;
      continue;
    }
    if (text) parts.push(text);
    text = '';
    parts.push({ text: value.slice(at, end + 1), ...ref });
    i = end + 1;
  }
  if (text) parts.push(text);
  return parts;
}

/** Checks the reference syntax of a value about to be written (throws invalid_reference). */
export function assertReferenceSyntax(name: string, value: string): void {
  if (hasSyntax(value)) parseValue(value, true, `the value of ${name}`);
}

export interface RefSource {
  /** Raw (stored) values of an env; null when the project or env does not exist. */
  envValues(project: string, env: string): Promise<Readonly<Record<string, string>> | null>;
  /** May the reader read this env? */
  canRead(project: string, env: string): boolean;
}

/**
 * Resolves the references of values read from one env. 'read': a reference
 * that cannot be read or does not exist fails the whole read. 'check' (a
 * write): such references are skipped (they may be valid for the reader,
 * and the writer must learn nothing about envs it cannot read); cycles and
 * chains deeper than MAX_REFERENCE_DEPTH throw in both modes.
 */
export function referenceResolver(src: RefSource, mode: 'read' | 'check') {
  /** Resolved value and its height (the longest chain of references below it) by "project/env/KEY". */
  const done = new Map<string, { value: string; height: number }>();
  /** Characters added by resolving so far (READ_GROWTH_MAX). */
  let growth = 0;
  /** The envs a value was read from, as "project/env". */
  const envsRead = new Set<string>();
  const loaded = new Map<string, Promise<Readonly<Record<string, string>> | null>>();
  const load = (p: string, e: string) => {
    const id = `${p}/${e}`;
    let v = loaded.get(id);
    if (!v) loaded.set(id, (v = src.envValues(p, e)));
    return v;
  };

  async function resolve(p: string, e: string, key: string, value: string, chain: string[]): Promise<{ value: string; height: number }> {
    if (!hasSyntax(value)) return { value, height: 0 };
    const from = `${p}/${e}/${key}`;
    let out = '';
    let height = 0;
    for (const part of parseValue(value, false)) {
      if (typeof part === 'string') {
        out += part;
        continue;
      }
      const tp = part.project ?? p;
      const te = part.env ?? e;
      const id = `${tp}/${te}/${part.key}`;
      const hops = chain.length; // this reference is hop number `hops` from the value read
      if (hops > MAX_REFERENCE_DEPTH) {
        throw new ReferenceTooDeepError(
          `reference ${part.text} in ${from} is more than ${MAX_REFERENCE_DEPTH} references deep ` + `(${[...chain, id].join(' -> ')})`,
        );
      }
      if (chain.includes(id)) {
        throw new ReferenceCycleError(
          `reference ${part.text} in ${from} makes a cycle: ` + `${[...chain.slice(chain.indexOf(id)), id].join(' -> ')}`,
        );
      }
      if (!src.canRead(tp, te)) {
        if (mode === 'check') {
          out += part.text;
          continue;
        }
        throw new ReferenceForbiddenError(
          `reference ${part.text} in ${from} names ${tp}/${te}, which this token may not read (it needs ` +
            `read:${tp}/${te}; or read with ?raw=1 / --raw)`,
        );
      }
      let target = done.get(id);
      if (!target) {
        const vals = await load(tp, te);
        const raw = vals && Object.prototype.hasOwnProperty.call(vals, part.key) ? vals[part.key] : undefined;
        if (raw === undefined) {
          if (mode === 'check') {
            out += part.text;
            continue;
          }
          throw new ReferenceNotFoundError(
            `reference ${part.text} in ${from}: ` + `${vals ? `no secret ${part.key} in ${tp}/${te}` : `no environment ${tp}/${te}`}`,
          );
        }
        envsRead.add(`${tp}/${te}`);
        target = await resolve(tp, te, part.key, raw, [...chain, id]);
        done.set(id, target);
      } else {
        envsRead.add(`${tp}/${te}`);
      }
      if (hops + target.height > MAX_REFERENCE_DEPTH) {
        throw new ReferenceTooDeepError(`reference ${part.text} in ${from} starts a chain of more than ${MAX_REFERENCE_DEPTH} references`);
      }
      height = Math.max(height, target.height + 1);
      out += target.value;
      growth += target.value.length;
      if (out.length > RESOLVED_VALUE_MAX || growth > READ_GROWTH_MAX) {
        throw new ReferenceTooLargeError(
          `resolving the references in ${from} makes ` +
            `${out.length > RESOLVED_VALUE_MAX ? `a value of more than ${RESOLVED_VALUE_MAX}` : `more than ${READ_GROWTH_MAX} added`} ` +
            `characters; reference fewer or smaller values`,
        );
      }
    }
    return { value: out, height };
  }

  return {
    envsRead,
    /** Resolves `values` (a subset of env p/e, or all of it). */
    async resolveAll(p: string, e: string, values: Readonly<Record<string, string>>): Promise<Record<string, string>> {
      const out = dict<string>();
      for (const k of Object.keys(values)) {
        const id = `${p}/${e}/${k}`;
        const r = done.get(id) ?? (await resolve(p, e, k, values[k], [id]));
        done.set(id, r);
        out[k] = r.value;
      }
      return out;
    },
    /** One value that is not necessarily the current one of its key (an older version). */
    async resolveOne(p: string, e: string, key: string, value: string): Promise<string> {
      return (await resolve(p, e, key, value, [`${p}/${e}/${key}`])).value;
    },
  };
}

/** Does any of these values need resolving (a reference or an escape)? Memoised for the frozen objects of the value cache. */
const scanned = new WeakMap<object, boolean>();
export function needsResolving(values: Readonly<Record<string, string>>): boolean {
  const frozen = Object.isFrozen(values);
  if (frozen) {
    const known = scanned.get(values);
    if (known !== undefined) return known;
  }
  let any = false;
  for (const k in values)
    if (hasSyntax(values[k])) {
      any = true;
      break;
    }
  if (frozen) scanned.set(values, any);
  return any;
}
