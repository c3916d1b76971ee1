// api.js: the blog's HTTP client. Every call goes to the page's own origin
// (the load balancer, then the gateway), has a timeout, and turns the
// service's JSON errors ({error, code, field}) into an ApiError.

const TIMEOUT_MS = 10000;

/** An error answer from the API, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field || '';
  }
}

async function request(method, path, { body, token } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      credentials: 'omit',
    });
  } catch (err) {
    const msg = err.name === 'AbortError' ? 'The server did not answer in time.' : 'The server could not be reached.';
    throw new ApiError(0, 'network', msg);
  } finally {
    clearTimeout(timer);
  }
  if (resp.status === 204) return null;
  let data = null;
  try {
    data = await resp.json();
  } catch {
    // Not JSON (e.g. a proxy's error page): fall through with data = null.
  }
  if (!resp.ok) {
    throw new ApiError(resp.status, data?.code || `http_${resp.status}`, data?.error || `HTTP ${resp.status}`, data?.field);
  }
  return data;
}

const postPath = (id) => `/api/posts/${encodeURIComponent(id)}`;

export function listPosts(cursor, limit = 10) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (cursor) q.set('cursor', cursor);
  return request('GET', `/api/posts?${q}`);
}

export function getPost(id) {
  return request('GET', postPath(id));
}

export function createPost(token, title, content) {
  return request('POST', '/api/posts', { token, body: { title, content } });
}

export function updatePost(token, id, patch) {
  return request('PATCH', postPath(id), { token, body: patch });
}

export function deletePost(token, id) {
  return request('DELETE', postPath(id), { token });
}

export function login(username, password) {
  return request('POST', '/api/auth/login', { body: { username, password } });
}

export function register(username, email, password) {
  return request('POST', '/api/users', { body: { username, email, password } });
}
