// The REST client: the token travels only in the Authorization header, never in a URL.
const TOKEN_KEY = 'interact.console.token';

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body || {};
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  /** The claims of the token (uid, nick, role), read without checking: the server checks. */
  get user() {
    const token = this.token;
    if (!token) return null;
    return claimsOf(token);
  },
};

export function claimsOf(token) {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof claims.sub !== 'string' || typeof claims.role !== 'string') return null;
    return { uid: claims.sub, nick: claims.nick || claims.sub, role: claims.role, exp: claims.exp };
  } catch {
    return null;
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

/** Call `/api/v1{path}`; resolves with the JSON answer (null for 204), rejects with ApiError. */
export async function api(method, path, body, { token = session.token, signOutOn401 = true } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (err) {
    throw new ApiError(0, 'network', String(err && err.message ? err.message : err));
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    const failure = new ApiError(
      response.status,
      error.code || 'http',
      error.message || response.statusText,
      error,
    );
    if (response.status === 401 && signOutOn401) onUnauthorized(failure);
    throw failure;
  }
  return data;
}
