import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { api, lastActivity, whenLoggedOut } from './api.js';
import { Login } from './login.js';
import { Projects } from './projects.js';
import { EnvPage } from './env.js';
import { Tokens } from './tokens.js';
import { Audit } from './audit.js';
import { Health } from './health.js';

// Hash routes: nothing in them but names (never a value).
function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return parts;
}

function Nav({ session, onLogout }) {
  const link = (href, label) =>
    html`<a href=${href} aria-current=${location.hash === href || (href === '#/' && !location.hash) ? 'page' : undefined}>${label}</a>`;
  return html`<header class="top">
    <a class="brand" href="#/">Hush</a>
    <nav aria-label="Main">
      ${link('#/', 'Projects')}${link('#/tokens', 'Tokens')}${link('#/audit', 'Audit')}${link('#/health', 'Health')}
    </nav>
    <span class="who">as <strong>${session.token.name}</strong></span>
    <button type="button" class="secondary" onClick=${onLogout}>Log out</button>
  </header>`;
}

function App() {
  const [session, setSession] = useState(undefined);
  const [path, setPath] = useState(route());
  const [notice, setNotice] = useState('');
  useEffect(() => {
    const f = () => setPath(route());
    addEventListener('hashchange', f);
    whenLoggedOut((e) => {
      setSession(null);
      setNotice(
        e.code === 'session_expired'
          ? 'Your session ended. Log in again.'
          : e.code === 'session_ambiguous'
            ? 'Another page of this host set a second session cookie; both were cleared. Log in again.'
            : '',
      );
    });
    api('GET', '/ui/session').then(
      (s) => setSession(s.token ? s : null),
      () => setSession(null),
    );
    return () => removeEventListener('hashchange', f);
  }, []);
  useEffect(() => {
    document.getElementById('main')?.focus();
  }, [path.join('/')]);
  // Past the idle timeout the server has ended the session: clear the page (and any value on it) at once.
  useEffect(() => {
    if (!session) return undefined;
    const t = setInterval(() => {
      if (Date.now() - lastActivity > session.idleTimeoutSeconds * 1000) {
        setSession(null);
        setNotice('Your session ended after being idle. Log in again.');
      }
    }, 5000);
    return () => clearInterval(t);
  }, [session]);
  if (session === undefined) return html`<p class="loading">Loading…</p>`;
  if (session === null)
    return html`<${Login}
      notice=${notice}
      onLogin=${(s) => {
        setNotice('');
        setSession(s);
      }}
    />`;
  const logout = async () => {
    try {
      await api('DELETE', '/ui/session');
    } catch {
      /* ended already */
    }
    setSession(null);
    location.hash = '#/';
  };
  let page;
  if (path[0] === 'p' && path[2] === 'e' && path[3])
    page = html`<${EnvPage} key=${path.join('/')} project=${path[1]} env=${path[3]} tab=${path[4] ?? 'secrets'} />`;
  else if (path[0] === 'tokens') page = html`<${Tokens} self=${session.token} sessionTokenId=${session.sessionTokenId} />`;
  else if (path[0] === 'audit') page = html`<${Audit} />`;
  else if (path[0] === 'health') page = html`<${Health} />`;
  else page = html`<${Projects} />`;
  return html`<${Nav} session=${session} onLogout=${logout} />
    <main id="main" tabindex="-1">${page}</main>`;
}

render(html`<${App} />`, document.getElementById('app'));
