// The JSON API (/v1), with the session cookie (sent by the browser, never read here).
let onLoggedOut = () => {};
export function whenLoggedOut(fn) {
  onLoggedOut = fn;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** When the API was last called: the server ends a session idle for its timeout, and the page then drops what it shows. */
export let lastActivity = Date.now();

export async function api(method, path, body, headers = {}) {
  lastActivity = Date.now();
  const init = { method, headers: { ...headers }, credentials: 'same-origin', cache: 'no-store', redirect: 'error' };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch('/v1' + path, init);
  if (r.status === 204) return null;
  const j = await r.json().catch(() => null);
  if (!r.ok) {
    const e = new ApiError(r.status, j?.error?.code ?? 'http_' + r.status, j?.error?.message ?? r.statusText);
    if (r.status === 401 && !headers.authorization) onLoggedOut(e);
    throw e;
  }
  return j;
}

export const enc = encodeURIComponent;
export const envPath = (p, e) => `/projects/${enc(p)}/envs/${enc(e)}`;
