'use strict';
/**
 * The live room: danmaku, likes, red packets, lotteries and a flash-sale card, over the SDK.
 * Every SDK event goes through a pure function of ./logic.js; this file only wires them to
 * the SDK, the user's taps and setData.
 */
const { createRoom, buy, pay, cancelOrder, shareToken, subscribe } = require('interact-miniprogram');
const logic = require('./logic');

/** setData at most this often: a busy room sends dozens of comments a second. */
const FLUSH_MS = 150;
const TICK_MS = 1000;

Page({
  data: logic.initialState(),

  onLoad(query) {
    const app = getApp();
    this.s = logic.initialState();
    this.shown = this.s;
    this.roomId = query.roomId || app.globalData.roomId;
    this.room = createRoom({
      url: app.globalData.wsUrl,
      roomId: this.roomId,
      getToken: () => app.token(),
      codec: 'msgpack',
      inviteToken: logic.inviteOf(query), // opened from someone's share: attributed to them once
    });
    // This viewer's own token, ready before they tap share (onShareAppMessage is synchronous).
    shareToken({ baseUrl: app.globalData.apiUrl, getToken: () => app.token(), roomId: this.roomId }).then(
      (token) => (this.shareToken = token),
      () => (this.shareToken = null), // sharing still works, just without attribution
    );
    const on = (event, reduce) => this.room.on(event, (payload) => this.update((s) => reduce(s, payload, Date.now())));
    on('state', logic.connection);
    on('welcome', logic.welcome);
    on('gap', logic.gap);
    on('dm', logic.addComment);
    on('retract', logic.retract);
    on('like', logic.like);
    on('online', logic.online);
    on('room', logic.room);
    on('notice', logic.notice);
    on('rp', logic.redPacket);
    on('rp_done', logic.packetDone);
    on('lot', logic.lottery);
    on('lot_result', logic.lotteryResult);
    on('sale', logic.sale);
    on('stock', logic.stock);
    this.ticker = setInterval(() => this.update((s) => logic.tick(s, Date.now())), TICK_MS);
  },

  onUnload() {
    clearInterval(this.ticker);
    clearTimeout(this.flushTimer);
    this.room.close(); // frees the socket: a mini-program may hold 5 at most
  },

  /** Apply a reducer now; hand the result to the view at the next flush. */
  update(reduce) {
    this.s = reduce(this.s);
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      const patch = logic.changes(this.shown, this.s);
      this.shown = this.s;
      if (patch) this.setData(patch);
    }, FLUSH_MS);
  },

  toast(title) {
    wx.showToast({ title, icon: 'none' });
  },

  onInput(e) {
    this.draft = e.detail.value;
  },

  async onSend() {
    const text = (this.draft || '').trim();
    if (!text) return;
    try {
      await this.room.send(text, { color: 0xffffff, mode: 'scroll' });
      this.draft = '';
      this.setData({ draft: '' });
    } catch (err) {
      this.toast(err.code); // muted, rate_limited, too_long, room_not_live, …
    }
  },

  /** The share card: nothing is rewarded for sharing (WeChat forbids it), only who comes in. */
  onShareAppMessage() {
    return logic.shareMessage(this.s, this.roomId, this.shareToken);
  },

  /** Pre-live reminders: the dialog must open from a tap; each accept is one message. */
  async onRemind() {
    const app = getApp();
    try {
      const result = await subscribe({
        baseUrl: app.globalData.apiUrl,
        getToken: () => app.token(),
        roomId: this.roomId,
        templateIds: app.globalData.reminderTemplates,
      });
      this.toast(logic.reminded(result));
    } catch (err) {
      this.toast(err.code); // subscribe_failed, conflict (the room has started), …
    }
  },

  onTapLike() {
    this.room.like(); // the SDK sends at most one frame per 400 ms
    this.update((s) => logic.tapLike(s, 1));
  },

  async onGrab() {
    const p = this.s.packet;
    if (!p || p.status !== 'open') return;
    if (p.password) {
      // A password packet is grabbed by saying the password in the room.
      this.room.send(p.password).catch((err) => this.toast(err.code));
      return;
    }
    try {
      const got = await this.room.grab(p.id);
      this.update((s) => logic.grabbed(s, p.id, got));
    } catch (err) {
      const amount = err.ack && err.ack.amount_fen;
      this.update((s) => logic.grabbed(s, p.id, { code: err.code, amount_fen: amount }));
    }
  },

  onClosePacket() {
    this.update(logic.closePacket);
  },

  async onEnter() {
    const l = this.s.lottery;
    if (!l || l.entered) return;
    try {
      await this.room.enter(l.id, l.password ? { password: l.password } : {});
      this.update((s) => logic.entered(s, l.id));
    } catch (err) {
      this.toast(err.code); // conflict (entered already), expired, forbidden (watch time not reached)
    }
  },

  onCloseLottery() {
    this.update(logic.closeLottery);
  },

  async onBuy(e) {
    const app = getApp();
    const options = { baseUrl: app.globalData.apiUrl, getToken: () => app.token() };
    try {
      const order = await buy(e.currentTarget.dataset.id, 1, options);
      this.toast(order.status === 'paid' ? '购买成功' : order.status);
    } catch (err) {
      if (err.code !== 'pay_cancelled') {
        this.toast(err.code); // sold_out, limit_reached, expired, network, …
        return;
      }
      // The order stays reserved until its deadline: offer to pay again, or release it.
      const { confirm } = await wx.showModal({ title: '订单已保留', content: '继续支付？', cancelText: '取消订单' });
      const next = confirm ? pay(err.orderId, options) : cancelOrder(err.orderId, options);
      next.then((order) => this.toast(order.status), (again) => this.toast(again.code));
    }
  },
});
