'use strict';
/** The room page's logic (pages/room/logic.js), run by the SDK's `npm test`. */
const { test } = require('node:test');
const assert = require('node:assert/strict');
const logic = require('../pages/room/logic');

const T0 = 1795654975000;

function dm(seq, extra) {
  return Object.assign({ t: 'dm', seq, uid: 'u2', nick: '小红', role: 'viewer', text: 'c' + seq, color: 16777215, mode: 'scroll', ts: T0 }, extra);
}

function welcomeMsg(extra) {
  return Object.assign(
    {
      t: 'welcome',
      room: { id: 'r1', title: '新品首发', status: 'live' },
      user: { uid: 'me', nick: '我', role: 'viewer' },
      rp: [],
      lot: [],
      sale: [],
      seq: 0,
      epoch: 'e1',
      online: 7,
      recovered: false,
      history: [],
    },
    extra,
  );
}

const SALE = { t: 'sale', id: 'r1.sl01', title: '口红', sku: '', price_fen: 9900, stock: 5, limit: 2, starts_at: T0 - 1000, ends_at: T0 + 60000 };
const RP = { t: 'rp', id: 'r1.rp01', count: 2, total_fen: 1000, left: 2, opens_at: T0, expires_at: T0 + 60000, sender: 'ops', split: 'random' };
const LOT = { t: 'lot', id: 'r1.lt01', prize: { title: '福袋', kind: 'goods' }, winners: 1, condition: { kind: 'enter' }, draw_at: T0 + 5000, commit: 'ab', entries: 0 };

/** Freeze a state deeply, so a reducer that changes its input throws. */
function frozen(value) {
  if (value && typeof value === 'object') {
    Object.values(value).forEach(frozen);
    Object.freeze(value);
  }
  return value;
}

function live() {
  return logic.welcome(logic.initialState(), welcomeMsg(), T0);
}

test('colours and prices as the view shows them', () => {
  assert.equal(logic.colorOf(16646914), '#fe0302');
  assert.equal(logic.colorOf(0), '#000000');
  assert.equal(logic.colorOf(-1), '#ffffff');
  assert.equal(logic.colorOf(undefined), '#ffffff');
  assert.equal(logic.yuan(9900), '99.00');
  assert.equal(logic.yuan(1), '0.01');
});

test('comments at once fill the lanes; the next goes to the lane free soonest', () => {
  let s = frozen(live());
  for (let i = 1; i <= logic.LANES; i++) s = frozen(logic.addComment(s, dm(i, { text: 'x'.repeat(10 * i) }), T0));
  assert.deepEqual(s.danmaku.map((d) => d.lane), [0, 1, 2, 3, 4]);
  // Lane 0 holds the shortest text: it frees first.
  s = logic.addComment(s, dm(6, { text: 'y' }), T0 + 10);
  assert.equal(s.danmaku[5].lane, 0);
  // Once every lane is free again, the first one is taken.
  s = logic.addComment(s, dm(7), T0 + logic.SCROLL_MS);
  assert.equal(s.danmaku[s.danmaku.length - 1].lane, 0);
});

test('top and bottom comments take their own slots and stand still shorter', () => {
  let s = live();
  s = logic.addComment(s, dm(1, { mode: 'top' }), T0);
  s = logic.addComment(s, dm(2, { mode: 'top' }), T0);
  s = logic.addComment(s, dm(3, { mode: 'bottom' }), T0);
  s = logic.addComment(s, dm(4, { mode: 'sideways' }), T0);
  assert.deepEqual(s.danmaku.map((d) => [d.mode, d.lane]), [['top', 0], ['top', 1], ['bottom', 0], ['scroll', 0]]);
  s = logic.tick(s, T0 + logic.FIXED_MS);
  assert.deepEqual(s.danmaku.map((d) => d.seq), [4]);
  s = logic.tick(s, T0 + logic.SCROLL_MS);
  assert.deepEqual(s.danmaku, []);
});

test('the screen keeps the newest comments only, in order', () => {
  let s = live();
  for (let i = 1; i <= 100; i++) s = logic.addComment(s, dm(i), T0 + i);
  assert.equal(s.danmaku.length, logic.MAX_DANMAKU);
  assert.deepEqual(s.danmaku.map((d) => d.seq), Array.from({ length: logic.MAX_DANMAKU }, (_, i) => 100 - logic.MAX_DANMAKU + 1 + i));
  assert.equal(new Set(s.danmaku.map((d) => d.key)).size, logic.MAX_DANMAKU, 'wx:key must be unique');
});

test('my comments are marked; a retracted one leaves; a gap clears the screen', () => {
  let s = live();
  s = logic.addComment(s, dm(1, { uid: 'me' }), T0);
  s = logic.addComment(s, dm(2), T0);
  assert.deepEqual(s.danmaku.map((d) => d.mine), [true, false]);
  s = logic.retract(s, { t: 'retract', seq: 1 });
  assert.deepEqual(s.danmaku.map((d) => d.seq), [2]);
  s = logic.gap(s, { newEpoch: false }, T0);
  assert.deepEqual([s.danmaku, s.gap], [[], true]);
  assert.ok(s.laneFree.every((t) => t === 0));
  s = logic.addComment(s, dm(60), T0); // the history that follows a gap
  assert.equal(s.gap, true, 'the note outlives the history right after it');
  assert.equal(logic.tick(s, T0 + 2999).gap, true);
  assert.equal(logic.tick(s, T0 + 3000).gap, false);
});

test('likes: my taps show at once, the room total never goes back', () => {
  let s = live();
  s = logic.tapLike(s, 1);
  s = logic.tapLike(s, 2);
  assert.equal(s.likes, 3);
  s = logic.like(s, { t: 'like', total: 2 }); // counted before my taps arrived
  assert.equal(s.likes, 3);
  s = logic.like(s, { t: 'like', total: 40 });
  assert.equal(s.likes, 40);
  assert.equal(logic.online(s, { t: 'online', count: 12 }).online, 12);
});

test('red packet pop-up: countdown, open, grabbed, and a finished packet', () => {
  let s = frozen(live());
  s = frozen(logic.redPacket(s, Object.assign({}, RP, { opens_at: T0 + 3000 }), T0));
  assert.equal(s.packet.status, 'countdown');
  assert.equal(s.packet.total, '10.00');
  s = logic.tick(s, T0 + 3000);
  assert.equal(s.packet.status, 'open');
  s = logic.grabbed(s, 'r1.rp99', { amount_fen: 5, left: 1 }); // another packet's answer
  assert.equal(s.packet.status, 'open');
  s = logic.grabbed(s, RP.id, { amount_fen: 795, left: 1 });
  assert.deepEqual([s.packet.status, s.packet.amount], ['grabbed', '7.95']);
  s = logic.packetDone(s, { t: 'rp_done', id: RP.id, reason: 'empty' });
  assert.equal(s.packet.status, 'grabbed', 'what I got stays shown');
  assert.equal(logic.closePacket(s).packet, null);

  const late = logic.redPacket(live(), RP, T0);
  assert.equal(logic.packetDone(late, { t: 'rp_done', id: RP.id, reason: 'empty' }).packet.status, 'missed');
  assert.equal(logic.grabbed(late, RP.id, { code: 'empty' }).packet.status, 'missed');
  const again = logic.grabbed(late, RP.id, { code: 'already_grabbed', amount_fen: 100 });
  assert.deepEqual([again.packet.status, again.packet.amount], ['grabbed', '1.00']);
  const pw = logic.redPacket(live(), Object.assign({}, RP, { condition: { kind: 'password', password: '主播最帅' } }), T0);
  assert.equal(pw.packet.password, '主播最帅');
});

test('lottery pop-up: entered, then won or lost by the result', () => {
  let s = logic.lottery(live(), LOT);
  assert.deepEqual([s.lottery.prize, s.lottery.kind, s.lottery.entered, s.lottery.result], ['福袋', 'enter', false, null]);
  s = logic.entered(s, LOT.id);
  assert.equal(s.lottery.entered, true);
  assert.equal(logic.lotteryResult(s, { t: 'lot_result', id: 'other', winners: ['me'] }), s);
  assert.equal(logic.lotteryResult(s, { t: 'lot_result', id: LOT.id, winners: ['u9', 'me'], entries: 2 }).lottery.result, 'won');
  assert.equal(logic.lotteryResult(s, { t: 'lot_result', id: LOT.id, winners: ['u9'], entries: 2 }).lottery.result, 'lost');
  const watch = logic.lottery(live(), Object.assign({}, LOT, { condition: { kind: 'watch', minutes: 5 } }));
  assert.equal(watch.lottery.minutes, 5);
  assert.equal(logic.closeLottery(s).lottery, null);
});

test('flash-sale card: live stock, sold out, and off the shelf at its end', () => {
  let s = frozen(logic.welcome(logic.initialState(), welcomeMsg({ sale: [Object.assign({}, SALE, { stock: 3 })] }), T0));
  assert.deepEqual(s.sales.map((x) => [x.id, x.price, x.left, x.soldOut]), [['r1.sl01', '99.00', 3, false]]);
  s = frozen(logic.stock(s, { t: 'stock', id: SALE.id, left: 1 }));
  assert.equal(s.sales[0].left, 1);
  assert.equal(logic.stock(s, { t: 'stock', id: 'r1.sl99', left: 0 }), s, 'another sale changes nothing');
  s = logic.stock(s, { t: 'stock', id: SALE.id, left: 0 });
  assert.equal(s.sales[0].soldOut, true);
  s = logic.sale(s, Object.assign({}, SALE, { id: 'r1.sl02', ends_at: T0 + 1000 }));
  s = logic.sale(s, Object.assign({}, SALE, { id: 'r1.sl02', ends_at: T0 + 1000 })); // announced again
  assert.deepEqual(s.sales.map((x) => x.id), ['r1.sl01', 'r1.sl02']);
  s = logic.tick(s, T0 + 1000);
  assert.deepEqual(s.sales.map((x) => x.id), ['r1.sl01']);
});

test('a reconnect welcome keeps what the pop-ups know, and drops what is gone', () => {
  let s = logic.welcome(logic.initialState(), welcomeMsg({ rp: [RP], lot: [LOT] }), T0);
  assert.deepEqual([s.conn, s.me, s.title, s.online], ['live', 'me', '新品首发', 7]);
  s = logic.grabbed(s, RP.id, { amount_fen: 300, left: 1 });
  s = logic.entered(s, LOT.id);
  s = logic.connection(s, { state: 'reconnecting', code: 1006 });
  assert.equal(s.conn, 'reconnecting');
  // Back: the packet is finished (not listed), the lottery still open.
  s = logic.welcome(s, welcomeMsg({ rp: [], lot: [LOT], online: 9 }), T0 + 5000);
  assert.deepEqual([s.conn, s.packet.status, s.packet.amount, s.lottery.entered, s.online], ['live', 'grabbed', '3.00', true, 9]);
  const fresh = logic.welcome(logic.lottery(live(), LOT), welcomeMsg({ lot: [] }), T0);
  assert.equal(fresh.lottery, null, 'a lottery no longer listed and never drawn for me is gone');
  assert.equal(logic.room(s, { t: 'room', status: 'ended' }).conn, 'ended');
  assert.deepEqual(logic.notice(s, { t: 'notice', text: '抽奖马上开始' }).notice, { text: '抽奖马上开始', level: 'info' });
});

test('setData gets only the keys that changed', () => {
  const a = live();
  assert.equal(logic.changes(a, a), null);
  const b = logic.addComment(a, dm(1), T0);
  assert.deepEqual(Object.keys(logic.changes(a, b)).sort(), ['danmaku']);
  const c = logic.tapLike(b, 1);
  assert.deepEqual(logic.changes(b, c), { likes: 1 });
});

test('a share path carries the viewer\'s own token; an opened one is read back only when well formed', () => {
  const s = logic.welcome(logic.initialState(), welcomeMsg(), T0);
  const token = 'Ab-_0123456789xY';
  const msg = logic.shareMessage(s, 'r1', token);
  assert.deepEqual(msg, { title: '新品首发', path: '/pages/room/room?roomId=r1&inv=Ab-_0123456789xY' });
  // The invitee's page gets the path's query in onLoad, and passes the token to createRoom.
  const query = Object.fromEntries(new URLSearchParams(msg.path.split('?')[1]));
  assert.deepEqual(query, { roomId: 'r1', inv: token });
  assert.equal(logic.inviteOf(query), token);
  // No token yet (the request is still out, or failed): a plain share, still working.
  assert.deepEqual(logic.shareMessage(logic.initialState(), 'r 1', null), { title: '直播间', path: '/pages/room/room?roomId=r%201' });
  assert.equal(logic.shareMessage(s, 'r1', 'short').path, '/pages/room/room?roomId=r1');
  for (const bad of [undefined, {}, { inv: '' }, { inv: 'x'.repeat(17) }, { inv: 'a b c d e f g h ' }, { inv: ['Ab-_0123456789xY'] }]) {
    assert.equal(logic.inviteOf(bad), undefined, JSON.stringify(bad));
  }
});

test('the reminder toast says what the user agreed to', () => {
  assert.equal(logic.reminded({ accepted: ['t1'], answers: { t1: 'accept', t2: 'reject' }, credits: { t1: 1 } }), '开播前会提醒你');
  assert.equal(logic.reminded({ accepted: [], answers: { t1: 'reject' }, credits: null }), '未开启提醒');
});
