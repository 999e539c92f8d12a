import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { api } from './api.js';
import { ErrorLine, when } from './bits.js';

const FILTERS = [
  ['action', 'Action'],
  ['actor', 'Actor (token id)'],
  ['project', 'Project'],
  ['env', 'Env'],
];
const PAGE = 50;

/** The audit log, newest first: filters, pages (by cursor), and a verify of the whole chain. */
export function Audit() {
  const [filter, setFilter] = useState({});
  const [pages, setPages] = useState([null]);
  const [data, setData] = useState(null);
  const [err, setErr] = useState(null);
  const [verify, setVerify] = useState(null);
  const cursor = pages[pages.length - 1];
  useEffect(() => {
    const q = new URLSearchParams({ order: 'desc', limit: String(PAGE) });
    for (const [k, v] of Object.entries(filter)) if (v) q.set(k, v);
    if (cursor) q.set('cursor', cursor);
    api('GET', `/audit?${q}`).then((r) => {
      setData(r);
      setErr(null);
    }, setErr);
  }, [filter, cursor]);
  const apply = (ev) => {
    ev.preventDefault();
    const f = ev.currentTarget.elements;
    // datetime-local is the browser's local time; the API takes ISO-8601.
    const iso = (v) => (v ? new Date(v).toISOString() : '');
    setFilter(
      Object.fromEntries([
        ...FILTERS.map(([k]) => [k, f[k].value.trim()]),
        ['outcome', f.outcome.value],
        ['from', iso(f.from.value)],
        ['to', iso(f.to.value)],
      ]),
    );
    setPages([null]);
  };
  const runVerify = async () => {
    setVerify({ busy: true });
    try {
      setVerify(await api('GET', '/audit/verify'));
    } catch (e) {
      setVerify({ error: e });
    }
  };
  return html`<h1>Audit log</h1>
    <section class="verify" aria-label="Verify">
      <button type="button" onClick=${runVerify} disabled=${verify?.busy}>Verify the audit chain</button>
      ${verify?.busy && html`<span role="status"> Verifying…</span>`}
      ${
        verify &&
        'ok' in verify &&
        html`<p role="status" class=${verify.ok ? 'ok' : 'error'} data-testid="verify-result">
          ${
            verify.ok
              ? `Intact: ${verify.checked} events checked in ${verify.streams} stream(s), head seq ${verify.headSeq}.`
              : `BROKEN at seq ${verify.firstBadSeq}: ${verify.reason}`
          }
        </p>`
      }
      <${ErrorLine} error=${verify?.error} />
    </section>
    <form class="row filters" onSubmit=${apply}>
      ${FILTERS.map(([k, label]) => html`<span><label for=${'f-' + k}>${label}</label><input id=${'f-' + k} name=${k} autocomplete="off" /></span>`)}
      <span><label for="f-from">From</label><input id="f-from" name="from" type="datetime-local" /></span>
      <span><label for="f-to">To</label><input id="f-to" name="to" type="datetime-local" /></span>
      <span
        ><label for="f-outcome">Outcome</label
        ><select id="f-outcome" name="outcome">
          <option value="">any</option>
          <option>ok</option>
          <option>denied</option>
          <option>error</option>
        </select></span
      >
      <button type="submit">Filter</button>
    </form>
    <${ErrorLine} error=${err} />
    ${
      data &&
      html`<table class="grid audit">
          <caption>
            Events, newest first
          </caption>
          <thead>
            <tr>
              <th scope="col">Seq</th>
              <th scope="col">Time</th>
              <th scope="col">Actor</th>
              <th scope="col">Action</th>
              <th scope="col">Where</th>
              <th scope="col">Outcome</th>
              <th scope="col">Detail</th>
            </tr>
          </thead>
          <tbody>
            ${data.events.map(
              (e) =>
                html`<tr key=${e.seq}>
                  <td>${e.seq}</td>
                  <td>${when(e.ts)}</td>
                  <td>${e.actor.name} <code class="small">${e.actor.id}</code></td>
                  <td><code>${e.action}</code></td>
                  <td>${[e.project, e.env].filter(Boolean).join('/')} ${e.target.key ? html`<code>${e.target.key}</code>` : ''}</td>
                  <td class=${e.outcome}>${e.outcome}</td>
                  <td class="small">${JSON.stringify(e.detail)}</td>
                </tr>`,
            )}
          </tbody>
        </table>
        ${data.events.length === 0 ? html`<p>No events match.</p>` : null}
        <nav class="row" aria-label="Pages">
          <button type="button" class="secondary" disabled=${pages.length < 2} onClick=${() => setPages(pages.slice(0, -1))}>Newer</button>
          <span>Page ${pages.length}</span>
          <button type="button" class="secondary" disabled=${!data.nextCursor} onClick=${() => setPages([...pages, data.nextCursor])}>
            Older
          </button>
        </nav>`
    }`;
}
