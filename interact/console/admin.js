// Operator-only tools: bans (every room, every process) and the word list.
import { api } from './api.js';
import { clear, every, field, h, panel } from './dom.js';
import { t, time } from './i18n.js';
import { fail, say } from './notify.js';

const BAN_DURATIONS = [3600, 86400, 604800, 2592000, 'forever'];
const ACTIONS = ['reject', 'review', 'mask'];

/** The bans panel: ban a user everywhere for a while or for good, see and lift bans. */
export function bansPanel({ isAlive }) {
  const uid = h('input', { name: 'ban-uid', required: true, maxlength: 64 });
  const duration = h('select', { name: 'ban-duration' }, ...BAN_DURATIONS.map((s) => h('option', { value: s, i18n: `ban.duration.${s}` })));
  duration.value = '86400';
  const reason = h('input', { name: 'ban-reason', maxlength: 200 });
  const form = h(
    'form',
    { class: 'row-form' },
    field('ban.uid', uid),
    field('ban.duration', duration),
    field('ban.reason', reason, 'grow'),
    h('button', { type: 'submit', class: 'danger', i18n: 'ban.add' }),
  );
  const list = h('ul', { class: 'list', id: 'ban-list' });

  async function load() {
    let bans;
    try {
      bans = (await api('GET', '/moderation/bans')).bans;
    } catch {
      return;
    }
    if (!isAlive()) return;
    clear(list);
    if (!bans.length) list.append(h('li', { class: 'hint', i18n: 'ban.empty' }));
    for (const ban of bans) {
      list.append(
        h(
          'li',
          { 'data-uid': ban.uid },
          h('span', { class: 'nick', text: ban.uid }),
          h('span', ban.until === null ? { class: 'sub', i18n: 'ban.forever' } : { class: 'sub', i18n: 'ban.until', args: { time: time(ban.until, true) } }),
          ban.reason ? h('span', { class: 'sub', text: ban.reason }) : null,
          h('button', {
            type: 'button',
            class: 'small',
            i18n: 'ban.lift',
            i18nLabel: 'ban.lift.label',
            args: { uid: ban.uid },
            onclick: async () => {
              try {
                await api('DELETE', `/moderation/bans/${encodeURIComponent(ban.uid)}`);
                say(t('ban.lifted', { uid: ban.uid }));
              } catch (err) {
                fail(err);
              }
              load();
            },
          }),
        ),
      );
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const payload = { uid: uid.value.trim() };
    if (duration.value !== 'forever') payload.seconds = Number(duration.value);
    if (reason.value.trim()) payload.reason = reason.value.trim();
    try {
      await api('POST', '/moderation/bans', payload);
      say(t('ban.done', { uid: payload.uid }));
      uid.value = '';
      reason.value = '';
    } catch (err) {
      fail(err);
    }
    load();
  });

  return {
    element: panel('bans', 'ban.title', h('p', { class: 'hint', i18n: 'ban.hint' }), form, list),
    fill(value) {
      uid.value = value;
      duration.focus();
    },
    start: () => every(10000, load),
  };
}

/** The word list view (operator only): what the filter blocks, holds or masks, and allows. */
export function renderWords(view) {
  let alive = true;
  let entries = [];
  const body = h('tbody');
  const version = h('p', { class: 'sub', id: 'words-version' });
  const allow = h('textarea', { name: 'allow', rows: 4 });
  const problems = h('ul', { class: 'problems error-text', id: 'words-problems' });

  function row(entry, index) {
    return h(
      'tr',
      { 'data-word': entry.word },
      h('td', { text: entry.word }),
      h('td', { i18n: `words.action.${entry.action}` }),
      h('td', { text: entry.category }),
      h(
        'td',
        {},
        h('button', {
          type: 'button',
          class: 'small',
          i18n: 'words.remove',
          i18nLabel: 'words.remove.label',
          args: { word: entry.word },
          onclick: () => {
            entries.splice(index, 1);
            draw();
          },
        }),
      ),
    );
  }

  function draw() {
    clear(body).append(...entries.map(row));
  }

  async function load() {
    let list;
    try {
      list = await api('GET', '/moderation/words');
    } catch (err) {
      fail(err);
      return;
    }
    if (!alive) return;
    entries = list.words;
    allow.value = list.allow.join('\n');
    version.dataset.i18n = 'words.version';
    version.dataset.i18nArgs = JSON.stringify({ version: list.version, count: entries.length });
    version.textContent = t('words.version', { version: list.version, count: entries.length });
    draw();
  }

  const word = h('input', { name: 'word', required: true, maxlength: 100 });
  const action = h('select', { name: 'action' }, ...ACTIONS.map((a) => h('option', { value: a, i18n: `words.action.${a}` })));
  const category = h('input', { name: 'category', maxlength: 40, value: 'custom' });
  const add = h(
    'form',
    { class: 'row-form', i18nLabel: 'words.add' },
    field('words.word', word, 'grow'),
    field('words.action', action),
    field('words.category', category),
    h('button', { type: 'submit', i18n: 'words.add' }),
  );
  add.addEventListener('submit', (event) => {
    event.preventDefault();
    entries = [{ word: word.value.trim(), action: action.value, category: category.value.trim() || 'custom' }, ...entries];
    word.value = '';
    draw();
  });

  async function save() {
    clear(problems);
    const payload = {
      words: entries,
      allow: allow.value.split('\n').map((s) => s.trim()).filter(Boolean),
    };
    try {
      const answer = await api('PUT', '/moderation/words', payload);
      say(t('words.saved', { words: answer.words, allow: answer.allow, version: answer.version }));
      await load();
    } catch (err) {
      fail(err);
      for (const problem of err.body.problems || []) problems.append(h('li', { text: problem }));
    }
  }

  view.append(
    h(
      'section',
      { class: 'words', 'aria-labelledby': 'words-title' },
      h('a', { href: '#/rooms', class: 'back', i18n: 'room.back' }),
      h('h1', { id: 'words-title', i18n: 'words.title' }),
      h('p', { class: 'hint', i18n: 'words.hint' }),
      version,
      h('div', { class: 'card' }, add),
      problems,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'words-table', 'aria-labelledby': 'words-title' },
          h('thead', {}, h('tr', {}, ...['word', 'action', 'category', 'remove'].map((c) => h('th', { scope: 'col', i18n: `words.col.${c}` })))),
          body,
        ),
      ),
      h('div', { class: 'card' }, field('words.allow', allow), h('button', { type: 'button', i18n: 'words.save', onclick: save })),
    ),
  );
  load();
  return () => {
    alive = false;
  };
}
