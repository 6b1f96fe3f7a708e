// One live room on one screen: numbers, the chart, the comment stream, moderation and commerce.
import { bansPanel } from './admin.js';
import { api } from './api.js';
import { RoomChart } from './chart.js';
import { commercePanels } from './commerce.js';
import { clear, every, field, h, panel } from './dom.js';
import { explain, t, time } from './i18n.js';
import { LiveSocket } from './live.js';
import { fail, say } from './notify.js';
import { actionButtons, statusBadge } from './rooms.js';

const STREAM_MAX = 300;
const LOG_MAX = 100;
const DURATIONS = [60, 600, 3600, 86400, 604800, 2592000];

function tile(key, id) {
  return h(
    'div',
    { class: 'tile' },
    h('div', { class: 'tile-label', i18n: key }),
    h('div', { class: 'tile-value num', id, text: '—' }),
  );
}

export function renderRoom(view, roomId, user) {
  const path = `/rooms/${encodeURIComponent(roomId)}`;
  const stops = [];
  let socket = null;
  let chart = null;
  let alive = true;
  const onLang = () => chart && chart.build();
  document.addEventListener('langchange', onLang);

  const leave = () => {
    alive = false;
    document.removeEventListener('langchange', onLang);
    for (const stop of stops) stop();
    if (socket) socket.stop();
    if (chart) chart.destroy();
    clear(document.getElementById('alerts'));
  };

  view.append(h('p', { class: 'hint', i18n: 'room.loading' }));
  (async () => {
    let room;
    try {
      // Any token reads a room; the stats are for its staff only: the same check as
      // every action on the room, so a room the API would refuse is never shown.
      room = await api('GET', path);
      await api('GET', `${path}/stats`);
    } catch (err) {
      if (!alive) return;
      clear(view).append(
        h(
          'section',
          { class: 'denied', 'aria-labelledby': 'denied-title' },
          h('h1', { id: 'denied-title', i18n: 'room.denied' }),
          h('p', { class: 'error-text', text: explain(err) }),
          h('a', { href: '#/rooms', i18n: 'room.back' }),
        ),
      );
      fail(err);
      return;
    }
    if (alive) build(room);
  })();

  function build(initial) {
    let room = initial;
    let online = 0;
    let peak = 0;
    let sampled = 0;
    const isAlive = () => alive;
    const commerce = commercePanels(path, { isAlive });
    // Bans are global and for operators only (rest.md §9): an anchor does not see the panel.
    const bans = user.role === 'operator' ? bansPanel({ isAlive }) : null;

    // Header: title, status and lifecycle.
    const status = h('span', { class: 'room-status' });
    const actions = h('span', { class: 'actions' });
    const socketState = h('span', { class: 'socket-state', role: 'status' });
    const heading = h('h1', { id: 'room-title', text: room.title });
    function showRoom() {
      heading.textContent = room.title;
      clear(status).append(statusBadge(room.status));
      clear(actions).append(...actionButtons(room, refreshRoom));
    }
    async function refreshRoom() {
      try {
        room = await api('GET', path);
        if (alive) showRoom();
      } catch (err) {
        fail(err);
      }
    }

    // Numbers.
    const tiles = h(
      'div',
      { class: 'tiles' },
      tile('room.online', 'stat-online'),
      tile('room.peak', 'stat-peak'),
      tile('room.comments', 'stat-comments'),
      tile('room.likes', 'stat-likes'),
      tile('room.uv', 'stat-uv'),
    );
    const setStat = (id, value) => {
      const el = tiles.querySelector(`#${id}`);
      if (el) el.textContent = String(value);
    };
    function showOnline(count) {
      online = count;
      peak = Math.max(peak, count);
      setStat('stat-online', online);
      setStat('stat-peak', peak);
    }

    // The comment stream.
    const stream = h('ol', { class: 'stream', id: 'stream', 'aria-labelledby': 'stream-title' });
    const streamEmpty = h('p', { class: 'hint', i18n: 'stream.empty' });
    const rows = new Map();
    function addComment(dm) {
      if (rows.has(dm.seq)) return;
      const who = dm.nick || dm.uid;
      const row = h(
        'li',
        { class: `comment role-${dm.role}`, 'data-seq': dm.seq, 'data-uid': dm.uid },
        h('time', { datetime: new Date(dm.ts).toISOString(), text: time(dm.ts) }),
        h('span', { class: 'nick', text: who, title: dm.uid }),
        h('span', { class: 'text', text: dm.text }),
        h(
          'span',
          { class: 'row-actions' },
          h('button', {
            type: 'button',
            class: 'small',
            i18n: 'stream.retract',
            i18nLabel: 'stream.retract.label',
            args: { nick: who, text: dm.text },
            onclick: async (event) => {
              const button = event.currentTarget;
              button.disabled = true;
              try {
                await api('DELETE', `${path}/messages/${dm.seq}`);
                removeComment(dm.seq);
                say(t('stream.retracted', { seq: dm.seq }));
              } catch (err) {
                fail(err);
                button.disabled = false;
              }
            },
          }),
          dm.role === 'viewer'
            ? h('button', {
                type: 'button',
                class: 'small',
                i18n: 'stream.mute',
                i18nLabel: 'stream.mute.label',
                args: { nick: who },
                onclick: () => {
                  muteUid.value = dm.uid;
                  muteDuration.focus();
                },
              })
            : null,
          dm.role === 'viewer' && bans
            ? h('button', {
                type: 'button',
                class: 'small',
                i18n: 'stream.ban',
                i18nLabel: 'stream.ban.label',
                args: { nick: who },
                onclick: () => bans.fill(dm.uid),
              })
            : null,
        ),
      );
      rows.set(dm.seq, row);
      stream.prepend(row);
      streamEmpty.hidden = true;
      while (rows.size > STREAM_MAX) {
        const oldest = rows.keys().next().value;
        removeComment(oldest);
      }
    }
    function removeComment(seq) {
      const row = rows.get(seq);
      if (row) row.remove();
      rows.delete(seq);
      streamEmpty.hidden = rows.size > 0;
    }

    // Notices.
    const noticeText = h('input', { name: 'notice', required: true, maxlength: 500 });
    const noticeLevel = h(
      'select',
      { name: 'level' },
      ...['info', 'warn', 'alert'].map((l) => h('option', { value: l, i18n: `notice.level.${l}` })),
    );
    const noticeForm = h(
      'form',
      { class: 'row-form' },
      field('notice.text', noticeText, 'grow'),
      field('notice.level', noticeLevel),
      h('button', { type: 'submit', i18n: 'notice.send' }),
    );
    noticeForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      try {
        await api('POST', `${path}/notices`, { text: noticeText.value, level: noticeLevel.value });
        noticeText.value = '';
        say(t('notice.sent'));
      } catch (err) {
        fail(err);
      }
    });
    const notices = h('ul', { class: 'notices' });

    // Slow mode.
    const slowSeconds = h('input', {
      name: 'slow',
      type: 'number',
      min: 0,
      max: 3600,
      step: 1,
      required: true,
      value: '10',
    });
    const slowNow = h('p', { class: 'hint', id: 'slow-now', i18n: 'slow.current.unknown' });
    function showSlow(value, until) {
      const args = { value: `${value} s`, until: until ? time(until, true) : '' };
      slowNow.dataset.i18nArgs = JSON.stringify(args);
      slowNow.dataset.i18n = !value ? 'slow.current.off' : until ? 'slow.current.until' : 'slow.current';
      slowNow.dataset.seconds = String(value);
      slowNow.textContent = t(slowNow.dataset.i18n, args);
    }
    async function readSlow() {
      try {
        const mode = await api('GET', `${path}/slow-mode`);
        if (alive) showSlow(mode.seconds, mode.until);
      } catch {
        // The next round tries again.
      }
    }
    async function setSlow(seconds) {
      try {
        const answer = await api('POST', `${path}/slow-mode`, { seconds });
        showSlow(answer.slow_mode, null);
      } catch (err) {
        fail(err);
      }
    }
    const slowForm = h(
      'form',
      { class: 'row-form' },
      field('slow.seconds', slowSeconds, 'grow'),
      h('button', { type: 'submit', i18n: 'slow.set' }),
      h('button', { type: 'button', i18n: 'slow.off', onclick: () => setSlow(0) }),
    );
    slowForm.addEventListener('submit', (event) => {
      event.preventDefault();
      setSlow(Number.parseInt(slowSeconds.value, 10));
    });

    // Mutes.
    const muteUid = h('input', { name: 'mute-uid', required: true, maxlength: 64 });
    const muteDuration = h(
      'select',
      { name: 'duration' },
      ...DURATIONS.map((s) => h('option', { value: s, i18n: `duration.${s}` })),
    );
    muteDuration.value = '600';
    const muteReason = h('input', { name: 'reason', maxlength: 200 });
    const muteForm = h(
      'form',
      { class: 'row-form' },
      field('mutes.uid', muteUid),
      field('mutes.duration', muteDuration),
      field('mutes.reason', muteReason, 'grow'),
      h('button', { type: 'submit', i18n: 'mutes.add' }),
    );
    const muteList = h('ul', { class: 'list', id: 'mute-list' });
    async function loadMutes() {
      let mutes;
      try {
        mutes = (await api('GET', `${path}/mutes`)).mutes;
      } catch {
        return;
      }
      if (!alive) return;
      clear(muteList);
      if (!mutes.length) muteList.append(h('li', { class: 'hint', i18n: 'mutes.empty' }));
      for (const mute of mutes) {
        muteList.append(
          h(
            'li',
            { 'data-uid': mute.uid },
            h('span', { class: 'nick', text: mute.uid }),
            h('span', { class: 'sub', text: t('mutes.until', { time: time(mute.until, true) }) }),
            mute.reason ? h('span', { class: 'sub', text: mute.reason }) : null,
            h('button', {
              type: 'button',
              class: 'small',
              i18n: 'mutes.lift',
              i18nLabel: 'mutes.lift.label',
              args: { uid: mute.uid },
              onclick: async () => {
                try {
                  await api('DELETE', `${path}/mutes/${encodeURIComponent(mute.uid)}`);
                  say(t('mutes.lifted', { uid: mute.uid }));
                } catch (err) {
                  fail(err);
                }
                loadMutes();
              },
            }),
          ),
        );
      }
    }
    muteForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      const payload = { uid: muteUid.value.trim(), seconds: Number(muteDuration.value) };
      if (muteReason.value.trim()) payload.reason = muteReason.value.trim();
      try {
        await api('POST', `${path}/mutes`, payload);
        say(t('mutes.done', { uid: payload.uid }));
        muteUid.value = '';
        muteReason.value = '';
      } catch (err) {
        fail(err);
      }
      loadMutes();
    });

    // The review queue: held comments, each released or dropped once.
    const reviewList = h('ul', { class: 'list', id: 'review-list' });
    const handled = new Set();
    async function loadReview() {
      let items;
      try {
        items = (await api('GET', `${path}/moderation/review?limit=100`)).items;
      } catch {
        return;
      }
      if (!alive) return;
      clear(reviewList);
      items = items.filter((item) => !handled.has(item.id));
      if (!items.length) reviewList.append(h('li', { class: 'hint', i18n: 'review.empty' }));
      for (const item of items) reviewList.append(reviewRow(item));
    }
    function reviewRow(item) {
      const comment = item.comment || {};
      const args = { uid: comment.uid ?? '?', text: comment.text ?? '' };
      const row = h(
        'li',
        { 'data-item': item.id },
        h('span', { class: 'nick', text: comment.nick || comment.uid || '?' }),
        h('span', { class: 'text', text: comment.text ?? '' }),
        h('span', { class: 'sub', i18n: 'review.rule', args: { rule: item.rule ?? '' } }),
      );
      const take = (action) => async () => {
        for (const b of row.querySelectorAll('button')) b.disabled = true;
        try {
          const answer = await api('POST', `${path}/moderation/review/${encodeURIComponent(item.id)}/${action}`);
          handled.add(item.id);
          row.remove();
          say(action === 'release' ? t('review.released', { seq: answer.seq }) : t('review.dropped'));
        } catch (err) {
          fail(err);
          // Handled elsewhere (409): it will not come back in the queue.
          if (err.status === 409) {
            handled.add(item.id);
            row.remove();
          } else {
            for (const b of row.querySelectorAll('button')) b.disabled = false;
          }
        }
      };
      row.append(
        h('button', { type: 'button', class: 'small', i18n: 'review.release', i18nLabel: 'review.release.label', args, onclick: take('release') }),
        h('button', { type: 'button', class: 'small danger', i18n: 'review.drop', i18nLabel: 'review.drop.label', args, onclick: take('drop') }),
      );
      return row;
    }

    // The moderation log, newest first, read onwards from the last id seen.
    const logList = h('ol', { class: 'list log', id: 'log-list' });
    let logNext = null;
    async function loadLog() {
      let page;
      try {
        const after = logNext ? `&after=${encodeURIComponent(logNext)}` : '';
        page = await api('GET', `${path}/moderation/events?count=100${after}`);
      } catch {
        return;
      }
      if (!alive) return;
      logNext = page.next;
      if (page.events.length) logList.querySelector('.hint')?.remove();
      for (const event of page.events) {
        const key = `log.action.${event.action}`;
        const tag = t(key) === key ? { class: 'tag', text: event.action } : { class: 'tag', i18n: key };
        logList.prepend(
          h(
            'li',
            {},
            h('time', { text: time(Number(event.ts)) }),
            h('span', tag),
            h('span', { class: 'nick', text: event.uid || '' }),
            h('span', { class: 'sub', text: [event.by, event.rule].filter(Boolean).join(' · ') }),
          ),
        );
      }
      while (logList.children.length > LOG_MAX) logList.lastElementChild.remove();
      if (!logList.children.length) logList.append(h('li', { class: 'hint', i18n: 'log.empty' }));
    }

    // Alerts for staff (a notice with `to`): a banner until dismissed.
    function alertBanner(text) {
      const banner = h(
        'div',
        { class: 'alert-banner', role: 'alert' },
        h('span', { i18n: 'alert.banner', args: { text } }),
        h('button', {
          type: 'button',
          class: 'link',
          i18nLabel: 'alert.dismiss',
          text: '×',
          onclick: () => banner.remove(),
        }),
      );
      document.getElementById('alerts').append(banner);
    }

    function onMessage(msg) {
      commerce.onMessage(msg);
      switch (msg.t) {
        case 'welcome':
          room = msg.room;
          showRoom();
          showOnline(msg.online);
          if (!msg.recovered) {
            for (const seq of [...rows.keys()]) removeComment(seq);
          }
          for (const dm of msg.history) addComment(dm);
          break;
        case 'dm':
          addComment(msg);
          break;
        case 'retract':
          removeComment(msg.seq);
          break;
        case 'online':
          showOnline(msg.count);
          break;
        case 'room':
          room = msg;
          showRoom();
          break;
        case 'notice':
          if (Array.isArray(msg.to)) alertBanner(msg.text);
          else {
            notices.prepend(h('li', { class: `notice level-${msg.level}`, i18n: 'notice.received', args: { text: msg.text } }));
            while (notices.children.length > 5) notices.lastElementChild.remove();
          }
          break;
        default:
          break;
      }
    }

    function onState(state) {
      const key = { connecting: 'room.socket.connecting', live: 'room.socket.live', retry: 'room.socket.retry', closed: 'room.socket.closed' }[state];
      socketState.dataset.i18n = key;
      socketState.textContent = t(key);
      socketState.className = `socket-state state-${state}`;
    }

    chart = new RoomChart();
    clear(view).append(
      h(
        'div',
        { class: 'room' },
        h(
          'div',
          { class: 'room-head' },
          h('a', { href: '#/rooms', class: 'back', i18n: 'room.back' }),
          heading,
          status,
          actions,
          socketState,
        ),
        h(
          'div',
          { class: 'room-grid' },
          h(
            'div',
            { class: 'room-main' },
            tiles,
            chart.element,
            h(
              'section',
              { class: 'card', 'aria-labelledby': 'stream-title' },
              h('h2', { id: 'stream-title', i18n: 'stream.title' }),
              streamEmpty,
              stream,
            ),
          ),
          h(
            'div',
            { class: 'room-side' },
            panel('review', 'review.title', h('button', { type: 'button', class: 'small', i18n: 'review.refresh', onclick: loadReview }), reviewList),
            panel('notice', 'notice.title', noticeForm, notices),
            panel('slow', 'slow.title', slowForm, slowNow),
            panel('mutes', 'mutes.title', muteForm, muteList),
            bans ? bans.element : null,
            panel('log', 'log.title', h('button', { type: 'button', class: 'small', i18n: 'log.refresh', onclick: loadLog }), logList),
          ),
        ),
        h('h2', { class: 'section-title', id: 'commerce-title', i18n: 'commerce.title' }),
        h('div', { class: 'commerce-grid', 'aria-labelledby': 'commerce-title', role: 'group' }, ...commerce.panels),
      ),
    );
    showRoom();
    chart.mount();

    socket = new LiveSocket(roomId, { onMessage, onState });
    socket.start();

    // One point a second. Comments per second come from the numbering (seq), so comments
    // sampled out of a busy room's batches still count.
    stops.push(
      every(1000, () => {
        const cps = socket.numbered - sampled;
        sampled = socket.numbered;
        chart.push(Math.floor(Date.now() / 1000), online, cps);
      }),
    );
    stops.push(
      every(5000, async () => {
        try {
          const stats = await api('GET', `${path}/stats`);
          if (!alive) return;
          peak = Math.max(peak, stats.peak_online);
          setStat('stat-peak', peak);
          setStat('stat-comments', stats.comments);
          setStat('stat-likes', stats.likes);
          setStat('stat-uv', stats.uv);
        } catch {
          // The live numbers go on; the next round tries again.
        }
      }),
    );
    stops.push(every(3000, loadReview));
    stops.push(every(3000, loadLog));
    stops.push(every(10000, loadMutes));
    // The room breaker may turn slow mode on by itself: read what is in force.
    stops.push(every(10000, readSlow));
    stops.push(...commerce.start());
    if (bans) stops.push(bans.start());
  }

  return leave;
}
