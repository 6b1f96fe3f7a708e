// Merchant webhooks (operator only): endpoints, their deliveries, replays and test events,
// each a visible call to /api/v1/webhooks (docs/webhooks.md §4).
import { api } from './api.js';
import { clear, every, field, fill, h } from './dom.js';
import { t, time } from './i18n.js';
import { fail, say } from './notify.js';

// The types an endpoint may subscribe to: webhooks/events.py EVENT_TYPES, in its order
// (tests/console/test_webhooks.py checks that the two lists agree).
export const EVENT_TYPES = [
  'order.reserved',
  'order.paid',
  'order.cancelled',
  'order.expired',
  'order.payment_late',
  'order.refund_requested',
  'order.refunded',
  'red_packet.sent',
  'red_packet.finished',
  'lottery.opened',
  'lottery.drawn',
  'sale.opened',
  'sale.sold_out',
  'sale.closed',
  'room.started',
  'room.ended',
  'alert.raised',
  'alert.cleared',
];
const DELIVERIES_SHOWN = 50;
const CONFIRM_MS = 5000;

/** Copy `text`: the Clipboard API, or the selected field when the page may not use it. */
async function copy(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    input.select();
    return document.execCommand('copy');
  }
}

export function renderWebhooks(view) {
  let alive = true;
  let shown = null; // the endpoint whose deliveries are open
  let stopDeliveries = null;

  // -- create ------------------------------------------------------------------
  const url = h('input', { name: 'wh-url', type: 'url', required: true, maxlength: 2048, placeholder: 'https://' });
  const room = h('input', { name: 'wh-room', maxlength: 64, pattern: '[A-Za-z0-9_-]{1,64}' });
  const boxes = EVENT_TYPES.map((type) => h('input', { type: 'checkbox', name: 'wh-event', value: type }));
  const events = h(
    'fieldset',
    { class: 'wh-events' },
    h('legend', { i18n: 'wh.events' }),
    h('button', {
      type: 'button',
      class: 'small',
      i18n: 'wh.events.all',
      onclick: () => {
        const all = boxes.every((b) => b.checked);
        for (const b of boxes) b.checked = !all;
      },
    }),
    h('div', { class: 'wh-event-grid' }, ...boxes.map((box) => h('label', { class: 'check' }, box, h('code', { text: box.value })))),
  );
  const create = h(
    'form',
    { class: 'card', 'aria-labelledby': 'wh-new-title' },
    h('h2', { id: 'wh-new-title', i18n: 'wh.new' }),
    h('div', { class: 'row-form' }, field('wh.url', url, 'grow'), field('wh.room', room)),
    events,
    h('button', { type: 'submit', i18n: 'wh.create' }),
  );

  // The secret of a new endpoint: shown once, here, until dismissed or the page is left.
  const secretInput = h('input', { name: 'wh-secret', readonly: true, class: 'mono', spellcheck: 'false' });
  const secretFor = h('p', { class: 'sub', id: 'wh-secret-for' });
  const secretBox = h(
    'section',
    { class: 'card wh-secret', id: 'wh-secret', 'aria-labelledby': 'wh-secret-title', hidden: true },
    h('h2', { id: 'wh-secret-title', i18n: 'wh.secret.title' }),
    h('p', { class: 'hint', i18n: 'wh.secret.hint' }),
    secretFor,
    h(
      'div',
      { class: 'row-form' },
      field('wh.secret', secretInput, 'grow'),
      h('button', {
        type: 'button',
        i18n: 'wh.secret.copy',
        onclick: async () => {
          if (await copy(secretInput.value, secretInput)) say(t('wh.secret.copied'));
          else say(t('wh.secret.copy_failed'), { error: true });
        },
      }),
      h('button', {
        type: 'button',
        class: 'small',
        i18n: 'wh.secret.done',
        onclick: () => {
          secretInput.value = '';
          secretBox.hidden = true;
        },
      }),
    ),
  );

  create.addEventListener('submit', async (event) => {
    event.preventDefault();
    const payload = { url: url.value.trim(), events: boxes.filter((b) => b.checked).map((b) => b.value) };
    if (room.value.trim()) payload.room = room.value.trim();
    try {
      const made = await api('POST', '/webhooks', payload);
      secretInput.value = made.secret;
      secretFor.dataset.i18n = 'wh.secret.for';
      secretFor.dataset.i18nArgs = JSON.stringify({ url: made.url });
      secretFor.textContent = t('wh.secret.for', { url: made.url });
      secretBox.hidden = false;
      say(t('wh.created', { url: made.url }));
      url.value = '';
      room.value = '';
      for (const b of boxes) b.checked = false;
    } catch (err) {
      fail(err);
    }
    load();
  });

  // -- endpoints ----------------------------------------------------------------
  const list = h('ul', { class: 'list items', id: 'wh-list' });

  // Deleting drops the endpoint's queue too: the first click arms, a second within 5 s acts.
  function confirming(button, args, action) {
    let armed = null;
    const show = (key) => {
      button.dataset.i18n = key;
      button.dataset.i18nLabel = `${key}.label`;
      button.textContent = t(key);
      button.setAttribute('aria-label', t(`${key}.label`, args));
    };
    button.addEventListener('click', async () => {
      if (!armed) {
        show('wh.delete.confirm');
        armed = setTimeout(() => {
          armed = null;
          show('wh.delete');
        }, CONFIRM_MS);
        return;
      }
      clearTimeout(armed);
      armed = null;
      await action();
    });
    return button;
  }

  function endpointRow(ep) {
    const args = { url: ep.url };
    const del = confirming(
      h('button', { type: 'button', class: 'small danger', i18n: 'wh.delete', i18nLabel: 'wh.delete.label', args }),
      args,
      async () => {
        try {
          await api('DELETE', `/webhooks/${encodeURIComponent(ep.id)}`);
          say(t('wh.deleted', args));
          if (shown === ep.id) closeDeliveries();
        } catch (err) {
          fail(err);
        }
        load();
      },
    );
    return h(
      'li',
      { class: 'item', 'data-id': ep.id },
      h(
        'div',
        { class: 'item-head' },
        h('code', { class: 'wh-url', text: ep.url }),
        h('span', { class: `badge wh-${ep.status}`, i18n: `wh.status.${ep.status}` }),
      ),
      ep.disabled_reason ? h('p', { class: 'sub error-text', text: ep.disabled_reason }) : null,
      h('p', { class: 'sub' }, h('span', { i18n: 'wh.events.list', args: { events: ep.events.join(', ') } })),
      h('p', { class: 'sub', i18n: ep.room ? 'wh.room.one' : 'wh.room.all', args: { room: ep.room || '' } }),
      h(
        'div',
        { class: 'actions' },
        h('button', {
          type: 'button',
          class: 'small',
          i18n: 'wh.test',
          i18nLabel: 'wh.test.label',
          args,
          onclick: async () => {
            try {
              const sent = await api('POST', `/webhooks/${encodeURIComponent(ep.id)}/test`);
              say(t('wh.test.sent', { id: sent.id }));
              openDeliveries(ep);
            } catch (err) {
              fail(err);
            }
          },
        }),
        h('button', {
          type: 'button',
          class: 'small',
          i18n: 'wh.deliveries',
          i18nLabel: 'wh.deliveries.label',
          args,
          onclick: () => openDeliveries(ep),
        }),
        ep.status === 'disabled'
          ? h('button', {
              type: 'button',
              class: 'small',
              i18n: 'wh.enable',
              i18nLabel: 'wh.enable.label',
              args,
              onclick: async () => {
                try {
                  await api('POST', `/webhooks/${encodeURIComponent(ep.id)}/enable`);
                  say(t('wh.enabled', args));
                } catch (err) {
                  fail(err);
                }
                load();
              },
            })
          : null,
        del,
      ),
    );
  }

  async function load() {
    let endpoints;
    try {
      endpoints = (await api('GET', '/webhooks')).webhooks;
    } catch (err) {
      if (alive) fail(err);
      return;
    }
    if (!alive) return;
    fill(list, endpoints.length ? endpoints.map(endpointRow) : h('li', { class: 'hint', i18n: 'wh.empty' }));
  }

  // -- deliveries -----------------------------------------------------------------
  const deliveriesTitle = h('h2', { id: 'wh-deliveries-title' });
  const deliveries = h('ul', { class: 'list items', id: 'wh-deliveries' });
  const deliveriesBox = h(
    'section',
    { class: 'card', id: 'wh-deliveries-panel', 'aria-labelledby': 'wh-deliveries-title', hidden: true },
    deliveriesTitle,
    h('button', { type: 'button', class: 'small', i18n: 'wh.deliveries.close', onclick: () => closeDeliveries() }),
    deliveries,
  );

  function deliveryRow(endpointId, d) {
    const last = d.attempts.length ? d.attempts[d.attempts.length - 1] : null;
    const code = last ? (last.status === null ? last.error || '—' : String(last.status)) : '—';
    return h(
      'li',
      { class: 'item', 'data-id': d.id, 'data-status': d.status },
      h(
        'div',
        { class: 'item-head' },
        h('code', { text: d.type }),
        h('span', { class: `badge wh-d-${d.status}`, i18n: `wh.d.status.${d.status}` }),
        h('time', { text: time(d.created_at, true) }),
      ),
      h('p', { class: 'sub mono', text: d.id }),
      h(
        'p',
        { class: 'sub wh-d-facts' },
        h('span', { class: 'wh-d-code', i18n: 'wh.d.code', args: { code } }),
        ' · ',
        h('span', { class: 'wh-d-latency', i18n: 'wh.d.latency', args: { ms: last ? last.latency_ms : '—' } }),
        ' · ',
        h('span', { class: 'wh-d-attempts', i18n: 'wh.d.attempts', args: { n: d.attempts.length } }),
        d.next_attempt_at ? ' · ' : null,
        d.next_attempt_at ? h('span', { i18n: 'wh.d.next', args: { time: time(d.next_attempt_at, true) } }) : null,
      ),
      h(
        'div',
        { class: 'actions' },
        h('button', {
          type: 'button',
          class: 'small',
          i18n: 'wh.replay',
          i18nLabel: 'wh.replay.label',
          args: { id: d.id },
          onclick: async () => {
            try {
              await api('POST', `/webhooks/${encodeURIComponent(endpointId)}/deliveries/${encodeURIComponent(d.id)}/replay`);
              say(t('wh.replayed', { id: d.id }));
            } catch (err) {
              fail(err);
            }
            readDeliveries(endpointId);
          },
        }),
      ),
    );
  }

  async function readDeliveries(endpointId) {
    let found;
    try {
      found = await api('GET', `/webhooks/${encodeURIComponent(endpointId)}/deliveries?limit=${DELIVERIES_SHOWN}`);
    } catch (err) {
      if (alive && shown === endpointId) fail(err);
      return;
    }
    if (!alive || shown !== endpointId) return;
    const items = found.deliveries || [];
    fill(deliveries, items.length ? items.map((d) => deliveryRow(endpointId, d)) : h('li', { class: 'hint', i18n: 'wh.d.empty' }));
  }

  function openDeliveries(ep) {
    closeDeliveries();
    shown = ep.id;
    deliveriesTitle.dataset.i18n = 'wh.deliveries.title';
    deliveriesTitle.dataset.i18nArgs = JSON.stringify({ url: ep.url });
    deliveriesTitle.textContent = t('wh.deliveries.title', { url: ep.url });
    clear(deliveries);
    deliveriesBox.hidden = false;
    // Pending deliveries change as they are tried: read again every 2 s while open.
    stopDeliveries = every(2000, () => readDeliveries(ep.id));
  }

  function closeDeliveries() {
    if (stopDeliveries) stopDeliveries();
    stopDeliveries = null;
    shown = null;
    deliveriesBox.hidden = true;
  }

  view.append(
    h(
      'section',
      { class: 'webhooks', 'aria-labelledby': 'wh-title' },
      h('a', { href: '#/rooms', class: 'back', i18n: 'room.back' }),
      h('h1', { id: 'wh-title', i18n: 'wh.title' }),
      h('p', { class: 'hint', i18n: 'wh.hint' }),
      create,
      secretBox,
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'wh-list-title' },
        h('h2', { id: 'wh-list-title', i18n: 'wh.list' }),
        h('button', { type: 'button', class: 'small', i18n: 'rooms.refresh', onclick: load }),
        list,
      ),
      deliveriesBox,
    ),
  );
  load();
  return () => {
    alive = false;
    closeDeliveries();
  };
}
