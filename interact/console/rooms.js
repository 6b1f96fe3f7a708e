// The rooms list: status and online count, create, and the lifecycle actions.
import { api } from './api.js';
import { clear, field, h } from './dom.js';
import { t, time } from './i18n.js';
import { fail, say } from './notify.js';

// What the room's state allows, as the API's lifecycle does (rest.md §5). The buttons
// follow the state shown; if it changed meanwhile the API's 409 says so.
export const ACTIONS = {
  scheduled: ['start', 'end'],
  live: ['pause', 'end'],
  paused: ['resume', 'end'],
  ended: [],
};

export function statusBadge(status) {
  return h('span', { class: `badge status-${status}`, i18n: `status.${status}` });
}

/** Run a lifecycle action; the updated room, or null after showing the refusal. */
export async function act(room, action) {
  try {
    const updated = await api('POST', `/rooms/${encodeURIComponent(room.id)}/${action}`);
    say(t('rooms.done', { title: updated.title, action: t(`action.${action}`) }));
    return updated;
  } catch (err) {
    fail(err);
    return null;
  }
}

export function actionButtons(room, after) {
  return ACTIONS[room.status].map((action) =>
    h('button', {
      type: 'button',
      class: action === 'end' ? 'danger' : '',
      'data-action': action,
      i18n: `action.${action}`,
      i18nLabel: `action.${action}.label`,
      args: { title: room.title },
      onclick: async (event) => {
        event.currentTarget.disabled = true;
        await act(room, action);
        after();
      },
    }),
  );
}

export function renderRooms(view, user) {
  let alive = true;
  const filter = h(
    'select',
    { name: 'status' },
    h('option', { value: '', i18n: 'rooms.filter.all' }),
    ...Object.keys(ACTIONS).map((s) => h('option', { value: s, i18n: `status.${s}` })),
  );
  const body = h('tbody');
  const empty = h('p', { class: 'hint', i18n: 'rooms.empty', hidden: true });

  async function load() {
    let rooms;
    try {
      const query = new URLSearchParams({ limit: '200' });
      if (filter.value) query.set('status', filter.value);
      // An anchor works only on their own rooms (the API refuses the rest with 403): the
      // server lists just those.
      if (user.role !== 'operator') query.set('anchor', 'me');
      rooms = (await api('GET', `/rooms?${query}`)).rooms;
    } catch (err) {
      fail(err);
      return;
    }
    if (!alive) return;
    clear(body);
    empty.hidden = rooms.length > 0;
    for (const room of rooms) body.append(row(room));
    await Promise.all(rooms.map(loadOnline));
  }

  async function loadOnline(room) {
    if (room.status === 'ended') return;
    const cell = body.querySelector(`tr[data-room="${room.id}"] .online`);
    try {
      const stats = await api('GET', `/rooms/${encodeURIComponent(room.id)}/stats`);
      if (cell) cell.textContent = String(stats.online);
    } catch {
      // The row stays with "—": the list is still useful without the count.
    }
  }

  function row(room) {
    return h(
      'tr',
      { 'data-room': room.id },
      h(
        'td',
        {},
        h('a', {
          href: `#/rooms/${room.id}`,
          text: room.title,
          i18nLabel: 'rooms.open.label',
          args: { title: room.title },
        }),
        h('div', { class: 'sub', text: room.id }),
      ),
      h('td', {}, statusBadge(room.status)),
      h('td', { class: 'online num', text: '—' }),
      h('td', { text: room.anchor ?? '—' }),
      h('td', { text: time(room.created_at, true) }),
      h('td', { class: 'actions' }, actionButtons(room, load)),
    );
  }

  const title = h('input', { name: 'title', required: true, maxlength: 100 });
  const anchor = h('input', { name: 'anchor', maxlength: 64 });
  const create = h(
    'form',
    { class: 'card create', 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title', i18n: 'rooms.create' }),
    field('rooms.new.title', title),
    user.role === 'operator' ? field('rooms.new.anchor', anchor) : null,
    h('button', { type: 'submit', i18n: 'rooms.create' }),
  );
  create.addEventListener('submit', async (event) => {
    event.preventDefault();
    const payload = { title: title.value };
    if (user.role === 'operator' && anchor.value.trim()) payload.anchor = anchor.value.trim();
    try {
      const room = await api('POST', '/rooms', payload);
      title.value = '';
      say(t('rooms.created', { title: room.title }));
      await load();
    } catch (err) {
      fail(err);
    }
  });
  filter.addEventListener('change', load);

  view.append(
    h(
      'section',
      { class: 'rooms', 'aria-labelledby': 'rooms-title' },
      h('h1', { id: 'rooms-title', i18n: 'rooms.title' }),
      create,
      h(
        'div',
        { class: 'toolbar' },
        field('rooms.filter', filter, 'inline'),
        h('button', { type: 'button', i18n: 'rooms.refresh', onclick: load }),
        user.role === 'operator' ? h('a', { href: '#/words', i18n: 'words.link' }) : null,
        user.role === 'operator' ? h('a', { href: '#/webhooks', i18n: 'wh.link' }) : null,
      ),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'rooms-table', 'aria-labelledby': 'rooms-title' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['title', 'status', 'online', 'anchor', 'created', 'actions'].map((c) =>
                h('th', { scope: 'col', i18n: `rooms.col.${c}` }),
              ),
            ),
          ),
          body,
        ),
      ),
      empty,
    ),
  );
  load();
  return () => {
    alive = false;
  };
}
