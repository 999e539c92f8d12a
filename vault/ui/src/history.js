import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { api, envPath } from './api.js';
import { ErrorLine, Names, when } from './bits.js';

/** The values behind a diff, fetched on request (an audited read): name, before, after. */
function DiffValues({ query, fromLabel, toLabel }) {
  const [vals, setVals] = useState(null);
  const [err, setErr] = useState(null);
  const show = async () => {
    setErr(null);
    try {
      setVals((await api('GET', `${query}&values=true`)).values ?? {});
    } catch (e) {
      setErr(e);
    }
  };
  if (!vals)
    return html`<button type="button" class="secondary" onClick=${show}>Show the values (an audited read)</button
      ><${ErrorLine} error=${err} />`;
  const names = Object.keys(vals);
  return html`<table class="grid values">
    <caption>
      Values that differ
    </caption>
    <thead>
      <tr>
        <th scope="col">Name</th>
        <th scope="col">${fromLabel}</th>
        <th scope="col">${toLabel}</th>
      </tr>
    </thead>
    <tbody>
      ${names.map(
        (k) =>
          html`<tr key=${k}>
            <td><code>${k}</code></td>
            <td><code>${vals[k].from ?? '—'}</code></td>
            <td><code>${vals[k].to ?? '—'}</code></td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** Revisions (who changed which names), the diff between two, and rollback (docs/history.md). Names only, values on request. */
export function History({ project, env }) {
  const [h, setH] = useState(null);
  const [err, setErr] = useState(null);
  const [diff, setDiff] = useState(null);
  const [msg, setMsg] = useState('');
  const load = () => api('GET', `${envPath(project, env)}/history?limit=50`).then(setH, setErr);
  useEffect(() => {
    load();
  }, [project, env]);
  const showDiff = async (rev) => {
    setErr(null);
    try {
      setDiff({ rev, ...(await api('GET', `${envPath(project, env)}/diff?fromRevision=${rev}`)) });
    } catch (e) {
      setErr(e);
    }
  };
  const rollback = async (rev) => {
    setErr(null);
    try {
      const r = await api('POST', `${envPath(project, env)}/rollback`, { toRevision: rev });
      setMsg(`Rolled back to revision ${rev}: now revision ${r.revision}.`);
      setDiff(null);
      load();
    } catch (e) {
      setErr(e);
    }
  };
  return html`<${ErrorLine} error=${err} /> ${msg && html`<p role="status">${msg}</p>`}
    ${
      diff &&
      html`<section class="preview" aria-label="Difference">
        <h2>From revision ${diff.rev} to now</h2>
        <${Names} title="Added since" names=${diff.added} cls="added" />
        <${Names} title="Changed since" names=${diff.changed} cls="changed" />
        <${Names} title="Removed since" names=${diff.removed} cls="removed" />
        <p class="muted">${diff.unchanged} unchanged</p>
        <${DiffValues}
          key=${diff.rev}
          query=${`${envPath(project, env)}/diff?fromRevision=${diff.rev}`}
          fromLabel=${`At revision ${diff.rev}`}
          toLabel="Now"
        />
      </section>`
    }
    ${
      h &&
      html`<table class="grid">
        <caption>
          Revisions of ${project}/${env} (now ${h.revision})
        </caption>
        <thead>
          <tr>
            <th scope="col">Revision</th>
            <th scope="col">When</th>
            <th scope="col">By</th>
            <th scope="col">Changes</th>
            <th scope="col"><span class="sr">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          ${h.revisions.map(
            (r) =>
              html`<tr key=${r.revision}>
                <td>${r.revision}</td>
                <td>${when(r.createdAt)}</td>
                <td>${r.actors.map((a) => a.name).join(', ')}</td>
                <td>${r.changes.map((c) => html`<span class=${'chip ' + c.action}>${c.action} <code>${c.key}</code></span> `)}</td>
                <td>
                  ${
                    r.revision !== h.revision &&
                    html`<button type="button" class="secondary" onClick=${() => showDiff(r.revision)}>Diff to now</button>${' '}<button
                        type="button"
                        class="secondary"
                        onClick=${() => rollback(r.revision)}
                      >
                        Roll back to ${r.revision}
                      </button>`
                  }
                </td>
              </tr>`,
          )}
        </tbody>
      </table>`
    }`;
}

/** Names that differ between this env and another the token can read. */
export function Compare({ project, env }) {
  const [envs, setEnvs] = useState([]);
  const [res, setRes] = useState(null);
  const [err, setErr] = useState(null);
  useEffect(() => {
    (async () => {
      const out = [];
      for (const p of (await api('GET', '/projects')).projects) {
        try {
          for (const e of (await api('GET', `/projects/${encodeURIComponent(p.name)}/envs`)).envs)
            if (p.name !== project || e.name !== env) out.push(`${p.name}/${e.name}`);
        } catch {
          /* not listable */
        }
      }
      setEnvs(out);
    })().catch(setErr);
  }, [project, env]);
  const go = async (ev) => {
    ev.preventDefault();
    setErr(null);
    const other = ev.currentTarget.elements.other.value;
    try {
      setRes({ other, ...(await api('GET', `${envPath(project, env)}/diff?other=${encodeURIComponent(other)}`)) });
    } catch (e) {
      setErr(e);
    }
  };
  return html`<form class="row" onSubmit=${go}>
      <label for="other">Compare ${project}/${env} with</label>
      <select id="other" name="other" required>
        ${envs.map((o) => html`<option key=${o} value=${o}>${o}</option>`)}
      </select>
      <button type="submit">Compare</button>
    </form>
    <${ErrorLine} error=${err} />
    ${
      res &&
      html`<section class="preview" aria-label="Comparison">
        <h2>${project}/${env} → ${res.other}</h2>
        <${Names} title=${'Only in ' + res.other} names=${res.added} cls="added" />
        <${Names} title="Different values" names=${res.changed} cls="changed" />
        <${Names} title=${'Only in ' + project + '/' + env} names=${res.removed} cls="removed" />
        <p class="muted">${res.unchanged} the same</p>
        <${DiffValues}
          key=${res.other}
          query=${`${envPath(project, env)}/diff?other=${encodeURIComponent(res.other)}`}
          fromLabel=${`${project}/${env}`}
          toLabel=${res.other}
        />
      </section>`
    }`;
}
