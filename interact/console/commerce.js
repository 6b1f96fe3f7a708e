// Commerce in the live room: red packets, lotteries (with the draw verified in the page),
// flash sales with live stock, the room's orders with refunds, and the money ledger.
import { api } from './api.js';
import { clear, every, field, fill, h, panel } from './dom.js';
import { t, time, yuan } from './i18n.js';
import { parseYuan, utf8Length } from './money.js';
import { verifyDraw } from './fairness.js';
import { fail, say } from './notify.js';

const SHOWN = 20; // packets, lotteries and sales kept on screen each
const LEDGER_MAX = 200;
const ORDER_PAGES = 4; // × 500 orders read per round
export const REFUND_REASON_BYTES = 80; // WeChat Pay counts bytes (rest.md §10)

function short(id) {
  const dot = id.indexOf('.');
  return dot < 0 ? id : id.slice(dot + 1);
}

function setText(el, key, args) {
  el.dataset.i18n = key;
  if (args) el.dataset.i18nArgs = JSON.stringify(args);
  else delete el.dataset.i18nArgs;
  el.textContent = t(key, args);
}

/** A yuan field: the amount as typed, its reading in fen shown live, the fen or null. */
function moneyInput(name) {
  const input = h('input', { name, inputmode: 'decimal', autocomplete: 'off', required: true, maxlength: 16 });
  const shown = h('span', { class: 'sub money-preview', 'aria-live': 'polite' });
  const read = () => {
    const { fen, reason } = parseYuan(input.value);
    if (input.value.trim() === '') clear(shown);
    else if (fen === null) setText(shown, reason);
    else setText(shown, 'money.preview', { yuan: yuan(fen), fen });
    shown.classList.toggle('error-text', fen === null && input.value.trim() !== '');
    return fen;
  };
  input.addEventListener('input', read);
  return { input, shown, read };
}

function keep(map, list, id, row) {
  map.set(id, row);
  list.prepend(row.el);
  while (map.size > SHOWN) {
    const oldest = map.keys().next().value;
    map.get(oldest).el.remove();
    map.delete(oldest);
  }
}

function options(values, prefix) {
  return values.map((v) => h('option', { value: v, i18n: `${prefix}.${v}` }));
}

export function commercePanels(path, { isAlive }) {
  const stops = [];

  // -- red packets ---------------------------------------------------------------
  const rpAmount = moneyInput('rp-amount');
  const rpCount = h('input', { name: 'rp-count', type: 'number', min: 1, max: 2000, step: 1, required: true, value: '5' });
  const rpSplit = h('select', { name: 'rp-split' }, ...options(['random', 'equal'], 'rp.split'));
  const rpExpires = h('select', { name: 'rp-expires' }, ...options([60, 300, 3600, 86400], 'rp.expires'));
  rpExpires.value = '3600';
  const rpPassword = h('input', { name: 'rp-password', maxlength: 20 });
  const rpForm = h(
    'form',
    { class: 'row-form' },
    h('div', { class: 'field grow' }, field('rp.amount', rpAmount.input), rpAmount.shown),
    field('rp.count', rpCount),
    field('rp.split', rpSplit),
    field('rp.expires', rpExpires),
    field('rp.password', rpPassword, 'grow'),
    h('button', { type: 'submit', i18n: 'rp.send' }),
  );
  const rpList = h('ul', { class: 'list items', id: 'rp-list' }, h('li', { class: 'hint', i18n: 'rp.empty' }));
  const packets = new Map();

  function packetRow(id) {
    let row = packets.get(id);
    if (row) return row;
    const el = h('li', { class: 'item', 'data-id': id });
    row = { el, record: null, done: false };
    rpList.querySelector(':scope > .hint')?.remove();
    keep(packets, rpList, id, row);
    return row;
  }

  function showPacket(row, p) {
    row.record = p;
    const claims = p.claims || [];
    const claimed = claims.reduce((sum, c) => sum + c.amount_fen, 0);
    fill(row.el,
      h(
        'div',
        { class: 'item-head' },
        h('strong', { class: 'num', text: yuan(p.total_fen) }),
        h('span', { i18n: 'rp.shares', args: { count: p.count, split: t(`rp.split.${p.split}`) } }),
        h('span', { class: `badge rp-${p.status || 'open'}`, i18n: `rp.status.${p.status || 'open'}` }),
      ),
      h('div', {
        class: 'sub rp-left',
        'data-left': p.left,
        i18n: 'rp.progress',
        args: { left: p.left, count: p.count, claimed: yuan(claimed) },
      }),
      p.condition && p.condition.password ? h('div', { class: 'sub', i18n: 'rp.with.password', args: { password: p.condition.password } }) : null,
      claims.length
        ? h(
            'ol',
            { class: 'claims', i18nLabel: 'rp.claims' },
            ...claims.map((c) => h('li', { 'data-uid': c.uid }, h('span', { class: 'nick', text: c.uid }), h('span', { class: 'num', text: yuan(c.amount_fen) }))),
          )
        : null,
      p.luckiest ? h('div', { class: 'sub rp-luckiest', i18n: 'rp.luckiest', args: { uid: p.luckiest.uid, amount: yuan(p.luckiest.amount_fen) } }) : null,
      p.refund ? h('div', { class: 'sub', i18n: 'rp.refunded', args: { amount: yuan(p.refund.amount_fen), shares: p.refund.shares } }) : null,
      h('div', { class: 'sub mono', text: short(p.id), title: p.id }),
    );
  }

  async function readPacket(id) {
    try {
      const p = await api('GET', `/red-packets/${encodeURIComponent(id)}`);
      if (!isAlive()) return;
      const row = packetRow(id);
      row.done = p.status !== 'open';
      showPacket(row, p);
    } catch {
      // The next round tries again.
    }
  }

  rpForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const fen = rpAmount.read();
    if (fen === null) {
      say(t('rp.bad.amount', { reason: t(parseYuan(rpAmount.input.value).reason) }), { error: true });
      rpAmount.input.focus();
      return;
    }
    const payload = {
      total_fen: fen,
      count: Number.parseInt(rpCount.value, 10),
      split: rpSplit.value,
      expires_in: Number(rpExpires.value),
    };
    if (rpPassword.value.trim()) payload.condition = { kind: 'password', password: rpPassword.value.trim() };
    try {
      const p = await api('POST', `${path}/red-packets`, payload);
      showPacket(packetRow(p.id), p);
      say(t('rp.sent', { amount: yuan(p.total_fen), count: p.count }));
    } catch (err) {
      fail(err);
    }
  });

  // -- lotteries -------------------------------------------------------------------
  const lotTitle = h('input', { name: 'lot-prize', required: true, maxlength: 100 });
  const lotKind = h('select', { name: 'lot-kind' }, ...options(['goods', 'coupon', 'cash'], 'lot.kind'));
  const lotAmount = moneyInput('lot-amount');
  lotAmount.input.required = false;
  const lotWinners = h('input', { name: 'lot-winners', type: 'number', min: 1, max: 10000, step: 1, required: true, value: '1' });
  const lotCondition = h('select', { name: 'lot-condition' }, ...options(['enter', 'password', 'watch'], 'lot.condition'));
  const lotPassword = h('input', { name: 'lot-password', maxlength: 40 });
  const lotMinutes = h('input', { name: 'lot-minutes', type: 'number', min: 1, max: 999, step: 1, value: '5' });
  const lotDuration = h('input', { name: 'lot-duration', type: 'number', min: 1, max: 999, step: 1, required: true, value: '10' });
  const lotNewFirst = h('input', { type: 'checkbox', name: 'lot-new-first' });
  const passwordField = field('lot.password', lotPassword);
  const minutesField = field('lot.minutes', lotMinutes);
  const showCondition = () => {
    passwordField.hidden = lotCondition.value !== 'password';
    minutesField.hidden = lotCondition.value !== 'watch';
  };
  lotCondition.addEventListener('change', showCondition);
  showCondition();
  const lotForm = h(
    'form',
    { class: 'row-form' },
    field('lot.prize', lotTitle, 'grow'),
    field('lot.kind', lotKind),
    h('div', { class: 'field' }, field('lot.amount', lotAmount.input), lotAmount.shown),
    field('lot.winners', lotWinners),
    field('lot.condition', lotCondition),
    passwordField,
    minutesField,
    field('lot.duration', lotDuration),
    h('label', { class: 'check' }, lotNewFirst, h('span', { i18n: 'lot.new_first' })),
    h('button', { type: 'submit', i18n: 'lot.open' }),
  );
  const lotList = h('ul', { class: 'list items', id: 'lot-list' }, h('li', { class: 'hint', i18n: 'lot.empty' }));
  const lotteries = new Map();

  lotForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const prize = { title: lotTitle.value.trim(), kind: lotKind.value };
    if (lotAmount.input.value.trim()) {
      const fen = lotAmount.read();
      if (fen === null) {
        say(t('rp.bad.amount', { reason: t(parseYuan(lotAmount.input.value).reason) }), { error: true });
        return;
      }
      prize.amount_fen = fen;
    }
    const kind = lotCondition.value;
    const condition = { kind };
    if (kind === 'password') condition.password = lotPassword.value;
    if (kind === 'watch') condition.minutes = Number.parseInt(lotMinutes.value, 10);
    const payload = {
      prize,
      winners: Number.parseInt(lotWinners.value, 10),
      condition,
      duration: Number.parseInt(lotDuration.value, 10) * 60,
      new_first: lotNewFirst.checked,
    };
    try {
      const lot = await api('POST', `${path}/lotteries`, payload);
      showLottery(lotteryRow(lot.id), lot);
      say(t('lot.opened', { prize: lot.prize.title }));
    } catch (err) {
      fail(err);
    }
  });

  function lotteryRow(id) {
    let row = lotteries.get(id);
    if (row) return row;
    row = { el: h('li', { class: 'item', 'data-id': id }), record: null, verifier: null };
    lotList.querySelector(':scope > .hint')?.remove();
    keep(lotteries, lotList, id, row);
    return row;
  }

  function conditionText(c) {
    if (c.kind === 'password') return t('lot.cond.password', { password: c.password });
    if (c.kind === 'watch') return t('lot.cond.watch', { minutes: c.minutes });
    return t('lot.cond.enter');
  }

  function showLottery(row, lot) {
    const wasDrawn = row.record && row.record.status === 'drawn';
    row.record = lot;
    if (wasDrawn && row.verifier) return; // the verify form keeps what was typed into it
    const drawn = lot.status === 'drawn';
    const prize = lot.prize.amount_fen ? `${lot.prize.title} (${yuan(lot.prize.amount_fen)})` : lot.prize.title;
    const body = [
      h(
        'div',
        { class: 'item-head' },
        h('strong', { text: prize }),
        h('span', { i18n: 'lot.count', args: { winners: lot.winners_count } }),
        h('span', { class: `badge lot-${lot.status}`, i18n: `lot.status.${lot.status}` }),
      ),
      h('div', { class: 'sub', text: conditionText(lot.condition) }),
      h('div', { class: 'sub lot-entries', 'data-entries': lot.entries, i18n: 'lot.entries', args: { entries: lot.entries, at: time(lot.draw_at, true) } }),
      h('div', { class: 'proof-line' }, h('span', { class: 'sub', i18n: 'lot.commit' }), h('code', { class: 'mono lot-commit', text: lot.commit })),
    ];
    if (!drawn) {
      body.push(
        h('button', {
          type: 'button',
          class: 'small',
          i18n: 'lot.draw',
          i18nLabel: 'lot.draw.label',
          args: { prize: lot.prize.title },
          onclick: async (event) => {
            event.currentTarget.disabled = true;
            try {
              const done = await api('POST', `/lotteries/${encodeURIComponent(lot.id)}/draw`);
              showLottery(row, done);
              say(t('lot.drawn', { prize: done.prize.title }));
            } catch (err) {
              fail(err);
              readLottery(lot.id);
            }
          },
        }),
      );
    } else {
      body.push(
        h('div', { class: 'lot-winners', i18n: lot.winners.length ? 'lot.won' : 'lot.nobody', args: { winners: lot.winners.join('、'), unused: lot.unused } }),
        h('div', { class: 'proof-line' }, h('span', { class: 'sub', i18n: 'lot.secret' }), h('code', { class: 'mono lot-secret', text: lot.proof.secret })),
        h('div', { class: 'proof-line' }, h('span', { class: 'sub', i18n: 'lot.entries_sha256' }), h('code', { class: 'mono', text: lot.proof.entries_sha256 })),
      );
      row.verifier = verifier(lot);
      body.push(row.verifier);
    }
    clear(row.el).append(...body);
  }

  /** The in-page check: the published values, editable, re-run with Web Crypto. */
  function verifier(lot) {
    const commit = h('input', { name: 'verify-commit', class: 'mono', value: lot.commit, spellcheck: 'false' });
    const secret = h('input', { name: 'verify-secret', class: 'mono', value: lot.proof.secret, spellcheck: 'false' });
    const entrants = h('textarea', { name: 'verify-entrants', rows: 3, class: 'mono', spellcheck: 'false' });
    const prior = h('textarea', { name: 'verify-prior', rows: 2, class: 'mono', spellcheck: 'false' });
    const priorField = field('verify.prior', prior);
    priorField.hidden = !lot.proof.prior_winners_sha256;
    const result = h('div', { class: 'verify-result', role: 'status' });
    const form = h(
      'form',
      { class: 'verify', i18nLabel: 'verify.title', args: { prize: lot.prize.title } },
      h('h3', { i18n: 'verify.heading' }),
      field('verify.commit', commit),
      field('verify.secret', secret),
      field('verify.entrants', entrants),
      priorField,
      h('button', { type: 'submit', class: 'small', i18n: 'verify.run', i18nLabel: 'verify.run.label', args: { prize: lot.prize.title } }),
      result,
    );
    (async () => {
      try {
        const list = await api('GET', `/lotteries/${encodeURIComponent(lot.id)}/entries`);
        entrants.value = list.entrants.join('\n');
        if (lot.proof.prior_winners_sha256) prior.value = (await priorWinners(lot.id)).join('\n');
        form.dataset.ready = '1';
      } catch (err) {
        fail(err);
      }
    })();
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const lines = (text) => text.split('\n').map((s) => s.trim()).filter(Boolean);
      const report = await verifyDraw({
        commit: commit.value.trim(),
        secret: secret.value.trim(),
        lotteryId: lot.id,
        entrants: lines(entrants.value),
        winners: lot.winners_count,
        expectedWinners: lot.winners,
        entriesSha256: lot.proof.entries_sha256,
        priorWinners: lot.proof.prior_winners_sha256 ? lines(prior.value) : null,
        priorWinnersSha256: lot.proof.prior_winners_sha256 || null,
      });
      fill(result,
        h('p', { class: `verdict ${report.ok ? 'ok' : 'bad'}`, i18n: report.ok ? 'verify.ok' : 'verify.bad' }),
        h(
          'ul',
          { class: 'checks' },
          ...report.checks.map((c) =>
            h('li', { class: `check-${c.status}`, 'data-check': c.name }, h('span', { class: 'tag', i18n: `verify.${c.status}` }), h('span', { text: `${c.name}: ${c.message}` })),
          ),
        ),
        report.winners.length ? h('p', { class: 'sub', i18n: 'verify.recomputed', args: { winners: report.winners.join('、') } }) : null,
      );
      result.dataset.ok = report.ok ? '1' : '0';
    });
    return form;
  }

  /** For a `new_first` draw: the winners of the room's lotteries drawn before it, from the
   * ledger's `lot_drawn` events (fairness.md §3, "Where the inputs come from"). */
  async function priorWinners(lotteryId) {
    const out = [];
    let after = null;
    for (let page = 0; page < 20; page += 1) {
      const q = after ? `&after=${encodeURIComponent(after)}` : '';
      const answer = await api('GET', `${path}/ledger?count=1000${q}`);
      for (const e of answer.events) {
        if (e.type !== 'lot_drawn') continue;
        if (e.lottery === lotteryId) return out;
        if (e.winners) out.push(...e.winners.split(','));
      }
      if (!answer.events.length) break;
      after = answer.next;
    }
    return out;
  }

  async function readLottery(id) {
    try {
      const lot = await api('GET', `/lotteries/${encodeURIComponent(id)}`);
      if (isAlive()) showLottery(lotteryRow(id), lot);
    } catch {
      // The next round tries again.
    }
  }

  // -- flash sales -----------------------------------------------------------------
  const saleTitle = h('input', { name: 'sale-title', required: true, maxlength: 100 });
  const saleSku = h('input', { name: 'sale-sku', maxlength: 64 });
  const salePrice = moneyInput('sale-price');
  const saleStock = h('input', { name: 'sale-stock', type: 'number', min: 1, max: 10000000, step: 1, required: true, value: '10' });
  const saleLimit = h('input', { name: 'sale-limit', type: 'number', min: 1, max: 10000, step: 1, required: true, value: '1' });
  const saleReserve = h('select', { name: 'sale-reserve' }, ...options([300, 900, 3600], 'sale.reserve'));
  saleReserve.value = '900';
  const saleForm = h(
    'form',
    { class: 'row-form' },
    field('sale.title', saleTitle, 'grow'),
    field('sale.sku', saleSku),
    h('div', { class: 'field' }, field('sale.price', salePrice.input), salePrice.shown),
    field('sale.stock', saleStock),
    field('sale.limit', saleLimit),
    field('sale.reserve', saleReserve),
    h('button', { type: 'submit', i18n: 'sale.create' }),
  );
  const saleList = h('ul', { class: 'list items', id: 'sale-list' }, h('li', { class: 'hint', i18n: 'sale.empty' }));
  const sales = new Map();

  saleForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const fen = salePrice.read();
    if (fen === null) {
      say(t('rp.bad.amount', { reason: t(parseYuan(salePrice.input.value).reason) }), { error: true });
      salePrice.input.focus();
      return;
    }
    const payload = {
      title: saleTitle.value.trim(),
      price_fen: fen,
      stock: Number.parseInt(saleStock.value, 10),
      limit: Number.parseInt(saleLimit.value, 10),
      reserve_seconds: Number(saleReserve.value),
    };
    if (saleSku.value.trim()) payload.sku = saleSku.value.trim();
    try {
      const sale = await api('POST', `${path}/sales`, payload);
      showSale(saleRow(sale.id), sale);
      say(t('sale.created', { title: sale.title, price: yuan(sale.price_fen), stock: sale.stock }));
    } catch (err) {
      fail(err);
    }
  });

  function saleRow(id) {
    let row = sales.get(id);
    if (row) return row;
    const left = h('span', { class: 'num sale-left' });
    const bar = h('progress', { max: 1, value: 0 });
    row = { el: h('li', { class: 'item', 'data-id': id }), record: null, left, bar, detail: h('div', { class: 'sub' }) };
    saleList.querySelector(':scope > .hint')?.remove();
    keep(sales, saleList, id, row);
    return row;
  }

  function showLeft(row, left) {
    const stock = row.record ? row.record.stock : left;
    row.left.dataset.left = String(left);
    setText(row.left, 'sale.left', { left, stock });
    row.bar.max = Math.max(1, stock);
    row.bar.value = left;
    row.bar.dataset.i18nLabel = 'sale.left';
    row.bar.dataset.i18nArgs = JSON.stringify({ left, stock });
    row.bar.setAttribute('aria-label', t('sale.left', { left, stock }));
  }

  function showSale(row, sale) {
    const first = row.record === null;
    row.record = { ...row.record, ...sale };
    const s = row.record;
    if (first || !row.el.firstChild) {
      clear(row.el).append(
        h(
          'div',
          { class: 'item-head' },
          h('strong', { text: s.title }),
          h('span', { class: 'num', text: yuan(s.price_fen) }),
          s.sku ? h('span', { class: 'sub', text: s.sku }) : null,
        ),
        h('div', { class: 'stock-line' }, row.left, row.bar),
        row.detail,
      );
    }
    if (typeof s.left === 'number') showLeft(row, s.left);
    const ends = time(s.ends_at, true);
    if (typeof s.reserved === 'number') {
      setText(row.detail, 'sale.detail', { reserved: s.reserved, paid: s.paid, refunded: s.refunded, limit: s.limit, ends });
    } else setText(row.detail, 'sale.detail.short', { limit: s.limit, ends });
  }

  async function readSale(id) {
    try {
      const sale = await api('GET', `/sales/${encodeURIComponent(id)}`);
      if (isAlive()) showSale(saleRow(id), sale);
    } catch {
      // The next round tries again.
    }
  }

  // -- orders ------------------------------------------------------------------------
  const orderList = h('ul', { class: 'list items', id: 'order-list' }, h('li', { class: 'hint', i18n: 'order.empty' }));
  const orders = new Map();
  const REFUNDABLE = new Set(['paid', 'paid_late']);

  function orderRow(order) {
    let row = orders.get(order.id);
    if (!row) {
      row = {
        el: h('li', { class: 'item order', 'data-id': order.id }),
        status: h('span', { class: 'badge' }),
        actions: h('span', { class: 'row-actions' }),
        refunding: false,
      };
      orderList.querySelector(':scope > .hint')?.remove();
      orders.set(order.id, row);
      orderList.prepend(row.el);
      row.el.append(
        h(
          'div',
          { class: 'item-head' },
          h('span', { class: 'nick', text: order.uid }),
          h('span', { class: 'num', text: `×${order.qty}` }),
          h('strong', { class: 'num', text: yuan(order.amount_fen) }),
          row.status,
          row.actions,
        ),
        h('div', { class: 'sub', text: `${short(order.id)} · ${time(order.created_at, true)}` }),
      );
    }
    return row;
  }

  function showOrder(order) {
    const row = orderRow(order);
    row.order = order;
    row.el.dataset.status = order.status;
    row.status.className = `badge order-${order.status}`;
    setText(row.status, `order.status.${order.status}`);
    if (row.refunding) return;
    clear(row.actions);
    if (REFUNDABLE.has(order.status)) {
      row.actions.append(
        h('button', {
          type: 'button',
          class: 'small danger',
          i18n: 'order.refund',
          i18nLabel: 'order.refund.label',
          args: { id: short(order.id), uid: order.uid },
          onclick: () => refundForm(row),
        }),
      );
    }
  }

  function refundForm(row) {
    row.refunding = true;
    const reason = h('input', { name: 'refund-reason', class: 'grow' });
    const count = h('span', { class: 'sub byte-count', 'aria-live': 'polite' });
    const restock = h('input', { type: 'checkbox', name: 'refund-restock' });
    const showCount = () => {
      const bytes = utf8Length(reason.value);
      setText(count, 'order.reason.bytes', { bytes, max: REFUND_REASON_BYTES });
      count.classList.toggle('error-text', bytes > REFUND_REASON_BYTES);
      reason.setAttribute('aria-invalid', bytes > REFUND_REASON_BYTES ? 'true' : 'false');
    };
    reason.addEventListener('input', showCount);
    showCount();
    const close = () => {
      row.refunding = false;
      form.remove();
      showOrder(row.order);
    };
    const form = h(
      'form',
      { class: 'row-form refund-form', i18nLabel: 'order.refund.label', args: { id: short(row.order.id), uid: row.order.uid } },
      h('div', { class: 'field grow' }, field('order.reason', reason), count),
      h('label', { class: 'check' }, restock, h('span', { i18n: 'order.restock' })),
      h('button', { type: 'submit', class: 'danger', i18n: 'order.refund.confirm' }),
      h('button', { type: 'button', i18n: 'order.refund.cancel', onclick: close }),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const payload = { restock: restock.checked };
      if (reason.value.trim()) payload.reason = reason.value.trim();
      try {
        // The byte limit is the API's (it answers 400 past it): shown here as it says.
        const done = await api('POST', `/orders/${encodeURIComponent(row.order.id)}/refund`, payload);
        say(t('order.refunded', { id: short(done.id), amount: yuan(done.refund_fen) }));
        row.order = done;
        close();
      } catch (err) {
        fail(err);
      }
    });
    clear(row.actions);
    row.el.append(form);
    reason.focus();
  }

  async function loadOrders() {
    let after = null;
    try {
      for (let page = 0; page < ORDER_PAGES; page += 1) {
        const q = after ? `&after=${encodeURIComponent(after)}` : '';
        const answer = await api('GET', `${path}/orders?limit=500${q}`);
        if (!isAlive()) return;
        for (const order of answer.orders) showOrder(order);
        if (!answer.next || answer.orders.length < 500) break;
        after = answer.next;
      }
    } catch {
      // The next round tries again.
    }
  }

  // -- the money ledger ---------------------------------------------------------------
  const ledgerList = h('ol', { class: 'list log', id: 'ledger-list' }, h('li', { class: 'hint', i18n: 'ledger.empty' }));
  const totals = { rp_created: 0, rp_claim: 0, rp_refund: 0, order_paid: 0, order_refunded: 0 };
  const totalsLine = h('p', { class: 'sub ledger-totals' });
  let ledgerNext = null;

  function showTotals() {
    setText(totalsLine, 'ledger.totals', {
      sent: yuan(totals.rp_created),
      claimed: yuan(totals.rp_claim),
      back: yuan(totals.rp_refund),
      paid: yuan(totals.order_paid),
      refunded: yuan(totals.order_refunded),
    });
  }
  showTotals();

  function ledgerLine(e) {
    const fen = e.amount_fen ?? e.total_fen ?? e.price_fen ?? e.prize_fen;
    const who = e.uid || e.sender || e.luckiest || '';
    return [
      who,
      fen !== undefined && fen !== '' ? yuan(Number(fen)) : '',
      e.qty ? `×${e.qty}` : '',
      e.count ? t('ledger.shares', { count: e.count }) : '',
      e.winners && e.type === 'lot_drawn' ? t('ledger.winners', { winners: e.winners }) : '',
      short(e.packet || e.lottery || e.order || e.sale || ''),
    ]
      .filter(Boolean)
      .join(' · ');
  }

  async function loadLedger() {
    let answer;
    try {
      const q = ledgerNext ? `&after=${encodeURIComponent(ledgerNext)}` : '';
      answer = await api('GET', `${path}/ledger?count=1000${q}`);
    } catch {
      return;
    }
    if (!isAlive()) return;
    ledgerNext = answer.next;
    if (answer.events.length) ledgerList.querySelector(':scope > .hint')?.remove();
    for (const e of answer.events) {
      // Amounts in the ledger are decimal strings of whole fen: Number() of them is exact.
      if (e.type in totals) totals[e.type] += Number(e.type === 'rp_created' ? e.total_fen : e.amount_fen);
      const key = `ledger.type.${e.type}`;
      const tag = t(key) === key ? { class: 'tag', text: e.type } : { class: 'tag', i18n: key };
      ledgerList.prepend(
        h('li', { 'data-type': e.type }, h('time', { text: time(Number(e.ts)) }), h('span', tag), h('span', { class: 'sub', text: ledgerLine(e) })),
      );
    }
    while (ledgerList.children.length > LEDGER_MAX) ledgerList.lastElementChild.remove();
    showTotals();
  }

  // -- live events and polling ----------------------------------------------------------
  function onMessage(msg) {
    switch (msg.t) {
      case 'welcome':
        for (const p of msg.rp || []) if (!packets.has(p.id)) readPacket(p.id);
        for (const lot of msg.lot || []) if (!lotteries.has(lot.id)) readLottery(lot.id);
        for (const sale of msg.sale || []) {
          const row = saleRow(sale.id);
          showSale(row, { ...sale, left: sale.stock, stock: row.record ? row.record.stock : sale.stock });
          readSale(sale.id);
        }
        break;
      case 'rp':
        if (!packets.has(msg.id)) showPacket(packetRow(msg.id), { ...msg, status: 'open', claims: [] });
        break;
      case 'rp_done':
        readPacket(msg.id);
        break;
      case 'lot':
        if (!lotteries.has(msg.id)) readLottery(msg.id);
        break;
      case 'lot_result':
        readLottery(msg.id);
        break;
      case 'sale': {
        const row = saleRow(msg.id);
        if (row.record === null) showSale(row, { ...msg, left: msg.stock });
        break;
      }
      case 'stock': {
        const row = sales.get(msg.id);
        if (row) showLeft(row, msg.left);
        else readSale(msg.id);
        break;
      }
      default:
        break;
    }
  }

  function start() {
    // Claims and entries are not pushed one by one: open items are read again.
    stops.push(
      every(2000, async () => {
        const open = [...packets].filter(([, row]) => !row.done).map(([id]) => id);
        const drawing = [...lotteries].filter(([, row]) => row.record && row.record.status !== 'drawn').map(([id]) => id);
        await Promise.all([...open.map(readPacket), ...drawing.map(readLottery)]);
      }),
    );
    stops.push(every(5000, () => Promise.all([...sales.keys()].map(readSale))));
    stops.push(every(3000, loadOrders));
    stops.push(every(3000, loadLedger));
    return stops;
  }

  const panels = [
    panel('rp', 'rp.title', rpForm, rpList),
    panel('lot', 'lot.title', lotForm, lotList),
    panel('sales', 'sale.panel', saleForm, saleList),
    panel('orders', 'order.title', h('button', { type: 'button', class: 'small', i18n: 'order.refresh', onclick: loadOrders }), orderList),
    panel('ledger', 'ledger.title', totalsLine, h('button', { type: 'button', class: 'small', i18n: 'ledger.refresh', onclick: loadLedger }), ledgerList),
  ];
  return { panels, onMessage, start };
}
