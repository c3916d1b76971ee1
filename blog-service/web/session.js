// session.js: the logged-in user. The access token lives in sessionStorage
// (gone when the tab closes, never sent automatically like a cookie). The
// username and expiry are read from the token's payload for display only;
// the server verifies the token on every write.

const KEY = 'titanium.blog.token';

function decodePayload(token) {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(
      Array.from(atob(b64), (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''),
    );
    return JSON.parse(json);
  } catch {
    return null;
  }
}

/** The current user as {token, username, expiresAt}, or null. */
export function currentUser() {
  let token = null;
  try {
    token = sessionStorage.getItem(KEY);
  } catch {
    return null; // storage disabled
  }
  if (!token) return null;
  const payload = decodePayload(token);
  if (!payload || typeof payload.sub !== 'string' || typeof payload.exp !== 'number' || payload.exp * 1000 <= Date.now()) {
    logout();
    return null;
  }
  return { token, username: payload.sub, expiresAt: new Date(payload.exp * 1000) };
}

export function saveToken(token) {
  sessionStorage.setItem(KEY, token);
}

export function logout() {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // storage disabled: nothing stored
  }
}
