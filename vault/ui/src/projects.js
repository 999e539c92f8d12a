import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { api, enc } from './api.js';
import { ErrorLine } from './bits.js';

/** Projects and their envs: only what the token can see (the API filters them). */
export function Projects() {
  const [list, setList] = useState(null);
  const [err, setErr] = useState(null);
  useEffect(() => {
    (async () => {
      const { projects } = await api('GET', '/projects');
      const out = [];
      for (const p of projects) {
        try {
          out.push({ name: p.name, envs: (await api('GET', `/projects/${enc(p.name)}/envs`)).envs });
        } catch (e) {
          out.push({ name: p.name, envs: [], error: e });
        }
      }
      setList(out);
    })().catch(setErr);
  }, []);
  return html`<h1>Projects</h1>
    <${ErrorLine} error=${err} />
    ${list === null && !err ? html`<p>Loading…</p>` : null} ${list && list.length === 0 ? html`<p>This token sees no project.</p>` : null}
    <ul class="cards">
      ${(list ?? []).map(
        (p) =>
          html`<li key=${p.name} class="card">
            <h2>${p.name}</h2>
            <${ErrorLine} error=${p.error} />
            <ul class="envs">
              ${p.envs.map(
                (e) =>
                  html`<li key=${e.name}>
                    <a href=${`#/p/${enc(p.name)}/e/${enc(e.name)}`}>${e.name}</a>${' '}<span class="muted">revision ${e.revision}</span>
                  </li>`,
              )}
            </ul>
          </li>`,
      )}
    </ul>`;
}
