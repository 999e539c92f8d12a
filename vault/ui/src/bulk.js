import { useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { parse } from 'dotenv';
import { api, envPath } from './api.js';
import { ErrorLine, Names } from './bits.js';

/**
 * A .env pasted in, parsed by dotenv (the parser `hush secrets import`
 * uses), compared with the env's current values, and written in one atomic
 * PATCH. The preview shows names only; the values read for it are an
 * audited read. Nothing of the paste outlives the page.
 */
export function BulkPaste({ project, env }) {
  const [plan, setPlan] = useState(null);
  const [err, setErr] = useState(null);
  const [done, setDone] = useState(null);
  const preview = async (ev) => {
    ev.preventDefault();
    setErr(null);
    setDone(null);
    const f = ev.currentTarget.elements;
    try {
      const pasted = parse(f.dotenv.value);
      // dotenv's parser stores names on a plain object: a `__proto__=` line is silently dropped. Say so.
      const skipped =
        /^[ \t]*(?:export[ \t]+)?__proto__[ \t]*[=:]/m.test(f.dotenv.value) && !Object.hasOwn(pasted, '__proto__') ? ['__proto__'] : [];
      const bad = Object.keys(pasted).filter((k) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k));
      if (bad.length) throw Object.assign(new Error(`not variable names: ${bad.join(', ')}`), { code: 'invalid_name' });
      const { secrets: current, revision } = await api('GET', `${envPath(project, env)}/secrets?raw=true`);
      const added = [],
        changed = [],
        unchanged = [];
      // Own keys only: names such as constructor or toString are names like any other, not Object.prototype's.
      for (const [k, v] of Object.entries(pasted)) {
        if (!Object.hasOwn(current, k)) added.push(k);
        else if (current[k] !== v) changed.push(k);
        else unchanged.push(k);
      }
      const removed = f.prune.checked ? Object.keys(current).filter((k) => !Object.hasOwn(pasted, k) && !skipped.includes(k)) : [];
      setPlan({
        set: Object.fromEntries([...added, ...changed].map((k) => [k, pasted[k]])),
        added,
        changed,
        removed,
        unchanged,
        skipped,
        revision,
      });
    } catch (e) {
      setErr(e);
      setPlan(null);
    }
  };
  const apply = async () => {
    setErr(null);
    try {
      const r = await api('PATCH', `${envPath(project, env)}/secrets`, { set: plan.set, delete: plan.removed });
      setDone(r);
      setPlan(null);
      document.getElementById('dotenv').value = '';
    } catch (e) {
      setErr(e);
    }
  };
  const nothing = plan && plan.added.length + plan.changed.length + plan.removed.length === 0;
  return html`<form class="bulk" onSubmit=${preview}>
      <label for="dotenv">Paste a .env file</label>
      <textarea
        id="dotenv"
        name="dotenv"
        rows="10"
        autocomplete="off"
        spellcheck="false"
        placeholder="NAME=value"
        onInput=${() => setPlan(null)}
      ></textarea>
      <label class="check"
        ><input type="checkbox" name="prune" onChange=${() => setPlan(null)} /> Also delete the names that are not in the paste</label
      >
      <button type="submit">Preview</button>
    </form>
    <${ErrorLine} error=${err} />
    ${
      plan &&
      html`<section class="preview" aria-label="Preview">
        <h2>Preview</h2>
        ${nothing ? html`<p>Nothing to change.</p>` : null}
        <${Names} title="Added" names=${plan.added} cls="added" />
        <${Names} title="Changed" names=${plan.changed} cls="changed" />
        <${Names} title="Removed" names=${plan.removed} cls="removed" />
        <${Names} title="Not importable from a paste (set it with Add)" names=${plan.skipped} cls="removed" />
        <p class="muted">${plan.unchanged.length} unchanged</p>
        ${!nothing && html`<button type="button" onClick=${apply}>Apply</button>`}
      </section>`
    }
    ${
      done &&
      html`<p role="status">
        Applied: revision ${done.revision} (${done.added.length} added, ${done.changed.length} changed, ${done.deleted.length} deleted).
      </p>`
    }`;
}
