// The one place results are shown: a polite status for success, an alert for a refusal.
import { clear, h } from './dom.js';
import { explain } from './i18n.js';

/** Show `text`; an error is announced at once (role=alert), a success politely. */
export function say(text, { error = false } = {}) {
  const box = document.getElementById('message');
  clear(box);
  box.hidden = false;
  box.className = error ? 'message error' : 'message ok';
  box.setAttribute('role', error ? 'alert' : 'status');
  box.append(
    h('span', { class: 'message-text', text }),
    h('button', {
      type: 'button',
      class: 'link',
      i18nLabel: 'message.dismiss',
      text: '×',
      onclick: () => {
        box.hidden = true;
      },
    }),
  );
}

/** Show an API refusal as the API gave it, with a readable prefix. */
export function fail(err) {
  say(explain(err), { error: true });
}

export function hush() {
  document.getElementById('message').hidden = true;
}
