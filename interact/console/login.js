// Sign-in: a console account, the dev login when the server has it on, or a pasted token.
import { ApiError, api, claimsOf } from './api.js';
import { field, h } from './dom.js';
import { t } from './i18n.js';
import { fail, say } from './notify.js';

const STAFF = ['operator', 'anchor'];

// Whether the token is a staff member's; says why not when it is not.
function staffToken(token) {
  const claims = claimsOf(token);
  if (!claims) {
    say(t('auth.token.bad'), { error: true });
    return false;
  }
  if (!STAFF.includes(claims.role)) {
    say(t('auth.viewer'), { error: true });
    return false;
  }
  return true;
}

// One sign-in: the submit button is off while `request` runs; the token it resolves with
// is handed to `done` when it is a staff member's, and a failure is shown.
async function signIn(submit, done, request) {
  submit.disabled = true;
  try {
    const token = await request();
    if (staffToken(token)) done(token);
  } catch (err) {
    fail(err);
  } finally {
    submit.disabled = false;
  }
}

function passwordForm(done, enabled) {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, maxlength: 64 });
  const password = h('input', {
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    maxlength: 256,
  });
  const submit = h('button', { type: 'submit', i18n: 'auth.signin' });
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'login-password-title' },
    h('h2', { id: 'login-password-title', i18n: 'auth.password.title' }),
    enabled ? null : h('p', { class: 'hint', i18n: 'auth.none' }),
    field('auth.username', username),
    field('auth.password', password),
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    await signIn(submit, done, async () => {
      const answer = await api(
        'POST',
        '/auth/console',
        { username: username.value.trim(), password: password.value },
        { token: null, signOutOn401: false },
      );
      password.value = '';
      return answer.token;
    });
  });
  return form;
}

function devForm(done) {
  const uid = h('input', { name: 'uid', required: true, maxlength: 64, value: 'ops' });
  const role = h(
    'select',
    { name: 'role' },
    h('option', { value: 'operator', i18n: 'role.operator' }),
    h('option', { value: 'anchor', i18n: 'role.anchor' }),
  );
  const submit = h('button', { type: 'submit', i18n: 'auth.dev.signin' });
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'login-dev-title' },
    h('h2', { id: 'login-dev-title', i18n: 'auth.dev.title' }),
    h('p', { class: 'hint', i18n: 'auth.dev.hint' }),
    field('auth.dev.uid', uid),
    field('auth.dev.role', role),
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    await signIn(submit, done, async () => {
      const answer = await api(
        'POST',
        '/auth/dev',
        { uid: uid.value.trim(), role: role.value },
        { token: null, signOutOn401: false },
      );
      return answer.token;
    });
  });
  return form;
}

function tokenForm(done) {
  const token = h('textarea', { name: 'token', rows: 3, required: true, maxlength: 4096, spellcheck: 'false' });
  const submit = h('button', { type: 'submit', i18n: 'auth.token.use' });
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'login-token-title' },
    h('h2', { id: 'login-token-title', i18n: 'auth.token.title' }),
    h('p', { class: 'hint', i18n: 'auth.token.hint' }),
    field('auth.token', token),
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = token.value.trim();
    if (!staffToken(value)) return;
    await signIn(submit, done, async () => {
      // The server, not the page, decides whether the token is good.
      await api('POST', '/auth/ticket', undefined, { token: value, signOutOn401: false });
      token.value = '';
      return value;
    });
  });
  return form;
}

export async function renderLogin(view, done) {
  let options = { dev_login: false, password_login: false };
  try {
    options = await api('GET', '/auth/console', undefined, { token: null, signOutOn401: false });
  } catch (err) {
    if (err instanceof ApiError) fail(err);
  }
  view.append(
    h(
      'section',
      { class: 'login', 'aria-labelledby': 'login-title' },
      h('h1', { id: 'login-title', i18n: 'auth.title' }),
      h(
        'div',
        { class: 'login-grid' },
        passwordForm(done, options.password_login),
        options.dev_login ? devForm(done) : null,
        tokenForm(done),
      ),
    ),
  );
}
