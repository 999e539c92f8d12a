import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { api, enc } from './api.js';
import { ErrorLine, when } from './bits.js';

const KINDS = ['read', 'list', 'write', 'admin', 'audit', 'backup', 'metrics', 'root'];
const needsEnv = (k) => k === 'read' || k === 'list' || k === 'write';

/** The new token, shown once: closing the dialog drops it from the page. */
function Shown({ made, onClose }) {
  const ref = useRef(null);
  const [note, setNote] = useState('');
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(made.token);
      setNote('Copied');
    } catch (e) {
      setNote(e.message);
    }
  };
  return html`<dialog ref=${ref} aria-labelledby="made-title" onClose=${onClose} onCancel=${onClose}>
    <h2 id="made-title">Token ${made.name} created</h2>
    <p>Copy it now: it is shown only this once.</p>
    <p><code class="token" data-testid="new-token">${made.token}</code></p>
    <button type="button" onClick=${copy}>Copy</button>
    <button
      type="button"
      class="secondary"
      onClick=${() => {
        ref.current?.close();
      }}
    >
      Close
    </button>
    ${note && html`<span role="status"> ${note}</span>`}
  </dialog>`;
}

function ScopeBuilder({ scopes, setScopes }) {
  const [kind, setKind] = useState('read');
  const add = () => {
    const f = document.getElementById('scope-form-fields');
    const p = f.querySelector('#scope-project')?.value.trim();
    const e = f.querySelector('#scope-env')?.value.trim();
    const s = kind === 'admin' ? `admin:${p || '*'}` : needsEnv(kind) ? `${kind}:${p || '*'}/${e || '*'}` : kind;
    if (!scopes.includes(s)) setScopes([...scopes, s]);
  };
  return html`<fieldset id="scope-form-fields">
    <legend>Scopes</legend>
    <label for="scope-kind">Grant</label>
    <select id="scope-kind" value=${kind} onChange=${(ev) => setKind(ev.currentTarget.value)}>
      ${KINDS.map((k) => html`<option value=${k}>${k}</option>`)}
    </select>
    ${
      (kind === 'admin' || needsEnv(kind)) &&
      html`<label for="scope-project">Project (or *)</label><input id="scope-project" autocomplete="off" placeholder="*" />`
    }
    ${needsEnv(kind) && html`<label for="scope-env">Env (or *)</label><input id="scope-env" autocomplete="off" placeholder="*" />`}
    <button type="button" class="secondary" onClick=${add}>Add scope</button>
    <ul class="chips" aria-label="Chosen scopes">
      ${scopes.map(
        (s) =>
          html`<li key=${s}>
            <code>${s}</code>${' '}<button
              type="button"
              class="link"
              aria-label=${'Remove ' + s}
              onClick=${() => setScopes(scopes.filter((x) => x !== s))}
            >
              ×
            </button>
          </li>`,
      )}
    </ul>
  </fieldset>`;
}

export function Tokens({ self, sessionTokenId }) {
  const [tokens, setTokens] = useState(null);
  const [err, setErr] = useState(null);
  const [scopes, setScopes] = useState([]);
  const [made, setMade] = useState(null);
  const [confirm, setConfirm] = useState(null);
  const load = () => api('GET', '/tokens').then((r) => setTokens(r.tokens), setErr);
  useEffect(() => {
    load();
  }, []);
  const create = async (ev) => {
    ev.preventDefault();
    setErr(null);
    const f = ev.currentTarget.elements;
    try {
      const body = { name: f.name.value, scopes };
      if (f.ttl.value.trim()) body.ttl = f.ttl.value.trim();
      if (f.description.value.trim()) body.description = f.description.value.trim();
      const cidrs = f.cidrs.value
        .split(',')
        .map((c) => c.trim())
        .filter(Boolean);
      if (cidrs.length) body.cidrs = cidrs;
      setMade(await api('POST', '/tokens', body));
      f.name.value = '';
      f.ttl.value = '';
      f.description.value = '';
      f.cidrs.value = '';
      setScopes([]);
      load();
    } catch (e) {
      setErr(e);
    }
  };
  const revoke = async (id) => {
    setErr(null);
    try {
      await api('DELETE', `/tokens/${enc(id)}`);
      setConfirm(null);
      load();
    } catch (e) {
      setErr(e);
    }
  };
  return html`<h1>Tokens</h1>
    <${ErrorLine} error=${err} />
    ${
      tokens &&
      html`<table class="grid">
        <caption>
          Tokens this session can see and revoke
        </caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Id</th>
            <th scope="col">Scopes</th>
            <th scope="col">Expires</th>
            <th scope="col">Last used</th>
            <th scope="col"><span class="sr">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          ${tokens.map(
            (t) =>
              html`<tr key=${t.id} data-token=${t.name}>
                <td data-label="Name">
                  ${t.name}${t.id === self.id ? ' (this login)' : ''}${
                    t.id === sessionTokenId ? html` <strong class="chip" data-testid="this-session">this session</strong>` : ''
                  }
                </td>
                <td data-label="Id"><code>${t.id}</code></td>
                <td data-label="Scopes">${t.scopes.map((s) => html`<code>${s}</code> `)}</td>
                <td data-label="Expires">${when(t.expiresAt)}</td>
                <td data-label="Last used">${when(t.lastUsedAt)}</td>
                <td>
                  ${
                    confirm === t.id
                      ? html`<button type="button" class="danger" onClick=${() => revoke(t.id)} aria-label=${'Confirm revoke ' + t.name}>
                            Confirm revoke
                          </button>
                          <button type="button" class="secondary" onClick=${() => setConfirm(null)}>Cancel</button>`
                      : html`<button type="button" class="secondary" onClick=${() => setConfirm(t.id)} aria-label=${'Revoke ' + t.name}>
                          Revoke
                        </button>`
                  }
                </td>
              </tr>`,
          )}
        </tbody>
      </table>`
    }
    <form class="add" onSubmit=${create}>
      <h2>Create a token</h2>
      <label for="tok-name">Name</label><input id="tok-name" name="name" required maxlength="128" autocomplete="off" />
      <${ScopeBuilder} scopes=${scopes} setScopes=${setScopes} />
      <label for="tok-ttl">Lifetime (e.g. 30d; empty: the server's default)</label><input id="tok-ttl" name="ttl" autocomplete="off" />
      <label for="tok-cidrs">Allowed client addresses (CIDRs, comma-separated; empty: any, or the creating token's)</label
      ><input id="tok-cidrs" name="cidrs" autocomplete="off" placeholder="10.0.0.0/8" /> <label for="tok-desc">Description</label
      ><input id="tok-desc" name="description" autocomplete="off" />
      <button type="submit" disabled=${scopes.length === 0}>Create token</button>
    </form>
    ${made && html`<${Shown} made=${made} onClose=${() => setMade(null)} />`}`;
}
