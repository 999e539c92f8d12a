import { html } from 'htm/preact';

export function ErrorLine({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message}${error.code ? html` <code>${error.code}</code>` : ''}</p>`;
}

export function Names({ title, names, cls }) {
  if (!names || names.length === 0) return null;
  return html`<div class=${'names ' + (cls ?? '')}>
    <h4>${title} (${names.length})</h4>
    <ul>
      ${names.map((n) => html`<li key=${n}><code>${n}</code></li>`)}
    </ul>
  </div>`;
}

export const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
