import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { api, enc, envPath } from './api.js';
import { ErrorLine } from './bits.js';
import { BulkPaste } from './bulk.js';
import { History, Compare } from './history.js';

const TABS = [
  ['secrets', 'Secrets'],
  ['bulk', 'Bulk paste'],
  ['history', 'History'],
  ['compare', 'Compare'],
];

export function EnvPage({ project, env, tab }) {
  const base = `#/p/${enc(project)}/e/${enc(env)}`;
  const body =
    tab === 'bulk'
      ? html`<${BulkPaste} project=${project} env=${env} />`
      : tab === 'history'
        ? html`<${History} project=${project} env=${env} />`
        : tab === 'compare'
          ? html`<${Compare} project=${project} env=${env} />`
          : html`<${Secrets} project=${project} env=${env} />`;
  return html`<h1><span class="muted">${project} /</span> ${env}</h1>
    <nav class="tabs" aria-label="Environment">
      ${TABS.map(
        ([id, label]) =>
          html`<a key=${id} href=${id === 'secrets' ? base : `${base}/${id}`} aria-current=${tab === id ? 'page' : undefined}>${label}</a>`,
      )}
    </nav>
    ${body}`;
}

/** One secret: masked until revealed (each reveal and copy is an audited read); edit and delete. */
function Row({ project, env, item, onChanged }) {
  const [value, setValue] = useState(null);
  const [editing, setEditing] = useState(false);
  const [confirm, setConfirm] = useState(false);
  const [err, setErr] = useState(null);
  const [note, setNote] = useState('');
  // A new version: a value revealed before is not its value any more (the row keeps its edit form and message).
  useEffect(() => {
    setValue(null);
  }, [item.version]);
  const path = `${envPath(project, env)}/secrets/${enc(item.key)}`;
  const read = async () => (await api('GET', path)).value;
  const reveal = async () => {
    setErr(null);
    try {
      setValue(value === null ? await read() : null);
    } catch (e) {
      setErr(e);
    }
  };
  const copy = async () => {
    setErr(null);
    try {
      await navigator.clipboard.writeText(value ?? (await read()));
      setNote('Copied');
      setTimeout(() => setNote(''), 2000);
    } catch (e) {
      setErr(e);
    }
  };
  const save = async (ev) => {
    ev.preventDefault();
    setErr(null);
    const f = ev.currentTarget.elements.value;
    // cas: the version this row shows, so a change made meanwhile (another person, a deploy) is never overwritten unseen.
    try {
      await api('PUT', path, { value: f.value, cas: item.version });
      f.value = '';
      setEditing(false);
      setValue(null);
      onChanged();
    } catch (e) {
      if (e.code !== 'cas_conflict') {
        setErr(e);
        return;
      }
      setErr(
        Object.assign(
          new Error(
            `${item.key} was changed meanwhile (you edited v${item.version}). The list now shows its new version: check it, then save again to replace it.`,
          ),
          { code: e.code },
        ),
      );
      setValue(null);
      onChanged();
    }
  };
  const del = async () => {
    setErr(null);
    try {
      await api('DELETE', path);
      onChanged();
    } catch (e) {
      setErr(e);
      setConfirm(false);
    }
  };
  const id = `v-${item.key}`;
  return html`<li class="secret" data-key=${item.key}>
    <div class="line">
      <code class="name">${item.key}</code>
      <span class="value" aria-live="polite"
        >${value === null ? html`<span class="masked" aria-label="hidden value">••••••••</span>` : html`<code class="revealed">${value}</code>`}</span
      >
      <span class="actions">
        <button type="button" class="secondary" onClick=${reveal} aria-label=${(value === null ? 'Reveal ' : 'Hide ') + item.key}>
          ${value === null ? 'Reveal' : 'Hide'}
        </button>
        <button type="button" class="secondary" onClick=${copy} aria-label=${'Copy ' + item.key}>Copy</button>
        <button
          type="button"
          class="secondary"
          onClick=${() => setEditing(!editing)}
          aria-expanded=${editing}
          aria-label=${'Edit ' + item.key}
        >
          Edit
        </button>
        ${
          confirm
            ? html`<button type="button" class="danger" onClick=${del} aria-label=${'Confirm delete ' + item.key}>Confirm delete</button
                ><button type="button" class="secondary" onClick=${() => setConfirm(false)}>Cancel</button>`
            : html`<button type="button" class="secondary" onClick=${() => setConfirm(true)} aria-label=${'Delete ' + item.key}>
                Delete
              </button>`
        }
      </span>
      <span class="muted small">v${item.version} · ${new Date(item.updatedAt).toLocaleString()}</span>
      ${note && html`<span role="status" class="small">${note}</span>`}
    </div>
    ${
      editing &&
      html`<form class="edit" onSubmit=${save}>
        <label for=${id}>New value of ${item.key}</label>
        <textarea id=${id} name="value" rows="2" autocomplete="off" spellcheck="false" required></textarea>
        <button type="submit">Save</button>
      </form>`
    }
    <${ErrorLine} error=${err} />
  </li>`;
}

function Secrets({ project, env }) {
  const [items, setItems] = useState(null);
  const [err, setErr] = useState(null);
  const [addErr, setAddErr] = useState(null);
  const load = () =>
    api('GET', `${envPath(project, env)}/keys`).then((r) => {
      setItems(r.secrets);
      setErr(null);
    }, setErr);
  useEffect(() => {
    load();
  }, [project, env]);
  const add = async (ev) => {
    ev.preventDefault();
    const f = ev.currentTarget.elements;
    setAddErr(null);
    try {
      // cas 0: adding never overwrites a secret that exists.
      await api('PUT', `${envPath(project, env)}/secrets/${enc(f.name.value)}`, { value: f.value.value, cas: 0 });
      f.name.value = '';
      f.value.value = '';
      load();
    } catch (e) {
      setAddErr(e);
    }
  };
  return html`<${ErrorLine} error=${err} />
    ${items && items.length === 0 ? html`<p>No secrets yet.</p>` : null}
    <ul class="secrets">
      ${(items ?? []).map((it) => html`<${Row} key=${it.key} project=${project} env=${env} item=${it} onChanged=${load} />`)}
    </ul>
    <form class="add" onSubmit=${add}>
      <h2>Add a secret</h2>
      <label for="add-name">Name</label>
      <input id="add-name" name="name" required pattern="[A-Za-z_][A-Za-z0-9_]*" autocomplete="off" spellcheck="false" />
      <label for="add-value">Value</label>
      <textarea id="add-value" name="value" rows="2" autocomplete="off" spellcheck="false"></textarea>
      <button type="submit">Add</button>
      <${ErrorLine} error=${addErr} />
    </form>`;
}
