import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { ApiError, api } from './api.js';
import { ErrorLine, when } from './bits.js';

/** GET /v1/sys/health: status, storage, seal, and the last scheduled backup. */
export function Health() {
  const [h, setH] = useState(null);
  const [err, setErr] = useState(null);
  const load = () =>
    fetch('/v1/sys/health', { cache: 'no-store' }).then(async (r) => {
      const j = await r.json();
      setH(j);
      setErr(r.ok ? null : new ApiError(r.status, j.error?.code, j.error?.message));
    }, setErr);
  useEffect(() => {
    load();
  }, []);
  return html`<h1>Health</h1>
    <button type="button" class="secondary" onClick=${load}>Refresh</button>
    <${ErrorLine} error=${err} />
    ${
      h &&
      html`<dl class="facts">
        <dt>Status</dt>
        <dd class=${h.status === 'ok' ? 'ok' : 'error'}>${h.status}</dd>
        <dt>Version</dt>
        <dd>${h.version}</dd>
        <dt>Storage</dt>
        <dd>${h.storage}</dd>
        <dt>Sealed</dt>
        <dd>${h.sealed ? 'yes' : 'no'} (${h.seal})</dd>
        <dt>Last backup</dt>
        <dd>${h.lastBackupAt ? when(h.lastBackupAt) : 'none recorded (scheduled backups: docs/backups.md)'}</dd>
        <dt>Last backup error</dt>
        <dd class=${h.lastBackupError ? 'error' : ''}>${h.lastBackupError ?? 'none'}</dd>
        <dt>Secrets overdue for rotation</dt>
        <dd>${h.overdueSecrets ?? '—'}</dd>
      </dl>`
    }`;
}
