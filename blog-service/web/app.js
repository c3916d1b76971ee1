// app.js: the blog's views and hash router. Routes:
//   #/                 the list, newest first, with "Load more"
//   #/posts/ID         one post (edit and delete when it is yours)
//   #/new              write a post
//   #/posts/ID/edit    edit your post
//   #/login, #/register
// All user content is inserted as text (textContent / Text nodes), never as HTML.

import * as api from './api.js';
import { ApiError } from './api.js';
import * as session from './session.js';

const PAGE_SIZE = 10;
const MAX_TITLE = 200;
const MAX_CONTENT = 20000;
const EXCERPT = 240;

const view = document.getElementById('view');
const flashBox = document.getElementById('flash');

/** el builds an element; string children become Text nodes (never parsed as HTML). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child != null && child !== false) node.append(child);
  }
  return node;
}

function show(...nodes) {
  view.replaceChildren(...nodes);
  view.focus({ preventScroll: true });
}

// A message is cleared on the next route change, unless it was shown just
// before navigating (keep = true): then it is cleared on the one after.
let flashKeep = false;

function flash(message, kind = 'info', keep = false) {
  flashBox.textContent = message;
  flashBox.className = `flash ${kind}`;
  flashBox.hidden = !message;
  flashKeep = keep;
}

function formatDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function meta(post) {
  const edited = post.updated_at !== post.created_at ? ' · edited' : '';
  return el('p', { class: 'meta' }, `by ${post.author} · `,
    el('time', { datetime: post.created_at }, formatDate(post.created_at)), edited);
}

function errorText(err) {
  if (err instanceof ApiError) return err.message;
  return 'Something went wrong.';
}

/** Handles an expired or rejected token: forget it and ask to log in again. */
function handleAuthError(err) {
  if (err instanceof ApiError && err.status === 401) {
    session.logout();
    renderNav();
    flash('Your session has expired: please log in again.', 'error', true);
    go(`#/login?next=${encodeURIComponent(location.hash)}`);
    return true;
  }
  return false;
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function renderNav() {
  const user = session.currentUser();
  document.getElementById('nav-write').hidden = !user;
  const name = document.getElementById('nav-user');
  name.hidden = !user;
  name.textContent = user ? user.username : '';
  document.getElementById('nav-logout').hidden = !user;
  document.getElementById('nav-login').hidden = !!user;
  document.getElementById('nav-register').hidden = !!user;
}

// --- list ------------------------------------------------------------------

function postCard(post) {
  const excerpt = post.content.length > EXCERPT ? `${post.content.slice(0, EXCERPT)}…` : post.content;
  return el('li', { class: 'card' },
    el('h2', {}, el('a', { href: `#/posts/${post.id}` }, post.title)),
    meta(post),
    el('p', { class: 'excerpt' }, excerpt));
}

function renderList() {
  const list = el('ul', { class: 'posts' });
  const status = el('p', { class: 'muted' }, 'Loading…');
  const more = el('button', { type: 'button', class: 'button secondary', hidden: true }, 'Load more');
  let cursor = null;

  async function load() {
    more.disabled = true;
    status.textContent = 'Loading…';
    status.hidden = false;
    try {
      const page = await api.listPosts(cursor, PAGE_SIZE);
      list.append(...page.items.map(postCard));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      status.hidden = list.childElementCount > 0;
      status.textContent = 'No posts yet.';
    } catch (err) {
      status.textContent = `Could not load posts: ${errorText(err)}`;
      more.hidden = !cursor;
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', load);
  show(el('h1', {}, 'Posts'), list, status, el('div', { class: 'actions' }, more));
  load();
}

// --- one post --------------------------------------------------------------

async function renderPost(id) {
  show(el('p', { class: 'muted' }, 'Loading…'));
  let post;
  try {
    post = await api.getPost(id);
  } catch (err) {
    const msg = err instanceof ApiError && err.status === 404 ? 'This post does not exist (any more).' : errorText(err);
    show(el('h1', {}, 'Post'), el('p', { class: 'error' }, msg), el('p', {}, el('a', { href: '#/' }, '← All posts')));
    return;
  }
  const user = session.currentUser();
  const actions = el('div', { class: 'actions' }, el('a', { href: '#/' }, '← All posts'));
  if (user && user.username === post.author) {
    const del = el('button', { type: 'button', class: 'button danger' }, 'Delete');
    del.addEventListener('click', async () => {
      if (!window.confirm('Delete this post? This cannot be undone.')) return;
      del.disabled = true;
      try {
        await api.deletePost(user.token, post.id);
        flash('Post deleted.', 'ok', true);
        go('#/');
      } catch (err) {
        if (!handleAuthError(err)) flash(`Could not delete: ${errorText(err)}`, 'error');
        del.disabled = false;
      }
    });
    actions.append(el('a', { class: 'button secondary', href: `#/posts/${post.id}/edit` }, 'Edit'), del);
  }
  show(el('article', { class: 'post' },
    el('h1', {}, post.title),
    meta(post),
    el('div', { class: 'content' }, post.content)), actions);
}

// --- write / edit ----------------------------------------------------------

function field(label, control, counterMax) {
  const error = el('p', { class: 'field-error', hidden: true });
  const wrap = el('label', { class: 'field' }, el('span', { class: 'label' }, label), control);
  if (counterMax) {
    const counter = el('span', { class: 'counter muted' });
    const update = () => { counter.textContent = `${[...control.value].length} / ${counterMax}`; };
    control.addEventListener('input', update);
    update();
    wrap.append(counter);
  }
  wrap.append(error);
  return { wrap, error };
}

function showFieldError(fields, err) {
  for (const f of Object.values(fields)) f.error.hidden = true;
  const target = err instanceof ApiError && fields[err.field];
  if (target) {
    target.error.textContent = err.message;
    target.error.hidden = false;
  } else {
    flash(errorText(err), 'error');
  }
}

async function renderEditor(id) {
  const user = session.currentUser();
  if (!user) {
    flash('Log in to write posts.', 'info', true);
    go(`#/login?next=${encodeURIComponent(location.hash)}`);
    return;
  }
  let post = null;
  if (id) {
    try {
      post = await api.getPost(id);
    } catch (err) {
      show(el('p', { class: 'error' }, errorText(err)));
      return;
    }
    if (post.author !== user.username) {
      show(el('p', { class: 'error' }, 'Only the author can edit this post.'));
      return;
    }
  }
  const title = el('input', { name: 'title', required: true, maxlength: MAX_TITLE, autocomplete: 'off' });
  const content = el('textarea', { name: 'content', required: true, maxlength: MAX_CONTENT, rows: 14 });
  title.value = post ? post.title : '';
  content.value = post ? post.content : '';
  const fields = { title: field('Title', title, MAX_TITLE), content: field('Content', content, MAX_CONTENT) };
  const save = el('button', { type: 'submit', class: 'button' }, post ? 'Save changes' : 'Publish');
  const cancel = el('a', { href: post ? `#/posts/${post.id}` : '#/' }, 'Cancel');
  const form = el('form', { class: 'form', novalidate: true },
    fields.title.wrap, fields.content.wrap, el('div', { class: 'actions' }, save, cancel));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    save.disabled = true;
    flash('');
    try {
      let saved;
      if (post) {
        const patch = {};
        if (title.value !== post.title) patch.title = title.value;
        if (content.value !== post.content) patch.content = content.value;
        saved = Object.keys(patch).length ? await api.updatePost(user.token, post.id, patch) : post;
      } else {
        saved = await api.createPost(user.token, title.value, content.value);
      }
      flash(post ? 'Changes saved.' : 'Post published.', 'ok', true);
      go(`#/posts/${saved.id}`);
    } catch (err) {
      if (!handleAuthError(err)) showFieldError(fields, err);
      save.disabled = false;
    }
  });
  show(el('h1', {}, post ? 'Edit post' : 'Write a post'), form);
  title.focus();
}

// --- log in / register -----------------------------------------------------

function nextTarget(query) {
  const next = query.get('next') || '';
  // Only follow in-app routes, never an arbitrary URL.
  return next.startsWith('#/') && !next.startsWith('#/login') && !next.startsWith('#/register') ? next : '#/';
}

async function logInAndGo(username, password, next, message) {
  const tok = await api.login(username, password);
  session.saveToken(tok.access_token);
  renderNav();
  flash(message || `Logged in as ${session.currentUser()?.username ?? username}.`, 'ok', true);
  go(next);
}

function renderLogin(query) {
  const username = el('input', { name: 'username', required: true, autocomplete: 'username' });
  const password = el('input', { name: 'password', type: 'password', required: true, autocomplete: 'current-password' });
  const fields = { username: field('Username', username), password: field('Password', password) };
  const submit = el('button', { type: 'submit', class: 'button' }, 'Log in');
  const form = el('form', { class: 'form', novalidate: true },
    fields.username.wrap, fields.password.wrap,
    el('div', { class: 'actions' }, submit, el('a', { href: '#/register' }, 'Create an account')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    try {
      await logInAndGo(username.value, password.value, nextTarget(query));
    } catch (err) {
      const msg = err instanceof ApiError && err.status === 401 ? 'Wrong username or password.' : errorText(err);
      flash(msg, 'error');
      submit.disabled = false;
    }
  });
  show(el('h1', {}, 'Log in'), form);
  username.focus();
}

function renderRegister(query) {
  const username = el('input', { name: 'username', required: true, autocomplete: 'username' });
  const email = el('input', { name: 'email', type: 'email', required: true, autocomplete: 'email' });
  const password = el('input', { name: 'password', type: 'password', required: true, autocomplete: 'new-password' });
  const fields = {
    username: field('Username', username),
    email: field('Email', email),
    password: field('Password', password),
  };
  const submit = el('button', { type: 'submit', class: 'button' }, 'Create account');
  const form = el('form', { class: 'form', novalidate: true },
    fields.username.wrap, fields.email.wrap, fields.password.wrap,
    el('div', { class: 'actions' }, submit, el('a', { href: '#/login' }, 'I have an account')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    flash('');
    try {
      await api.register(username.value, email.value, password.value);
    } catch (err) {
      showFieldError(fields, err);
      submit.disabled = false;
      return;
    }
    try {
      await logInAndGo(username.value, password.value, nextTarget(query), 'Welcome! Your account is ready.');
    } catch (err) {
      flash(`Account created, but logging in failed: ${errorText(err)}`, 'error', true);
      go('#/login');
    }
  });
  show(el('h1', {}, 'Create an account'), form);
  username.focus();
}

// --- router ----------------------------------------------------------------

function route() {
  renderNav();
  const [path, qs] = (location.hash.slice(1) || '/').split('?');
  const query = new URLSearchParams(qs || '');
  let m;
  if (path === '/' || path === '') renderList();
  else if ((m = path.match(/^\/posts\/(\d+)$/))) renderPost(m[1]);
  else if ((m = path.match(/^\/posts\/(\d+)\/edit$/))) renderEditor(m[1]);
  else if (path === '/new') renderEditor(null);
  else if (path === '/login') renderLogin(query);
  else if (path === '/register') renderRegister(query);
  else show(el('h1', {}, 'Not found'), el('p', {}, el('a', { href: '#/' }, '← All posts')));
}

window.addEventListener('hashchange', () => {
  if (flashKeep) flashKeep = false;
  else flash('');
  route();
});

document.getElementById('nav-logout').addEventListener('click', () => {
  session.logout();
  flash('Logged out.', 'ok', true);
  go('#/');
});

route();
