import { useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { api } from './api.js';
import { ErrorLine } from './bits.js';

export function Login({ onLogin, notice }) {
  const [err, setErr] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (ev) => {
    ev.preventDefault();
    const input = ev.currentTarget.elements.token;
    const token = input.value.trim();
    input.value = '';
    if (!token) return;
    setBusy(true);
    setErr(null);
    try {
      // The token goes once, as a header; the session cookie (HttpOnly) stands for it from then on.
      onLogin(await api('POST', '/ui/session', undefined, { authorization: `Bearer ${token}` }));
    } catch (e) {
      setErr(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<main id="main" class="login" tabindex="-1">
    <h1>Hush</h1>
    <form onSubmit=${submit}>
      <label for="token">Token</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required placeholder="hush_…" />
      <p class="hint">
        The token is exchanged for a session that ends when idle, on logout, or when the token is revoked. It is not kept in this browser.
      </p>
      <button type="submit" disabled=${busy}>Log in</button>
      ${notice && html`<p role="status">${notice}</p>`}
      <${ErrorLine} error=${err} />
    </form>
  </main>`;
}
