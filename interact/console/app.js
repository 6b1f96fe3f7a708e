// The console's entry: the header, the sign-in state and a hash router over the views.
import { session, whenUnauthorized } from './api.js';
import { clear, retranslate } from './dom.js';
import { lang, setLang, t } from './i18n.js';
import { renderLogin } from './login.js';
import { renderWords } from './admin.js';
import { hush, say } from './notify.js';
import { renderRoom } from './room.js';
import { renderRooms } from './rooms.js';
import { renderWebhooks } from './webhooks.js';

const view = document.getElementById('view');
let leave = null; // the current view's teardown (sockets, timers)
let note = null; // a message that outlives the next route change (why you were signed out)

function renderHeader() {
  const user = session.user;
  const who = document.getElementById('who');
  const logout = document.getElementById('logout');
  who.hidden = !user;
  logout.hidden = !user;
  if (user) {
    who.dataset.i18n = 'who';
    who.dataset.i18nArgs = JSON.stringify({ nick: user.nick, role: t(`role.${user.role}`) });
    who.textContent = t('who', { nick: user.nick, role: t(`role.${user.role}`) });
  }
}

function signedIn(token) {
  session.token = token;
  renderHeader();
  if (location.hash !== '#/rooms') location.hash = '#/rooms';
  else route();
}

function signOut(why) {
  session.token = null;
  note = why || null;
  renderHeader();
  if (location.hash !== '' && location.hash !== '#/login') location.hash = '#/login';
  else route();
}

async function route() {
  if (leave) {
    leave();
    leave = null;
  }
  clear(view);
  const user = session.user;
  if (!user || (user.exp && user.exp * 1000 < Date.now())) {
    session.token = null;
    renderHeader();
    await renderLogin(view, signedIn);
    if (note) say(note, { error: true });
    note = null;
    return;
  }
  const match = /^#\/rooms\/([A-Za-z0-9_-]{1,64})$/.exec(location.hash);
  if (match) leave = renderRoom(view, match[1], user);
  else if (location.hash === '#/words' && user.role === 'operator') leave = renderWords(view);
  else if (location.hash === '#/webhooks' && user.role === 'operator') leave = renderWebhooks(view);
  else leave = renderRooms(view, user);
}

whenUnauthorized(() => signOut(t('auth.expired')));

const langSelect = document.getElementById('lang');
langSelect.value = lang();
langSelect.addEventListener('change', () => {
  setLang(langSelect.value);
  document.title = t('app.title');
  renderHeader();
  retranslate(document);
  document.dispatchEvent(new CustomEvent('langchange'));
});
document.getElementById('logout').addEventListener('click', () => signOut());
window.addEventListener('hashchange', () => {
  hush();
  route();
});

document.title = t('app.title');
retranslate(document);
renderHeader();
route();

